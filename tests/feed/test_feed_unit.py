"""The feed's pure code: item ids, buckets, page tokens, the read-time merge, the admission policy,
the request rules and the settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid

import pytest
from pydantic import ValidationError

from culture.feed.v1 import feed_pb2
from culture_feed import model
from culture_feed.service import FeedReader
from culture_feed.settings import FeedSettings
from culture_grpc.validation import request_violations
from culture_runtime.settings import MissingSettings

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_item_ids_are_deterministic_per_event_and_recipient_and_carry_the_time() -> None:
    a = model.item_id(T0, "ev-1", "ann")
    assert a == model.item_id(T0, "ev-1", "ann")  # a redelivery rewrites the same cells
    assert a != model.item_id(T0, "ev-1", "bob") != model.item_id(T0, "ev-2", "ann")
    assert a.version == 1 and a.variant == uuid.RFC_4122
    assert model.time_of(a) == T0
    assert model.ticks_of(a) == model.uuid_ticks(T0)


def test_the_order_key_sorts_by_time_then_by_the_low_bits_with_clear_top_bits() -> None:
    rng = random.Random(7)
    ids = [model.item_id(T0 + dt.timedelta(microseconds=rng.randrange(3)), f"e{i}", "u") for i in range(200)]
    for i in ids:
        low = (i.int & (2**64 - 1)).to_bytes(8, "big")
        assert low[0] >> 6 == 0b10 and all(b < 0x80 for b in low[1:])
    ordered = sorted(ids, key=model.order_key)
    assert [model.ticks_of(i) for i in ordered] == sorted(model.ticks_of(i) for i in ids)
    # signed and unsigned byte order agree on these ids (Cassandra's order does not depend on which)
    signed = sorted(ids, key=lambda i: (i.time, [b - 256 if b > 127 else b for b in i.bytes[8:]]))
    assert signed == ordered
    # the bound of a time is above every id of that time and below every later one
    bound = model.bound_id(model.uuid_ticks(T0))
    assert all(model.order_key(i) <= model.order_key(bound) for i in ids if i.time == bound.time)
    later = model.item_id(T0 + dt.timedelta(microseconds=1), "x", "u")
    assert model.order_key(later) > model.order_key(bound)


def test_buckets_split_time_into_fixed_spans() -> None:
    day = 86400
    a = model.item_id(T0, "e", "u")
    b = model.item_id(T0 + dt.timedelta(days=1), "e", "u")
    assert model.bucket_of(b, day) == model.bucket_of(a, day) + 1
    assert model.bucket_of(a, day) == int(T0.timestamp()) // day


def test_page_tokens_round_trip_and_foreign_tokens_are_refused() -> None:
    item = model.item_id(T0, "e", "u")
    assert model.decode_token(model.encode_token(item)) == item
    assert model.decode_token("") is None
    for bad in ("x", "!!!", model.encode_token(item)[:-3], "ZjE6bm90LWEtdXVpZA", str(uuid.uuid4())):
        with pytest.raises(model.BadCursor):
            model.decode_token(bad)


def test_page_size_follows_the_contract() -> None:
    assert [model.page_size(n) for n in (0, -3, 1, 100, 101, 10_000)] == [20, 20, 1, 100, 100, 100]


def _items(times: list[int], source: str, reader: str = "r") -> list[model.Item]:
    out = [model.Item(model.item_id(T0 + dt.timedelta(seconds=t), f"{source}{t}", reader), "a", f"r{t}")
           for t in times]
    return sorted(out, key=lambda i: model.order_key(i.item_id), reverse=True)


def test_merge_pages_through_several_sources_exactly_once_in_order() -> None:
    own = _items(list(range(0, 60, 2)), "own")
    celebrity = _items(list(range(1, 60, 3)), "celeb")
    everything = sorted({i.item_id: i for i in own + celebrity}.values(),
                        key=lambda i: model.order_key(i.item_id), reverse=True)
    seen: list[model.Item] = []
    after = None
    while True:
        def older(src: list[model.Item], after: uuid.UUID | None = after) -> list[model.Item]:
            bound = model.order_key(after) if after is not None else None
            return [i for i in src if bound is None or model.order_key(i.item_id) < bound][:8]
        page, more = model.merge_page([older(own), older(celebrity), older(own)[:3]], 7, after)
        seen += page
        if not more:
            break
        after = page[-1].item_id
    assert [i.item_id for i in seen] == [i.item_id for i in everything]


class _Celebrities:
    """A store that only answers celebrities(), each call with the next set, or failing."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def celebrities(self) -> set[str]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("cassandra away")
        return {f"star{self.calls}"}


