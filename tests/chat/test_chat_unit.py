"""The chat's pure code: conversation ids, message ids and their order, buckets, page tokens, unread
counts, presence arithmetic and the contract's validation rules."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from culture.chat.v1 import chat_pb2
from culture_chat import model
from culture_chat.live import online_from
from culture_events.outbox.cassandra import shard_of
from culture_grpc.validation import request_violations

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_a_direct_conversation_id_is_the_same_both_ways_and_differs_per_pair() -> None:
    ab = model.direct_id("ann", "bob")
    assert ab == model.direct_id("bob", "ann")
    assert ab != model.direct_id("ann", "cat") != model.direct_id("bob", "cat")
    assert model.is_conversation_id(ab) and model.is_direct(ab)
    # the separator keeps ("a\x00b", "c") apart from ("a", "b\x00c")-like concatenation collisions
    assert model.direct_id("ab", "c") != model.direct_id("a", "bc")


def test_group_ids_are_random_or_derived_from_the_request_id() -> None:
    assert model.group_id("ann") != model.group_id("ann")
    assert model.group_id("ann", "r1") == model.group_id("ann", "r1") != model.group_id("bob", "r1")
    assert model.is_conversation_id(model.group_id("ann")) and not model.is_direct(model.group_id("ann"))
    for bad in ("", "d-xyz", "x-" + "0" * 32, "d-" + "0" * 31, "d-" + "0" * 32 + "\x00"):
        assert not model.is_conversation_id(bad)


def test_message_ids_increase_within_a_process_even_on_one_clock_tick() -> None:
    ids = model.MessageIds()
    now = 1_780_000_000 * 10**9
    issued = [ids.next(now) for _ in range(1000)]
    keys = [model.order_key(i) for i in issued]
    assert keys == sorted(keys) and len(set(keys)) == 1000
    assert all(i.version == 1 and i.variant == uuid.RFC_4122 for i in issued)


def test_order_key_matches_cassandras_signed_byte_order() -> None:
    def cassandra_key(u: uuid.UUID) -> tuple[int, bytes]:
        low = u.bytes[8:]
        return u.time, bytes((b ^ 0x80) for b in low)  # signed bytes compared as unsigned

    ids = model.MessageIds()
    sample = [ids.next(1_780_000_000 * 10**9 + random.randrange(10**6)) for _ in range(500)]
    assert sorted(sample, key=model.order_key) == sorted(sample, key=cassandra_key)
    t = model.uuid_ticks(T0)
    mid = ids.next(int(T0.timestamp()) * 10**9 + 10**9)  # later than T0: the ids never go back
    first = model.MessageIds().next(int(T0.timestamp()) * 10**9)
    low, high = model.order_key(model.lowest_id(t)), model.order_key(model.highest_id(t))
    assert low <= model.order_key(first) <= high < model.order_key(mid)


def test_time_and_buckets() -> None:
    m = model.MessageIds().next(int(T0.timestamp()) * 10**9)
    assert model.time_of(m) == T0
    day = 86400
    assert model.bucket_of(m, day) == model.bucket_at(T0, day) == int(T0.timestamp()) // day
    later = model.MessageIds().next((int(T0.timestamp()) + day) * 10**9)
    assert model.bucket_of(later, day) == model.bucket_of(m, day) + 1


def test_page_tokens_round_trip_and_refuse_anything_else() -> None:
    m = model.MessageIds().next()
    assert model.decode_token(model.encode_token(42, m)) == (42, m)
    assert model.decode_token("") is None
    for bad in ("x", "!!!", "YWJj", model.encode_token(1, m)[:-3], "YzE6eDp5"):
        with pytest.raises(model.BadCursor):
            model.decode_token(bad)
    with pytest.raises(model.BadCursor):
        model.parse_message_id(str(uuid.uuid4()))  # version 4: not one of ours


def test_list_tokens_round_trip_and_refuse_anything_else() -> None:
    conv = model.direct_id("ann", "bob")
    assert model.decode_list_token(model.encode_list_token((123, 45), conv)) == ((123, 45), conv)
    assert model.decode_list_token("") is None
    other = model.encode_token(1, model.MessageIds().next())
    for bad in ("x", other, model.encode_list_token((1, 2), "d-x")):
        with pytest.raises(model.BadCursor):
            model.decode_list_token(bad)


def test_limits_unread_and_members() -> None:
    assert model.history_limit(0) == model.DEFAULT_HISTORY
    assert model.history_limit(10_000) == model.MAX_HISTORY
    assert model.conversations_limit(3) == 3
    assert model.unread(["bob", "ann", "bob"], "ann") == 2
    assert model.unread(["bob"] * 500, "ann") == model.UNREAD_CAP
    assert model.members_of("ann", ["bob", "ann", "cat", "bob"]) == ["ann", "bob", "cat"]


def test_presence_is_online_while_a_connection_is_in_the_future() -> None:
    assert online_from({}, 1000) == (False, 0)
    assert online_from({b"c1": b"900", b"c2": b"1500"}, 1000) == (True, 1500)
    assert online_from({b"c1": b"900", b"c2": b"junk"}, 1000) == (False, 900)


def test_outbox_shards_keep_one_key_together() -> None:
    assert shard_of("conv-1", 8) == shard_of("conv-1", 8)
    assert {shard_of(f"c{i}", 8) for i in range(200)} == set(range(8))
    assert shard_of(None, 8) == 0


def test_the_contract_refuses_empty_oversized_and_nul_bodies_and_a_missing_target() -> None:
    ok = chat_pb2.SendMessageRequest(sender_user_id="ann", recipient_user_id="bob", body="hi")
    assert request_violations(ok) == []
    fields = {f for f, _ in request_violations(chat_pb2.SendMessageRequest(
        sender_user_id="ann", recipient_user_id="bob", body=""))}
    assert fields == {"body"}
    assert {f for f, _ in request_violations(chat_pb2.SendMessageRequest(
        sender_user_id="ann", recipient_user_id="bob", body="x" * 4001))} == {"body"}
    assert {f for f, _ in request_violations(chat_pb2.SendMessageRequest(
        sender_user_id="ann", recipient_user_id="bob", body="a\x00b"))} == {"body"}
    both = request_violations(chat_pb2.SendMessageRequest(sender_user_id="ann", recipient_user_id="bob",
                                                          conversation_id="d-" + "0" * 32, body="x"))
    neither = request_violations(chat_pb2.SendMessageRequest(sender_user_id="ann", body="x"))
    assert both and neither
    group = chat_pb2.CreateConversationRequest(creator_user_id="ann",
                                               member_user_ids=[f"u{i}" for i in range(50)])
    assert {f for f, _ in request_violations(group)} == {"member_user_ids"}


def test_a_live_frame_decodes_back_to_its_message_and_anything_else_to_none() -> None:
    import json

    from culture_chat.live import decode_frame
    from culture_chat.service import live_frame, message_of_frame

    direct = chat_pb2.ChatMessage(message_id=str(uuid.uuid1()), conversation_id=model.direct_id("ann", "bob"),
                                  sender_user_id="ann", recipient_user_id="bob", body="hi\nthere",
                                  client_message_id="c1", member_user_ids=["ann", "bob"])
    direct.send_time.FromDatetime(T0.replace(microsecond=123456))
    group = chat_pb2.ChatMessage(message_id=str(uuid.uuid1()), conversation_id="g-" + "1" * 32,
                                 sender_user_id="ann", body="all", member_user_ids=["ann", "bob", "cat"])
    group.send_time.FromDatetime(T0)
    for msg in (direct, group):
        assert message_of_frame(decode_frame(json.dumps(live_frame(msg)))) == msg
    assert decode_frame(b"not json") is None and decode_frame("[1]") is None
    assert message_of_frame({"type": "chat.presence", "user_id": "ann", "status": "online"}) is None
    assert message_of_frame({"type": "chat.message", "message": {"body": "no ids"}}) is None
