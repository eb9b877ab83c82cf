import datetime

from buf.validate import validate_pb2 as _validate_pb2
from culture.validate.v1 import rules_pb2 as _rules_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORK_KIND_UNSPECIFIED: _ClassVar[WorkKind]
    WORK_KIND_BOOK: _ClassVar[WorkKind]
    WORK_KIND_FILM: _ClassVar[WorkKind]

class ProfileState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROFILE_STATE_UNSPECIFIED: _ClassVar[ProfileState]
    PROFILE_STATE_ACTIVE: _ClassVar[ProfileState]
    PROFILE_STATE_INCOMPLETE: _ClassVar[ProfileState]
WORK_KIND_UNSPECIFIED: WorkKind
WORK_KIND_BOOK: WorkKind
WORK_KIND_FILM: WorkKind
PROFILE_STATE_UNSPECIFIED: ProfileState
PROFILE_STATE_ACTIVE: ProfileState
PROFILE_STATE_INCOMPLETE: ProfileState

class Genre(_message.Message):
    __slots__ = ("slug", "display_name", "parent_slug")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_SLUG_FIELD_NUMBER: _ClassVar[int]
    slug: str
    display_name: str
    parent_slug: str
    def __init__(self, slug: _Optional[str] = ..., display_name: _Optional[str] = ..., parent_slug: _Optional[str] = ...) -> None: ...

class Tag(_message.Message):
    __slots__ = ("slug", "display_name")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    slug: str
    display_name: str
    def __init__(self, slug: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class BookDetails(_message.Message):
    __slots__ = ("authors", "page_count", "isbn", "publisher")
    AUTHORS_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ISBN_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    authors: _containers.RepeatedScalarFieldContainer[str]
    page_count: int
    isbn: str
    publisher: str
    def __init__(self, authors: _Optional[_Iterable[str]] = ..., page_count: _Optional[int] = ..., isbn: _Optional[str] = ..., publisher: _Optional[str] = ...) -> None: ...

class FilmDetails(_message.Message):
    __slots__ = ("directors", "runtime_minutes", "cast", "countries")
    DIRECTORS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_MINUTES_FIELD_NUMBER: _ClassVar[int]
    CAST_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    directors: _containers.RepeatedScalarFieldContainer[str]
    runtime_minutes: int
    cast: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, directors: _Optional[_Iterable[str]] = ..., runtime_minutes: _Optional[int] = ..., cast: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ...) -> None: ...

class RatingSummary(_message.Message):
    __slots__ = ("average", "count", "sum", "histogram")
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    average: float
    count: int
    sum: int
    histogram: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, average: _Optional[float] = ..., count: _Optional[int] = ..., sum: _Optional[int] = ..., histogram: _Optional[_Iterable[int]] = ...) -> None: ...

class Work(_message.Message):
    __slots__ = ("work_id", "title", "original_title", "description", "release_year", "language", "genres", "tags", "creator_user_id", "create_time", "update_time", "rating", "version", "genre_paths", "cover_url", "kind", "book", "film")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RELEASE_YEAR_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    GENRES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GENRE_PATHS_FIELD_NUMBER: _ClassVar[int]
    COVER_URL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BOOK_FIELD_NUMBER: _ClassVar[int]
    FILM_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    title: str
    original_title: str
    description: str
    release_year: int
    language: str
    genres: _containers.RepeatedCompositeFieldContainer[Genre]
    tags: _containers.RepeatedCompositeFieldContainer[Tag]
    creator_user_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    rating: RatingSummary
    version: int
    genre_paths: _containers.RepeatedScalarFieldContainer[str]
    cover_url: str
    kind: WorkKind
    book: BookDetails
    film: FilmDetails
    def __init__(self, work_id: _Optional[str] = ..., title: _Optional[str] = ..., original_title: _Optional[str] = ..., description: _Optional[str] = ..., release_year: _Optional[int] = ..., language: _Optional[str] = ..., genres: _Optional[_Iterable[_Union[Genre, _Mapping]]] = ..., tags: _Optional[_Iterable[_Union[Tag, _Mapping]]] = ..., creator_user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rating: _Optional[_Union[RatingSummary, _Mapping]] = ..., version: _Optional[int] = ..., genre_paths: _Optional[_Iterable[str]] = ..., cover_url: _Optional[str] = ..., kind: _Optional[_Union[WorkKind, str]] = ..., book: _Optional[_Union[BookDetails, _Mapping]] = ..., film: _Optional[_Union[FilmDetails, _Mapping]] = ...) -> None: ...