async def test_an_expired_celebrity_set_serves_while_one_background_read_refreshes_it() -> None:
    store = _Celebrities()
    reader = FeedReader(store, FeedSettings(celebrity_cache_seconds=60))  # type: ignore[arg-type]
    assert await reader.celebrities() == {"star1"}  # the first read waits for it
    assert await reader.celebrities() == {"star1"} and store.calls == 1  # cached
    assert reader._celebrities is not None
    reader._celebrities = (reader._celebrities[0] - 61, reader._celebrities[1])  # expired
    assert await reader.celebrities() == {"star1"}  # served at once, one refresh started
    assert await reader.celebrities() == {"star1"}  # not a second refresh
    assert reader._refresh is not None
    await reader._refresh
    assert store.calls == 2 and await reader.celebrities() == {"star2"}
    store.fail = True  # a failed refresh keeps the last set
    reader._celebrities = (reader._celebrities[0] - 61, reader._celebrities[1])
    assert await reader.celebrities() == {"star2"}
    await reader._refresh
    assert await reader.celebrities() == {"star2"}


async def test_a_celebrity_cache_of_zero_reads_the_set_for_every_page() -> None:
    store = _Celebrities()
    reader = FeedReader(store, FeedSettings(celebrity_cache_seconds=0))  # type: ignore[arg-type]
    assert [await reader.celebrities() for _ in range(3)] == [{"star1"}, {"star2"}, {"star3"}]


def test_merge_of_nothing_is_an_empty_last_page() -> None:
    assert model.merge_page([[], []], 20) == ([], False)


def test_the_admission_policy_refuses_full_matches_only() -> None:
    assert model.refused("ann", "") is None
    assert model.refused("svc-backup", "svc-.*") is not None
    assert model.refused("my-svc-backup", "svc-.*") is None
    assert "admission policy" in (model.refused("root", "(admin|root)") or "")


def test_request_rules_are_the_contracts() -> None:
    # GetFeedRequest's rules are its buf.validate annotations, checked by the interceptor every
    # server runs (the servicer has no copy of them)
    assert request_violations(feed_pb2.GetFeedRequest(user_id="u1", page_size=5)) == []
    fields = {f for f, _ in request_violations(feed_pb2.GetFeedRequest(user_id="", page_size=-1,
                                                                       page_token="x" * 1001))}
    assert fields == {"user_id", "page_size", "page_token"}
    assert request_violations(feed_pb2.GetFeedRequest(user_id="a\x00b")) != []
    assert request_violations(feed_pb2.GetFeedRequest(user_id="x" * 129)) != []


def test_settings_have_no_endpoint_defaults_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CULTURE_FEED_GRAPH_READ", "CULTURE_FEED_REFUSED_USERNAMES"):
        monkeypatch.delenv(name, raising=False)
    settings = FeedSettings()
    assert settings.graph_read is None and settings.consumer_group == "feed"
    with pytest.raises(MissingSettings, match="CULTURE_FEED_GRAPH_READ"):
        settings.require("graph_read")
    monkeypatch.setenv("CULTURE_FEED_REFUSED_USERNAMES", "(unclosed")
    with pytest.raises(ValidationError):
        FeedSettings()
    monkeypatch.setenv("CULTURE_FEED_REFUSED_USERNAMES", "svc-.*")
    monkeypatch.setenv("CULTURE_FEED_KEYSPACE", "Bad-Name")
    with pytest.raises(ValidationError):
        FeedSettings()


