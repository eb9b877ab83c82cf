"""Client message ids claimed in Redis (culture_chat.claims), against the stack's real Redis and
Cassandra: ChatWriters in this process (two of them play two api-write replicas) on a keyspace and a
Redis prefix of their own.

What a user relies on: a retried send is a no-op -- when Redis answers, when Redis lost its claims
(restarted empty), and when Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from _chat_support import _drop

from culture.chat.v1 import chat_pb2
from culture_chat import claims as claims_module
from culture_chat import model
from culture_chat.claims import ClientIdClaims, claim_key, since_key
from culture_chat.live import LivePublisher, redis_client
from culture_chat.service import ChatWriter
from culture_chat.settings import ChatSettings
from culture_chat.store import ChatStore
from culture_runtime.settings import PlatformSettings
from culture_stack.server import Context

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Replicas:
    writers: list[ChatWriter]
    store: ChatStore
    redis: aioredis.Redis
    prefix: str

    async def direct(self, a: str, b: str) -> chat_pb2.Conversation:
        reply = await self.writers[0].CreateConversation(
            chat_pb2.CreateConversationRequest(creator_user_id=a, member_user_ids=[b]), None)
        return reply.conversation

    async def send(self, conv: str, sender: str, body: str, client_id: str, replica: int = 0) -> str:
        reply = await self.writers[replica].SendMessage(chat_pb2.SendMessageRequest(
            sender_user_id=sender, conversation_id=conv, body=body, client_message_id=client_id), None)
        return reply.message.message_id

    async def bodies(self, conv: str) -> list[str]:
        known = await self.store.conversation(conv)
        assert known is not None and known.last is not None
        newest = model.highest_id((1 << 60) - 1)
        page, _ = await self.store.history(known, self.store.bucket(known.last.message_id), newest, 100)
        return [m.body for m in reversed(page)]

    async def client_id_row(self, conv: str, sender: str, client_id: str) -> uuid.UUID | None:
        rows = await self.store._run("client_claim_get", (conv, sender, client_id))
        return rows[0].message_id if rows else None


@pytest_asyncio.fixture(scope="module")
async def replicas(chat_servers: Context) -> AsyncIterator[Replicas]:
    platform = PlatformSettings()
    run = "c" + uuid.uuid4().hex[:10]
    settings = ChatSettings(keyspace=f"chat_{run}", redis_prefix=f"{run}:chat:")
    store = ChatStore(platform.cassandra_contact_points or "", platform.cassandra_port, settings)
    await store.connect()
    store._prepared["client_claim_get"] = store.session.prepare(
        f"SELECT message_id FROM {store.ks}.client_ids WHERE conversation_id = ? AND sender = ? "
        "AND client_message_id = ?")
    redis = redis_client(platform.redis_url or "")
    lives, writers = [], []
    for _ in range(2):
        live = LivePublisher(platform.redis_url or "", settings.redis_prefix)
        claims = ClientIdClaims(redis, settings.redis_prefix, settings.client_id_ttl_seconds)
        await claims.start()
        lives.append(live)
        writers.append(ChatWriter(store, live, None, settings, f"{run}.chat.message-sent", claims))
    # conversations must be younger than Redis's "since" by the clocks' margin to be claimed in Redis
    await asyncio.sleep(claims_module.CLOCK_MARGIN_MS / 1000 + 0.1)
    try:
        yield Replicas(writers, store, redis, settings.redis_prefix)
    finally:
        for live in lives:
            await live.close()
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await store.close()
        await asyncio.to_thread(_drop, platform, settings.keyspace)


async def test_a_retry_is_answered_by_redis_and_the_claim_is_also_kept_in_cassandra(
        replicas: Replicas) -> None:
    conv = (await replicas.direct("ann", "bob")).conversation_id
    first = await replicas.send(conv, "ann", "once", "c-1")
    assert (await replicas.redis.get(claim_key(replicas.prefix, conv, "ann", "c-1"))).decode() == first
    assert str(await replicas.client_id_row(conv, "ann", "c-1")) == first, "the durable row, from the batch"
    assert await replicas.send(conv, "ann", "once", "c-1", replica=1) == first
    assert await replicas.bodies(conv) == ["once"]


async def test_concurrent_duplicates_on_two_replicas_store_one_message(replicas: Replicas) -> None:
    conv = (await replicas.direct("cid", "dan")).conversation_id
    ids = await asyncio.gather(*(replicas.send(conv, "cid", "only one", "dup", replica=i % 2)
                                 for i in range(6)))
    assert len(set(ids)) == 1
    assert await replicas.bodies(conv) == ["only one"]


async def test_after_redis_lost_its_claims_a_retry_is_still_a_no_op(replicas: Replicas) -> None:
    conv = (await replicas.direct("eve", "fay")).conversation_id
    first = await replicas.send(conv, "eve", "before the loss", "e-1")
    # Redis restarted empty: every claim and the "since" mark are gone
    keys = [k async for k in replicas.redis.scan_iter(match=f"{replicas.prefix}*")]
    await replicas.redis.delete(*keys)
    assert await replicas.send(conv, "eve", "before the loss", "e-1") == first, "found in Cassandra"
    assert await replicas.redis.get(since_key(replicas.prefix)) is not None, "Redis holds claims again"
    # this conversation is older than Redis's new "since": its claims go to Cassandra until the window passed
    second = await replicas.send(conv, "eve", "after the loss", "e-2")
    assert await replicas.redis.get(claim_key(replicas.prefix, conv, "eve", "e-2")) is None
    assert await replicas.send(conv, "eve", "after the loss", "e-2", replica=1) == second
    assert await replicas.bodies(conv) == ["before the loss", "after the loss"]


async def test_with_redis_away_a_retry_is_found_through_cassandra(replicas: Replicas) -> None:
    conv = (await replicas.direct("gus", "hal")).conversation_id
    away = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens there
    writer = replicas.writers[0]
    kept, writer.claims = writer.claims, ClientIdClaims(away, replicas.prefix, 86400)
    try:
        first = await replicas.send(conv, "gus", "while Redis is away", "g-1")
        assert await replicas.send(conv, "gus", "while Redis is away", "g-1") == first
    finally:
        writer.claims = kept
        with contextlib.suppress(Exception):
            await away.aclose()
    assert await replicas.client_id_row(conv, "gus", "g-1") == uuid.UUID(first), "claimed by the LWT"
    # Redis is back: the retry is still the first send's message
    assert await replicas.send(conv, "gus", "while Redis is away", "g-1", replica=1) == first
    assert await replicas.bodies(conv) == ["while Redis is away"]
