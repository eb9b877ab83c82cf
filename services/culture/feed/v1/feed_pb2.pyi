import datetime

from buf.validate import validate_pb2 as _validate_pb2
from culture.validate.v1 import rules_pb2 as _rules_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReviewActivity(_message.Message):
    __slots__ = ("review_id", "work_id", "work_title", "rating", "excerpt", "genre_slugs")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_TITLE_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    work_id: str
    work_title: str
    rating: int
    excerpt: str
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, review_id: _Optional[str] = ..., work_id: _Optional[str] = ..., work_title: _Optional[str] = ..., rating: _Optional[int] = ..., excerpt: _Optional[str] = ..., genre_slugs: _Optional[_Iterable[str]] = ...) -> None: ...

class FeedItem(_message.Message):
    __slots__ = ("item_id", "create_time", "actor_user_id", "review")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    create_time: _timestamp_pb2.Timestamp
    actor_user_id: str
    review: ReviewActivity
    def __init__(self, item_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor_user_id: _Optional[str] = ..., review: _Optional[_Union[ReviewActivity, _Mapping]] = ...) -> None: ...

class GetFeedRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetFeedResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[FeedItem]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[FeedItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
