import datetime

from culture.events.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowCreated(_message.Message):
    __slots__ = ("follower_user_id", "followee_user_id", "create_time")
    FOLLOWER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    follower_user_id: str
    followee_user_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, follower_user_id: _Optional[str] = ..., followee_user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FollowRemoved(_message.Message):
    __slots__ = ("follower_user_id", "followee_user_id", "remove_time")
    FOLLOWER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TIME_FIELD_NUMBER: _ClassVar[int]
    follower_user_id: str
    followee_user_id: str
    remove_time: _timestamp_pb2.Timestamp
    def __init__(self, follower_user_id: _Optional[str] = ..., followee_user_id: _Optional[str] = ..., remove_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UserNodeCreated(_message.Message):
    __slots__ = ("user_id", "create_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InterestsGained(_message.Message):
    __slots__ = ("user_id", "genre_slugs", "change_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    change_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
