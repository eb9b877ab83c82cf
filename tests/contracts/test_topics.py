"""Every event's topic is written once, in the contract, and matches the architecture."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from culture.catalog.v1 import catalog_pb2
from culture.events.v1 import catalog_events_pb2, feed_events_pb2, graph_events_pb2, identity_events_pb2
from culture_contracts import topics

pytestmark = pytest.mark.unit

# The topics ARCHITECTURE.md names (one per event type), plus the mailer's two (registration slice)
# and the catalog's work and review life cycle (issue #14: the graph mirrors works; review updates
# and deletions keep interests and feeds exact).
ARCHITECTURE_TOPICS = {
    "identity.user-registered": "UserRegistered",
    "catalog.profile-created": "ProfileCreated",
    "catalog.review-created": "ReviewCreated",
    "catalog.review-updated": "ReviewUpdated", "catalog.review-deleted": "ReviewDeleted",
    "catalog.work-created": "WorkCreated", "catalog.work-updated": "WorkUpdated",
    "catalog.profile-marked-incomplete": "ProfileMarkedIncomplete",
    "graph.follow-created": "FollowCreated",
    "graph.follow-removed": "FollowRemoved",
    "graph.user-node-created": "UserNodeCreated",
    "graph.interests-gained": "InterestsGained",
    "feed.feed-created": "FeedCreated",
    "feed.creation-failed": "FeedCreationFailed",
    "chat.message-sent": "MessageSent",
    "mailer.welcome-mail-sent": "WelcomeMailSent", "mailer.welcome-mail-failed": "WelcomeMailFailed",
}


def test_the_topic_table_is_the_architectures() -> None:
    assert set(topics.ALL_TOPICS) == set(ARCHITECTURE_TOPICS)
    assert list(topics.ALL_TOPICS) == sorted(topics.ALL_TOPICS)
    for topic, message_name in ARCHITECTURE_TOPICS.items():
        spec = topics.spec_for_topic(topic)
        assert spec.event_type == f"culture.events.v1.{message_name}"
        assert spec.message_class.DESCRIPTOR.name == message_name


def test_topic_key_and_type_of_an_event() -> None:
    event = identity_events_pb2.UserRegistered(user_id="u-1", username="ada", email="ada@example.org")
    assert topics.topic_of(event) == "identity.user-registered"
    assert topics.topic_of(identity_events_pb2.UserRegistered) == "identity.user-registered"
    assert topics.event_type_of(event) == "culture.events.v1.UserRegistered"
    assert topics.key_of(event) == "u-1"
    assert topics.key_of(graph_events_pb2.FollowCreated(follower_user_id="a", followee_user_id="b")) == "a"
    assert topics.key_of(catalog_events_pb2.ReviewCreated(review_id="r-9", author_user_id="a")) == "r-9"


def test_an_event_without_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"FeedCreated\.user_id"):
        topics.key_of(feed_events_pb2.FeedCreated())


def test_a_non_event_has_no_topic() -> None:
    with pytest.raises(KeyError, match="not an event"):
        topics.topic_of(catalog_pb2.Work())
    with pytest.raises(KeyError, match="known topics"):
        topics.spec_for_topic("catalog.no-such-thing")


def test_decode_by_event_type_round_trips() -> None:
    created = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    event = feed_events_pb2.FeedCreationFailed(
        user_id="u-2", reason="cassandra down", attempts=5, fail_time=created
    )
    decoded = topics.decode_event(topics.event_type_of(event), event.SerializeToString())
    assert decoded == event
    with pytest.raises(KeyError, match="unknown event type"):
        topics.event_class_for("culture.events.v1.Nope")


def test_key_fields_are_declared_on_every_event() -> None:
    for spec in topics.EVENTS.values():
        field = spec.message_class.DESCRIPTOR.fields_by_name[spec.key_field]
        assert field.name.endswith("_id"), spec
