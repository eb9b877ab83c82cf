"""Chat across two gateways: 200 WebSocket clients (half on each gateway) in one-to-one pairs whose
two members sit on different gateways, so every message crosses Redis pub/sub.

Started as subprocesses: `culture serve chat --role api-write`, `--role api-read` and `--role relay`
(own keyspace, Redis prefix and topic namespace) and two `culture serve gateway --role api`. Tokens
are checked by a stub IdentityService in this process (ValidateToken: the token is the user id):
identity's own cost is not what this measures.

0. Warm-up: --warmup seconds at the slowest pace, not counted: each conversation's first send (the
   api-write caches its members), the new keyspace's first statements and the JIT of Cassandra's
   request paths are not what a running chat pays per message (the first seconds of a cold run had
   p99s two to four times the rest's).
1. Paced, at each pace of --interval (a sweep, slowest first): every client sends a message every
   INTERVAL seconds (with jitter) over its socket (`chat.send`) for about --seconds. Send-to-delivered
   = from writing the frame to the recipient's socket receiving the `chat.message`, p50/p99 (target
   p99 < 50 ms); messages/s delivered. 200 clients at 5 / 3 / 2 s offer ~40 / ~67 / ~100 messages/s
   (a person typing sends one every few seconds at most); the table at the end says at which paces
   the target holds. Latency grows with the load long before the saturated phase's rate: on a 2-core
   machine shared with the whole stack the chat's processes and Cassandra are busy most of the time
   at ~100 messages/s.
2. Saturated: every client sends back to back (the next after its `chat.sent`) for --burst-seconds;
   messages/s delivered and the latency under that load.
3. History: `ChatService.History` through gRPC (api-read), first page of 50 of a random pair's
   conversation, and a page behind a page token; p50/p99 over --queries calls.
Baseline in the same run: Redis PUBLISH -> subscriber receipt p50/p99 with the bare client.

    .venv/bin/python bench/chat.py [--clients 200] [--interval 5,3,2] [--seconds 40] [--warmup 10]
                                   [--burst-seconds 10] [--queries 300] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
import websockets
from events_common import load_note, percentile, serve_process, serve_role, up
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from culture.chat.v1 import chat_pb2, chat_pb2_grpc
from culture.identity.v1 import identity_pb2, identity_pb2_grpc
from culture_stack.endpoints import platform_settings
from culture_stack.server import say


class StubIdentity(identity_pb2_grpc.IdentityServiceServicer):
    async def ValidateToken(self, request: identity_pb2.ValidateTokenRequest,
                            context: grpc.aio.ServicerContext) -> identity_pb2.ValidateTokenResponse:
        return identity_pb2.ValidateTokenResponse(user_id=request.access_token, username=request.access_token)


@contextlib.asynccontextmanager
async def stub_identity() -> AsyncIterator[str]:
    server = grpc.aio.server()
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(StubIdentity(), server)
    checker = health.aio.HealthServicer()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(1)


async def _healthz(port: int) -> bool:
    def probe() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
            return int(reply.status) == 200

    try:
        return await asyncio.to_thread(probe)
    except OSError:
        return False


@contextlib.asynccontextmanager
async def gateway(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    async with serve_process("gateway", "api", env, log, port_env="CULTURE_GATEWAY_PORT",
                             ready=_healthz) as port:
        yield f"http://127.0.0.1:{port}"


class Client:
    """One user's socket: sends, and records when each peer message arrives."""

    def __init__(self, url: str, user: str) -> None:
        self.url, self.user = f"{url.replace('http://', 'ws://')}/ws?access_token={user}", user
        self.ws: Any = None
        self.conversation = ""
        self.received: dict[str, float] = {}  # client message id -> receive time (monotonic)
        self.sent_ok: dict[str, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await websockets.connect(self.url, open_timeout=30, ping_interval=None, max_queue=None)
        first = json.loads(await self.ws.recv())
        assert first["type"] == "ready", first
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in self.ws:
                now = time.monotonic()
                frame = json.loads(text)
                kind = frame.get("type")
                if kind == "chat.message" and frame["message"]["sender_user_id"] != self.user:
                    self.received[frame["message"]["client_message_id"]] = now
                elif kind in ("chat.sent", "chat.error"):
                    fut = self.sent_ok.pop(frame.get("client_message_id", ""), None)
                    if fut is not None and not fut.done():
                        if kind == "chat.sent":
                            fut.set_result(None)
                        else:
                            fut.set_exception(RuntimeError(str(frame)))

    async def send(self, cid: str, body: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent_ok[cid] = fut
        await self.ws.send(json.dumps({"type": "chat.send", "conversation_id": self.conversation,
                                       "body": body, "client_message_id": cid}))
        return fut

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def redis_baseline(redis_url: str, n: int = 500) -> list[float]:
    """Bare PUBLISH -> subscriber receipt, one at a time (ms)."""
    pub = aioredis.from_url(redis_url)
    sub = aioredis.from_url(redis_url)
    ps = sub.pubsub()
    channel = f"bench-chat-{uuid.uuid4().hex}"
    await ps.subscribe(channel)
    await ps.get_message(timeout=1)
    out = []
    try:
        for i in range(n):
            t0 = time.monotonic()
            await pub.publish(channel, str(i))
            while (await ps.get_message(timeout=1)) is None:
                pass
            out.append((time.monotonic() - t0) * 1000)
    finally:
        await ps.aclose()
        await pub.aclose()
        await sub.aclose()
    return out


def report(name: str, values: list[float]) -> None:
    if not values:
        say(f"  {name}: no samples")
        return
    say(f"  {name}: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
        f"max {max(values):.1f} ms (n={len(values)})")


async def settle(sent_at: dict[str, tuple[Client, float]], within: float = 30.0) -> None:
    """Until every sent message arrived, or `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(cid in peer.received for cid, (peer, _) in sent_at.items()):
            return
        await asyncio.sleep(0.05)


async def paced(pairs: list[tuple[Client, Client]], messages: int, interval: float,
                tag: str, *, quiet: bool = False) -> tuple[float, float, float]:
    """One pace; (messages/s delivered, p50, p99)."""
    senders = [c for pair in pairs for c in pair]
    sent_at: dict[str, tuple[Client, float]] = {}

    async def one(client: Client, peer: Client) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        for i in range(messages):
            cid = f"{client.user}-{tag}p{i}"
            sent_at[cid] = (peer, time.monotonic())
            await client.send(cid, f"paced {i} from {client.user}")
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))

    started = time.monotonic()
    await asyncio.gather(*(one(a, b) for a, b in pairs), *(one(b, a) for a, b in pairs))
    await settle(sent_at)
    elapsed = max(peer.received.get(cid, 0) for cid, (peer, _) in sent_at.items()) - started
    latencies = [(peer.received[cid] - t0) * 1000 for cid, (peer, t0) in sent_at.items()
                 if cid in peer.received]
    lost = len(sent_at) - len(latencies)
    if quiet:
        say(f"warm-up: {len(latencies)} messages delivered{f', {lost} NOT' if lost else ''} (not counted)")
        return 0.0, 0.0, 0.0
    say(f"paced: {len(senders)} clients x {messages} messages, one per ~{interval}s each")
    report("send -> delivered", latencies)
    say(f"  {len(latencies)} delivered in {elapsed:.1f}s = {len(latencies) / elapsed:.0f} messages/s"
        f"{f'; {lost} NOT delivered' if lost else ''}")
    if not latencies:
        return 0.0, 0.0, 0.0
    return len(latencies) / elapsed, percentile(latencies, 50), percentile(latencies, 99)


async def saturated(pairs: list[tuple[Client, Client]], seconds: float) -> None:
    sent_at: dict[str, tuple[Client, float]] = {}
    stop = time.monotonic() + seconds

    async def one(client: Client, peer: Client) -> None:
        i = 0
        while time.monotonic() < stop:
            cid = f"{client.user}-s{i}"
            sent_at[cid] = (peer, time.monotonic())
            await (await client.send(cid, f"burst {i}"))
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(one(a, b) for a, b in pairs), *(one(b, a) for a, b in pairs))
    await settle(sent_at)
    done = [(peer.received[cid] - t0) * 1000 for cid, (peer, t0) in sent_at.items() if cid in peer.received]
    elapsed = max(peer.received.get(cid, 0) for cid, (peer, _) in sent_at.items()) - started
    say(f"saturated: {2 * len(pairs)} clients sending back to back for {seconds:.0f}s")
    report("send -> delivered", done)
    say(f"  {len(done)} delivered in {elapsed:.1f}s = {len(done) / elapsed:.0f} messages/s"
        f"{f'; {len(sent_at) - len(done)} NOT delivered' if len(done) < len(sent_at) else ''}")


async def history(address: str, pairs: list[tuple[Client, Client]], queries: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        first, deep = [], []
        for _ in range(queries):
            a, _b = random.choice(pairs)
            t0 = time.monotonic()
            page = await stub.History(chat_pb2.HistoryRequest(user_id=a.user,
                                                              conversation_id=a.conversation, page_size=10))
            first.append((time.monotonic() - t0) * 1000)
            if page.next_page_token:
                t0 = time.monotonic()
                await stub.History(chat_pb2.HistoryRequest(user_id=a.user, conversation_id=a.conversation,
                                                           page_size=10, page_token=page.next_page_token))
                deep.append((time.monotonic() - t0) * 1000)
    say(f"History over gRPC ({queries} calls):")
    report("first page (10)", first)
    report("next page (10, by token)", deep)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200, help="sockets, half per gateway (default 200)")
    parser.add_argument("--interval", default="5,3,2",
                        help="seconds between a client's paced sends; a comma list is a sweep (5,3,2)")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each paced run (40)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds at the slowest pace before measuring, not counted (10; 0: none)")
    parser.add_argument("--burst-seconds", type=float, default=10.0, help="saturated phase length (10)")
    parser.add_argument("--queries", type=int, default=300, help="History calls (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the keyspace")
    args = parser.parse_args()
    try:
        intervals = sorted((float(x) for x in args.interval.split(",")), reverse=True)
    except ValueError:
        parser.error(f"--interval: seconds, comma-separated (got {args.interval!r})")
    if not intervals or min(intervals) <= 0:
        parser.error("--interval: positive seconds")
    up("cassandra", "redis", "kafka")
    platform = platform_settings()
    run = "b" + uuid.uuid4().hex[:8]
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-chat-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"bench/chat.py run {run}: {load_note()}; logs in {log_dir}")
    base = await redis_baseline(platform.redis_url or "")
    env = {"CULTURE_CHAT_KEYSPACE": f"chat_{run}", "CULTURE_CHAT_REDIS_PREFIX": f"{run}:chat:",
           "CULTURE_TOPIC_NAMESPACE": run, "CULTURE_GATEWAY_CHAT_PREFIX": f"{run}:chat:"}
    async with stub_identity() as identity, \
            serve_role("chat", "api-write", env, log_dir / "chat-api-write.log", within=120) as write, \
            serve_role("chat", "api-read", env, log_dir / "chat-api-read.log", within=120) as read, \
            serve_role("chat", "relay", env, log_dir / "chat-relay.log", within=120):
        gw_env = {**env, "CULTURE_GATEWAY_IDENTITY_READ": identity,
                  "CULTURE_GATEWAY_IDENTITY_WRITE": identity,
                  "CULTURE_GATEWAY_CHAT_WRITE": write, "CULTURE_GATEWAY_CHAT_READ": read,
                  "CULTURE_GATEWAY_REQUIRED_UPSTREAMS": '["chat-write","chat-read"]'}
        async with gateway(gw_env, log_dir / "gateway-1.log") as gw1, \
                gateway(gw_env, log_dir / "gateway-2.log") as gw2:
            n = args.clients // 2
            pairs = [(Client(gw1, f"{run}-a{i}"), Client(gw2, f"{run}-b{i}")) for i in range(n)]
            async with grpc.aio.insecure_channel(write) as channel:
                stub = chat_pb2_grpc.ChatServiceStub(channel)
                for a, b in pairs:
                    reply = await stub.CreateConversation(chat_pb2.CreateConversationRequest(
                        creator_user_id=a.user, member_user_ids=[b.user]))
                    a.conversation = b.conversation = reply.conversation.conversation_id
            t0 = time.monotonic()
            await asyncio.gather(*(c.open() for pair in pairs for c in pair))
            say(f"{2 * n} sockets open across two gateways in {time.monotonic() - t0:.1f}s")
            try:
                if args.warmup > 0:
                    warm = max(1, round(args.warmup / intervals[0]))
                    await paced(pairs, warm, intervals[0], "w", quiet=True)
                paces = []
                for k, interval in enumerate(intervals):
                    messages = max(3, round(args.seconds / interval))
                    paces.append((interval, *await paced(pairs, messages, interval, f"r{k}")))
                say("paced, send -> delivered (target p99 < 50 ms):")
                for interval, rate, p50, p99 in paces:
                    say(f"  a message every {interval:g}s per client: {rate:5.0f} messages/s  "
                        f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  {'met' if p99 < 50 else 'NOT met'}")
                await saturated(pairs, args.burst_seconds)
                await history(read, pairs, args.queries)
            finally:
                await asyncio.gather(*(c.close() for pair in pairs for c in pair))
    say("baseline, bare Redis PUBLISH -> subscriber in this process:")
    report("publish -> received", base)
    if args.keep:
        say(f"(keyspace chat_{run} kept: DROP KEYSPACE chat_{run})")
    else:
        await asyncio.to_thread(drop_keyspace, platform, f"chat_{run}")
    say(f"({load_note()})")


def drop_keyspace(platform: Any, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster((platform.cassandra_contact_points or "").split(","), port=platform.cassandra_port,
                      protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