class Review(_message.Message):
    __slots__ = ("review_id", "work_id", "author_user_id", "rating", "title", "body", "genre_slugs", "create_time", "version", "update_time", "work_kind")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WORK_KIND_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    work_id: str
    author_user_id: str
    rating: int
    title: str
    body: str
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    version: int
    update_time: _timestamp_pb2.Timestamp
    work_kind: WorkKind
    def __init__(self, review_id: _Optional[str] = ..., work_id: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., work_kind: _Optional[_Union[WorkKind, str]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("user_id", "username", "display_name", "bio", "favorite_genre_slugs", "avatar_url", "state", "incomplete_reason", "create_time", "update_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BIO_FIELD_NUMBER: _ClassVar[int]
    FAVORITE_GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    display_name: str
    bio: str
    favorite_genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    avatar_url: str
    state: ProfileState
    incomplete_reason: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., display_name: _Optional[str] = ..., bio: _Optional[str] = ..., favorite_genre_slugs: _Optional[_Iterable[str]] = ..., avatar_url: _Optional[str] = ..., state: _Optional[_Union[ProfileState, str]] = ..., incomplete_reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWorkRequest(_message.Message):
    __slots__ = ("work", "creator_user_id", "request_id")
    WORK_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    work: Work
    creator_user_id: str
    request_id: str
    def __init__(self, work: _Optional[_Union[Work, _Mapping]] = ..., creator_user_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateWorkResponse(_message.Message):
    __slots__ = ("work",)
    WORK_FIELD_NUMBER: _ClassVar[int]
    work: Work
    def __init__(self, work: _Optional[_Union[Work, _Mapping]] = ...) -> None: ...

class GetWorkRequest(_message.Message):
    __slots__ = ("work_id",)
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    def __init__(self, work_id: _Optional[str] = ...) -> None: ...

class GetWorkResponse(_message.Message):
    __slots__ = ("work",)
    WORK_FIELD_NUMBER: _ClassVar[int]
    work: Work
    def __init__(self, work: _Optional[_Union[Work, _Mapping]] = ...) -> None: ...

class SearchWorksRequest(_message.Message):
    __slots__ = ("query", "genre_slugs", "tag_slugs", "kind", "page_size", "page_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    TAG_SLUGS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    tag_slugs: _containers.RepeatedScalarFieldContainer[str]
    kind: WorkKind
    page_size: int
    page_token: str
    def __init__(self, query: _Optional[str] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., tag_slugs: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[WorkKind, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchWorksResponse(_message.Message):
    __slots__ = ("works", "next_page_token")
    WORKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    works: _containers.RepeatedCompositeFieldContainer[Work]
    next_page_token: str
    def __init__(self, works: _Optional[_Iterable[_Union[Work, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateReviewRequest(_message.Message):
    __slots__ = ("work_id", "author_user_id", "rating", "title", "body", "request_id")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    author_user_id: str
    rating: int
    title: str
    body: str
    request_id: str
    def __init__(self, work_id: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateReviewResponse(_message.Message):
    __slots__ = ("review", "job_id")
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    review: Review
    job_id: str
    def __init__(self, review: _Optional[_Union[Review, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class ListReviewsRequest(_message.Message):
    __slots__ = ("work_id", "author_user_id", "page_size", "page_token")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    author_user_id: str
    page_size: int
    page_token: str
    def __init__(self, work_id: _Optional[str] = ..., author_user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReviewsResponse(_message.Message):
    __slots__ = ("reviews", "next_page_token")
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reviews: _containers.RepeatedCompositeFieldContainer[Review]
    next_page_token: str
    def __init__(self, reviews: _Optional[_Iterable[_Union[Review, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class UpdateProfileRequest(_message.Message):
    __slots__ = ("profile", "update_mask")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class UpdateWorkRequest(_message.Message):
    __slots__ = ("work", "update_mask", "editor_user_id")
    WORK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EDITOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    work: Work
    update_mask: _field_mask_pb2.FieldMask
    editor_user_id: str
    def __init__(self, work: _Optional[_Union[Work, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., editor_user_id: _Optional[str] = ...) -> None: ...

class UpdateWorkResponse(_message.Message):
    __slots__ = ("work",)
    WORK_FIELD_NUMBER: _ClassVar[int]
    work: Work
    def __init__(self, work: _Optional[_Union[Work, _Mapping]] = ...) -> None: ...

class BatchGetWorksRequest(_message.Message):
    __slots__ = ("work_ids",)
    WORK_IDS_FIELD_NUMBER: _ClassVar[int]
    work_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, work_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetWorksResponse(_message.Message):
    __slots__ = ("works", "missing_work_ids")
    WORKS_FIELD_NUMBER: _ClassVar[int]
    MISSING_WORK_IDS_FIELD_NUMBER: _ClassVar[int]
    works: _containers.RepeatedCompositeFieldContainer[Work]
    missing_work_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, works: _Optional[_Iterable[_Union[Work, _Mapping]]] = ..., missing_work_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListWorksRequest(_message.Message):
    __slots__ = ("kind", "genre_path", "tag_slug", "min_year", "max_year", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GENRE_PATH_FIELD_NUMBER: _ClassVar[int]
    TAG_SLUG_FIELD_NUMBER: _ClassVar[int]
    MIN_YEAR_FIELD_NUMBER: _ClassVar[int]
    MAX_YEAR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: WorkKind
    genre_path: str
    tag_slug: str
    min_year: int
    max_year: int
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[WorkKind, str]] = ..., genre_path: _Optional[str] = ..., tag_slug: _Optional[str] = ..., min_year: _Optional[int] = ..., max_year: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorksResponse(_message.Message):
    __slots__ = ("works", "next_page_token")
    WORKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    works: _containers.RepeatedCompositeFieldContainer[Work]
    next_page_token: str
    def __init__(self, works: _Optional[_Iterable[_Union[Work, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateReviewRequest(_message.Message):
    __slots__ = ("review_id", "author_user_id", "rating", "title", "body", "update_mask")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    author_user_id: str
    rating: int
    title: str
    body: str
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, review_id: _Optional[str] = ..., author_user_id: _Optional[str] = ..., rating: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateReviewResponse(_message.Message):
    __slots__ = ("review",)
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    review: Review
    def __init__(self, review: _Optional[_Union[Review, _Mapping]] = ...) -> None: ...

class DeleteReviewRequest(_message.Message):
    __slots__ = ("review_id", "author_user_id")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    author_user_id: str
    def __init__(self, review_id: _Optional[str] = ..., author_user_id: _Optional[str] = ...) -> None: ...

class DeleteReviewResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...
