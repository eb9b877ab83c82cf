"""The graph's pure rules: interest weights, similarity, scores, edge keys, cursors, the requests' rules."""

from __future__ import annotations

import pytest

from culture.graph.v1 import graph_pb2
from culture_graph import model
from culture_graph.service import GraphWriter
from culture_grpc.errors import InvalidArgument
from culture_grpc.validation import request_violations

pytestmark = pytest.mark.unit

DAY = 86_400 * 1_000_000


def test_one_liked_work_gives_half_weight_to_its_genres() -> None:
    assert model.interest_weights([("sf", 5, 0), ("fiction", 5, 0)]) == {"fiction": 0.5, "sf": 0.5}


def test_neutral_and_disliked_ratings_give_no_interest() -> None:
    assert model.interest_weights([("sf", 3, 0), ("drama", 1, 0), ("drama", 2, DAY)]) == {}


def test_older_ratings_weigh_less_by_half_life_from_the_newest_rating() -> None:
    # 5 stars 180 days before the newest rating counts half: 0.5 * 1 / (0.5 + 1)
    w = model.interest_weights([("sf", 5, 0), ("drama", 4, 180 * DAY)])
    assert w == {"drama": 0.25, "sf": round(0.5 / 1.5, 6)}
    # the same rows in another order, or shifted in time together, give the same weights (replay-safe)
    assert model.interest_weights([("drama", 4, 1000 + 180 * DAY), ("sf", 5, 1000)]) == w


def test_many_liked_ratings_approach_one() -> None:
    assert 0.9 < model.interest_weights([("sf", 5, i) for i in range(20)])["sf"] < 1


def test_similarity_is_the_mean_agreement() -> None:
    assert model.similarity([(5, 5), (2, 1)]) == 0.875
    assert model.similarity([(1, 5)]) == 0.0
    assert model.similarity([]) == 0.0


def test_contribution_favours_similar_close_high_raters() -> None:
    assert model.contribution(1.0, 5, 1) == 2.0
    assert model.contribution(0.0, 4, 2) == 0.4
    assert model.contribution(0.5, 5, 1) > model.contribution(0.5, 5, 2) > model.contribution(0.5, 5, 3)


def test_follow_keys_sort_by_time_within_one_user_and_stay_in_its_range() -> None:
    older, newer = model.in_key("x", "u", 5), model.in_key("a", "u", 6)
    low, high = model.key_range("u")
    assert low < older < newer < high
    assert not low < model.in_key("x", "u2", 7) < high  # "u2" is another user
    assert not low < model.in_key("x", "u-1", 7) < high


def test_cursors_are_bound_to_their_list() -> None:
    token = model.encode_cursor("followers", ["u"], model.in_key("x", "u", 5))
    assert model.key_position(token, "followers", ["u"], "u") == model.in_key("x", "u", 5)
    with pytest.raises(model.BadCursor):
        model.key_position(token, "following", ["u"], "u")
    with pytest.raises(model.BadCursor):
        model.key_position(token, "followers", ["v"], "v")
    with pytest.raises(model.BadCursor):
        model.offset_position("not base64 json!", "similar", ["u"])
    assert model.offset_position(model.encode_cursor("similar", ["u"], 40), "similar", ["u"]) == 40
    with pytest.raises(model.BadCursor):
        model.offset_position(model.encode_cursor("similar", ["u"], -1), "similar", ["u"])


def test_page_sizes() -> None:
    assert model.page_size(0, model.FOLLOWS_PAGE) == 50
    assert model.page_size(10_000, model.FOLLOWS_PAGE) == 500
    assert model.page_size(7, model.INTERESTED_PAGE) == 7


def test_genre_closure_lists_parents_first() -> None:
    assert model.genre_closure(["a/b/c", "a/d"]) == [
        {"slug": "a", "name": "a", "parent": None}, {"slug": "a/b", "name": "b", "parent": "a"},
        {"slug": "a/b/c", "name": "c", "parent": "a/b"}, {"slug": "a/d", "name": "d", "parent": "a"}]


def test_timestamps_round_trip_in_microseconds() -> None:
    ts = model.to_timestamp(1_700_000_000_123_456)
    assert (ts.seconds, ts.nanos) == (1_700_000_000, 123_456_000)
    assert model.timestamp_us(ts) == 1_700_000_000_123_456


def fields(request: object) -> set[str]:
    return {f for f, _ in request_violations(request)}  # type: ignore[arg-type]


def test_the_requests_rules_are_the_contracts() -> None:
    # the graph has no copy of them: culture_grpc's ValidationInterceptor checks the annotations
    follow = graph_pb2.FollowRequest
    assert fields(follow(follower_user_id="", followee_user_id="b")) == {"follower_user_id"}
    assert fields(follow(follower_user_id="a\x00", followee_user_id="b")) == {"follower_user_id"}
    assert fields(follow(follower_user_id="a", followee_user_id="x" * 129)) == {"followee_user_id"}
    assert fields(graph_pb2.FriendsWhoLikedRequest(user_id="a", work_id="w", min_rating=6)) == {"min_rating"}
    assert not fields(graph_pb2.FriendsWhoLikedRequest(user_id="a", work_id="w", min_rating=0))
    interested = graph_pb2.FollowersInterestedInRequest
    assert fields(interested(user_id="a")) == {"genre_slugs"}  # at least one genre
    assert fields(interested(user_id="a", genre_slugs=["Fiction"])) == {"genre_slugs[0]"}
    assert fields(interested(user_id="a", genre_slugs=["fiction/"])) == {"genre_slugs[0]"}
    assert fields(interested(user_id="a", genre_slugs=[f"g{i}" for i in range(21)])) == {"genre_slugs"}
    assert not fields(interested(user_id="a", genre_slugs=["fiction/science-fiction"]))
    assert fields(graph_pb2.RecommendRequest(user_id="a", genre_slugs=["a//b"])) == {"genre_slugs[0]"}
    assert not fields(graph_pb2.RecommendRequest(user_id="a"))  # empty: the user's own genres
    assert fields(graph_pb2.ListFollowersRequest(user_id="a", page_size=-1,
                                                 page_token="x" * 1001)) == {"page_size", "page_token"}


async def test_a_user_cannot_follow_themselves() -> None:
    writer = GraphWriter(None)  # type: ignore[arg-type] - refused before any store call
    with pytest.raises(InvalidArgument) as err:
        await writer.Follow(graph_pb2.FollowRequest(follower_user_id="a", followee_user_id="a"), None)
    (violation,) = err.value.details[0].field_violations  # type: ignore[attr-defined]
    assert (violation.field, violation.description) == ("followee_user_id", "a user cannot follow themselves")
    with pytest.raises(InvalidArgument):
        await writer.Unfollow(graph_pb2.UnfollowRequest(follower_user_id="a", followee_user_id="a"), None)


def test_neo4j_away_is_unavailable_not_internal() -> None:
    from neo4j.exceptions import ServiceUnavailable

    from culture_graph.store import _unavailable
    from culture_grpc.errors import Unavailable

    with pytest.raises(Unavailable, match="retry"), _unavailable():
        raise ServiceUnavailable("connection refused")