async def test_a_store_outage_is_waited_out_and_other_errors_pass_through() -> None:
    from cassandra.cluster import NoHostAvailable

    from culture_events.message import Message
    from culture_feed.worker import cassandra_outage, wait_out_store_outages

    waits: list[float] = []
    calls: list[int] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def flaky(msg: Message) -> list[Message]:
        calls.append(1)
        if len(calls) <= 5:
            raise NoHostAvailable("down", {})
        return []

    handler = wait_out_store_outages(initial=0.5, maximum=2.0, sleep=sleep)(flaky)
    assert await handler(Message(b"")) == []
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0] and len(calls) == 6

    async def broken(msg: Message) -> list[Message]:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await wait_out_store_outages(sleep=sleep)(broken)(Message(b""))
    assert cassandra_outage(NoHostAvailable("x", {})) and not cassandra_outage(TimeoutError())


class _Cluster:
    """A driver cluster whose connect() fails while `refusals` (shared by every cluster made) last; a
    failed connect shuts it down, as the driver's does."""

    def __init__(self, refusals: list[int]) -> None:
        self.refusals, self.down = refusals, False

    def connect(self) -> str:
        from cassandra.cluster import NoHostAvailable

        assert not self.down, "a shut-down cluster cannot connect"
        if self.refusals[0] > 0:
            self.refusals[0] -= 1
            self.down = True
            raise NoHostAvailable("Unable to connect to any servers", {"127.0.0.1:9042": OSError("refused")})
        return "session"

    def shutdown(self) -> None:
        self.down = True


def test_a_role_keeps_trying_to_reach_cassandra_at_start_until_its_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cassandra.cluster import NoHostAvailable

    from culture_runtime import cassandra

    slept: list[float] = []
    monkeypatch.setattr(cassandra.time, "sleep", slept.append)
    settings = FeedSettings(graph_read="x:1", start_timeout_seconds=60)
    made: list[_Cluster] = []
    refusals = [3]

    def make() -> _Cluster:
        made.append(_Cluster(refusals))
        return made[-1]

    cluster, session = cassandra.open_session(make, settings, "feed")
    assert session == "session" and cluster is made[-1] and len(made) == 4  # a new cluster each try
    assert slept == [0.2, 0.4, 0.8]  # backing off (culture_runtime.startup)
    with pytest.raises(NoHostAvailable):  # 0: one try, the error as it came
        cassandra.open_session(lambda: _Cluster([1]), FeedSettings(start_timeout_seconds=0), "feed")


def test_start_up_statements_contending_on_the_layout_row_are_tried_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Roles started together record the keyspace's layout with one lightweight transaction each;
    Cassandra answers the losers "CAS operation timed out" (CI saw a role exit on it). Such a
    statement is tried again, an unrelated refusal is not, and the deadline still holds."""
    from cassandra import ConsistencyLevel, InvalidRequest, WriteTimeout

    from culture_runtime import cassandra

    monkeypatch.setattr(cassandra.time, "sleep", lambda _s: None)
    answers: list[object] = [WriteTimeout("CAS operation timed out", consistency=ConsistencyLevel.SERIAL,
                                          required_responses=1, received_responses=0, write_type=5),
                             InvalidRequest("unconfigured table meta"), "row"]

    def call() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert cassandra.KeyspaceStore._retry_startup(call) == "row" and not answers
    with pytest.raises(InvalidRequest):
        cassandra.KeyspaceStore._retry_startup(lambda: (_ for _ in ()).throw(InvalidRequest("syntax error")))
    with pytest.raises(WriteTimeout):
        cassandra.KeyspaceStore._retry_startup(
            lambda: (_ for _ in ()).throw(WriteTimeout("CAS operation timed out", write_type=5)), within=-1)


async def test_a_first_contact_is_tried_again_while_transient_and_given_up_at_the_deadline() -> None:
    """culture_runtime.startup: transient errors are retried (logged), others raised at once, and the
    last transient one is raised when the time is up."""
    from culture_runtime.startup import until_reachable

    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("no answer yet")
        return "pong"

    assert await until_reachable("test server", flaky, transient=(TimeoutError,), within=30) == "pong"
    assert len(calls) == 3

    async def wrong() -> None:
        calls.append(1)
        raise ValueError("a configuration error is not waited out")

    calls.clear()
    with pytest.raises(ValueError):
        await until_reachable("test server", wrong, transient=(TimeoutError,), within=30)
    assert len(calls) == 1

    async def away() -> None:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(ConnectionRefusedError):
        await until_reachable("test server", away, transient=(OSError,), within=0.5)
