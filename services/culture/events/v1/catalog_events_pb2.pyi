import datetime

from culture.events.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileCreated(_message.Message):
    __slots__ = ("user_id", "display_name", "favorite_genre_slugs", "create_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FAVORITE_GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    favorite_genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., favorite_genre_slugs: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProfileMarkedIncomplete(_message.Message):
    __slots__ = ("user_id", "failed_step", "reason", "mark_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MARK_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    failed_step: str
    reason: str
    mark_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., failed_step: _Optional[str] = ..., reason: _Optional[str] = ..., mark_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReviewCreated(_message.Message):
    __slots__ = ("review_id", "work_id", "work_title", "author_user_id", "rating", "genre_slugs", "excerpt", "create_time", "work_kind", "version")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WORK_KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    work_id: str
    work_title: str
    author_user_id: str
    rating: int
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    excerpt: str
    create_time: _timestamp_pb2.Timestamp
    work_kind: str
    version: int
    def __init__(self, review_id: _Optional[str] = ..., work_id: _Optional[str] = ..., work_title: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., excerpt: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., work_kind: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ReviewUpdated(_message.Message):
    __slots__ = ("review_id", "work_id", "work_kind", "author_user_id", "rating", "previous_rating", "genre_slugs", "excerpt", "version", "update_time")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RATING_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    work_id: str
    work_kind: str
    author_user_id: str
    rating: int
    previous_rating: int
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    excerpt: str
    version: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, review_id: _Optional[str] = ..., work_id: _Optional[str] = ..., work_kind: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., previous_rating: _Optional[int] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., excerpt: _Optional[str] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReviewDeleted(_message.Message):
    __slots__ = ("review_id", "work_id", "work_kind", "author_user_id", "rating", "genre_slugs", "version", "delete_time")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    work_id: str
    work_kind: str
    author_user_id: str
    rating: int
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    version: int
    delete_time: _timestamp_pb2.Timestamp
    def __init__(self, review_id: _Optional[str] = ..., work_id: _Optional[str] = ..., work_kind: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., version: _Optional[int] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkCreated(_message.Message):
    __slots__ = ("work_id", "kind", "title", "genre_paths", "tag_slugs", "release_year", "creator_user_id", "version", "create_time")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    GENRE_PATHS_FIELD_NUMBER: _ClassVar[int]
    TAG_SLUGS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_YEAR_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    kind: str
    title: str
    genre_paths: _containers.RepeatedScalarFieldContainer[str]
    tag_slugs: _containers.RepeatedScalarFieldContainer[str]
    release_year: int
    creator_user_id: str
    version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, work_id: _Optional[str] = ..., kind: _Optional[str] = ..., title: _Optional[str] = ..., genre_paths: _Optional[_Iterable[str]] = ..., tag_slugs: _Optional[_Iterable[str]] = ..., release_year: _Optional[int] = ..., creator_user_id: _Optional[str] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkUpdated(_message.Message):
    __slots__ = ("work_id", "kind", "title", "genre_paths", "tag_slugs", "release_year", "creator_user_id", "version", "update_time")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    GENRE_PATHS_FIELD_NUMBER: _ClassVar[int]
    TAG_SLUGS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_YEAR_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    kind: str
    title: str
    genre_paths: _containers.RepeatedScalarFieldContainer[str]
    tag_slugs: _containers.RepeatedScalarFieldContainer[str]
    release_year: int
    creator_user_id: str
    version: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, work_id: _Optional[str] = ..., kind: _Optional[str] = ..., title: _Optional[str] = ..., genre_paths: _Optional[_Iterable[str]] = ..., tag_slugs: _Optional[_Iterable[str]] = ..., release_year: _Optional[int] = ..., creator_user_id: _Optional[str] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
