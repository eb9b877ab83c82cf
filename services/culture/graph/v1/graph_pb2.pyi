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

class Follow(_message.Message):
    __slots__ = ("follower_user_id", "followee_user_id", "create_time")
    FOLLOWER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    follower_user_id: str
    followee_user_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, follower_user_id: _Optional[str] = ..., followee_user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FriendRating(_message.Message):
    __slots__ = ("user_id", "rating", "rate_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    RATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    rating: int
    rate_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., rating: _Optional[int] = ..., rate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SimilarUser(_message.Message):
    __slots__ = ("user_id", "similarity", "common_work_count", "shared_genre_slugs")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    COMMON_WORK_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARED_GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    similarity: float
    common_work_count: int
    shared_genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., similarity: _Optional[float] = ..., common_work_count: _Optional[int] = ..., shared_genre_slugs: _Optional[_Iterable[str]] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("work_id", "score", "recommender_user_ids", "genre_slugs")
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDER_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    work_id: str
    score: float
    recommender_user_ids: _containers.RepeatedScalarFieldContainer[str]
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, work_id: _Optional[str] = ..., score: _Optional[float] = ..., recommender_user_ids: _Optional[_Iterable[str]] = ..., genre_slugs: _Optional[_Iterable[str]] = ...) -> None: ...

class FollowRequest(_message.Message):
    __slots__ = ("follower_user_id", "followee_user_id")
    FOLLOWER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    follower_user_id: str
    followee_user_id: str
    def __init__(self, follower_user_id: _Optional[str] = ..., followee_user_id: _Optional[str] = ...) -> None: ...

class FollowResponse(_message.Message):
    __slots__ = ("follow", "created")
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    follow: Follow
    created: bool
    def __init__(self, follow: _Optional[_Union[Follow, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class UnfollowRequest(_message.Message):
    __slots__ = ("follower_user_id", "followee_user_id")
    FOLLOWER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOWEE_USER_ID_FIELD_NUMBER: _ClassVar[int]
    follower_user_id: str
    followee_user_id: str
    def __init__(self, follower_user_id: _Optional[str] = ..., followee_user_id: _Optional[str] = ...) -> None: ...

class UnfollowResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class ListFollowingRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFollowingResponse(_message.Message):
    __slots__ = ("follows", "next_page_token")
    FOLLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    follows: _containers.RepeatedCompositeFieldContainer[Follow]
    next_page_token: str
    def __init__(self, follows: _Optional[_Iterable[_Union[Follow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListFollowersRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFollowersResponse(_message.Message):
    __slots__ = ("follows", "next_page_token")
    FOLLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    follows: _containers.RepeatedCompositeFieldContainer[Follow]
    next_page_token: str
    def __init__(self, follows: _Optional[_Iterable[_Union[Follow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FriendsWhoLikedRequest(_message.Message):
    __slots__ = ("user_id", "work_id", "min_rating", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_RATING_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    work_id: str
    min_rating: int
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., work_id: _Optional[str] = ..., min_rating: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FriendsWhoLikedResponse(_message.Message):
    __slots__ = ("ratings", "next_page_token")
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ratings: _containers.RepeatedCompositeFieldContainer[FriendRating]
    next_page_token: str
    def __init__(self, ratings: _Optional[_Iterable[_Union[FriendRating, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SimilarTastesRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SimilarTastesResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[SimilarUser]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[SimilarUser, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "min_rating", "genre_slugs", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_RATING_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    min_rating: int
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., min_rating: _Optional[int] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("recommendations", "next_page_token")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    next_page_token: str
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FollowersInterestedInRequest(_message.Message):
    __slots__ = ("user_id", "genre_slugs", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GENRE_SLUGS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    genre_slugs: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., genre_slugs: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class FollowersInterestedInResponse(_message.Message):
    __slots__ = ("follower_user_ids", "next_page_token")
    FOLLOWER_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    follower_user_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, follower_user_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
