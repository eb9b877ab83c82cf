"""Chat end to end: two gateway processes, the chat's roles, real Cassandra, Redis and Kafka.

X is connected to gateway 1, Y to gateway 2 (so every live message crosses Redis pub/sub)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from _chat_support import PRESENCE_TTL, ChatRun, Socket, TcpProxy, User, new_user, send_over

from culture.chat.v1 import chat_pb2, chat_pb2_grpc
from culture_chat.live import LivePublisher, user_channel
from culture_chat.service import ChatReader, live_frame
from culture_chat.settings import ChatSettings
from culture_events.testing import wait_until
from culture_grpc.errors import Unavailable

pytestmark = pytest.mark.integration


async def _direct(gateway: str, a: User, b: User) -> str:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        reply = await http.post("/api/conversations", json={"member_user_ids": [b.user_id]}, headers=a.auth)
        assert reply.status_code == 201, reply.text
        conv = reply.json()["conversation"]
        assert conv["kind"] == "direct" and sorted(conv["member_user_ids"]) == sorted([a.user_id, b.user_id])
        return conv["conversation_id"]


async def _history(gateway: str, user: User, conversation_id: str) -> list[dict]:
    """Every message of the conversation, oldest first, paging back through the cursor."""
    out: list[dict] = []
    token = ""
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        while True:
            reply = await http.get(f"/api/conversations/{conversation_id}/messages",
                                   params={"page_size": 7, **({"page_token": token} if token else {})},
                                   headers=user.auth)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            out += page["messages"]
            token = page["next_page_token"]
            if not token:
                return list(reversed(out))


async def test_messages_both_ways_live_in_order_and_history_after_reconnect(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    assert conv == await _direct(gw2, y, x)  # the same conversation from either side
    async with Socket(gw1, x) as sx, Socket(gw2, y) as sy:
        # the client offered permessage-deflate (websockets does by default); the gateway declines it
        # (CULTURE_GATEWAY_WS_PER_MESSAGE_DEFLATE, off: small frames, CPU and a zlib context per socket)
        assert "Sec-WebSocket-Extensions" not in sx.ws.response.headers
        sent: list[str] = []
        for i in range(15):
            sender = sx if i % 3 else sy
            body = f"m{i} from {'x' if sender is sx else 'y'}"
            await send_over(sender, conv, body)
            sent.append(body)
        for s in (sx, sy):  # both sides see every message, live, in the order they were sent
            await wait_until(lambda s=s: len(s.bodies(conv)) >= len(sent), 20, "live delivery")
            assert s.bodies(conv) == sent
        # the recipient acknowledges: the sender hears it was delivered
        last = sy.of("chat.message")[-1]["message"]
        # (the frame's conversation is not believed: the acknowledgement names the message's own)
        await sy.send({"type": "chat.ack", "message_id": last["message_id"], "conversation_id": "d-forged"})
        if last["sender_user_id"] == x.user_id:
            delivered = await sx.wait_for(
                lambda f: f["type"] == "chat.delivered" and f["message_id"] == last["message_id"],
                "the delivery acknowledgement")
            assert delivered["conversation_id"] == conv and delivered["user_id"] == y.user_id
    history = await _history(gw2, y, conv)
    assert [m["body"] for m in history] == sent
    ids = [m["message_id"] for m in history]
    assert len(set(ids)) == len(ids)
    # a reconnecting client says what it has and gets the rest, in order
    async with Socket(gw2, y) as again:
        await again.send({"type": "chat.resume", "last_message_id": ids[4]})
        await again.wait_for(lambda f: f["type"] == "chat.caught-up", "the catch-up")
        assert again.bodies(conv) == sent[5:]


async def test_a_duplicate_client_message_id_stores_one_message(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    cid = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=30) as http:
        replies = await asyncio.gather(*(
            http.post(f"{gw}/api/conversations/{conv}/messages",
                      json={"body": "once", "client_message_id": cid}, headers=x.auth)
            for gw in (gw1, gw2, gw1, gw2)))
    assert {r.status_code for r in replies} == {201}, [r.text for r in replies]
    assert len({r.json()["message"]["message_id"] for r in replies}) == 1
    history = await _history(gw1, x, conv)
    assert [m["body"] for m in history] == ["once"]
    listed = await httpx.AsyncClient(base_url=gw2, timeout=30).get("/api/conversations", headers=y.auth)
    mine = next(c for c in listed.json()["conversations"] if c["conversation_id"] == conv)
    assert mine["unread_count"] == 1 and mine["last_message"]["body"] == "once"


async def test_a_non_member_is_refused_without_a_hint_whether_it_exists(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y, z = await new_user(gw1, "x"), await new_user(gw1, "y"), await new_user(gw2, "z")
    conv = await _direct(gw1, x, y)
    unknown = "d-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=gw2, timeout=30) as http:
        for target in (conv, unknown):
            read = await http.get(f"/api/conversations/{target}/messages", headers=z.auth)
            send = await http.post(f"/api/conversations/{target}/messages", json={"body": "hi"},
                                   headers=z.auth)
            mark = await http.post(f"/api/conversations/{target}/read", json={}, headers=z.auth)
            assert (read.status_code, send.status_code, mark.status_code) == (403, 403, 403)
            assert read.json()["error"]["message"] == send.json()["error"]["message"]
    async with grpc.aio.insecure_channel(chat_run.grpc("api-read")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chat_pb2_grpc.ChatServiceStub(channel).History(
                chat_pb2.HistoryRequest(user_id=z.user_id, conversation_id=conv))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_bad_input_is_4xx_naming_the_field(chat_run: ChatRun) -> None:
    gw1, _ = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw1, "y")
    conv = await _direct(gw1, x, y)
    async with httpx.AsyncClient(base_url=gw1, timeout=30) as http:
        for body in ("", "   ", "x" * 4001, "nul\x00here"):
            reply = await http.post(f"/api/conversations/{conv}/messages", json={"body": body},
                                    headers=x.auth)
            assert reply.status_code == 422, (body[:10], reply.text)
            assert "body" in reply.json()["error"]["fields"]
        for path in ("/api/conversations/not-an-id/messages", "/api/conversations/d-%00/messages"):
            reply = await http.get(path, headers=x.auth)
            assert reply.status_code == 422, reply.text
        reply = await http.get(f"/api/conversations/{conv}/messages", params={"page_token": "garbage"},
                               headers=x.auth)
        assert reply.status_code == 422 and "page_token" in reply.json()["error"]["fields"]
        reply = await http.post("/api/conversations", json={"member_user_ids": [x.user_id]}, headers=x.auth)
        assert reply.status_code == 422
        reply = await http.post("/api/conversations", json={"member_user_ids": [f"u{i}" for i in range(50)],
                                                            "title": "too many"}, headers=x.auth)
        assert reply.status_code == 422 and "member_user_ids" in reply.json()["error"]["fields"]
        reply = await http.get("/api/presence", headers=x.auth)
        assert reply.status_code == 422
        assert (await http.get(f"/api/conversations/{conv}/messages")).status_code == 401
    async with Socket(gw1, x) as sx:
        await sx.send({"type": "chat.send", "conversation_id": conv, "body": "", "client_message_id": "e1"})
        err = await sx.wait_for(lambda f: f["type"] == "chat.error", "the error frame")
        assert err["status"] == "INVALID_ARGUMENT" and "body" in err["fields"]
        await sx.ws.send("not json")
        await sx.wait_for(lambda f: f["type"] == "chat.error" and "JSON" in f["message"], "the JSON error")
        await sx.ws.send("[" * 50_000)  # json.loads alone raises RecursionError on this
        await sx.wait_for(lambda f: f["type"] == "chat.error" and "deeper" in f["message"], "the depth error")
        assert (await send_over(sx, conv, "still here"))["body"] == "still here"  # the socket lives on


async def test_groups_unread_counts_and_read_marks(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y, z = await new_user(gw1, "x"), await new_user(gw2, "y"), await new_user(gw2, "z")
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.post(f"{gw1}/api/conversations", headers=x.auth,
                                json={"member_user_ids": [y.user_id, z.user_id], "title": "book club"})
        assert reply.status_code == 201, reply.text
        group = reply.json()["conversation"]
        assert group["kind"] == "group" and group["member_user_ids"][0] == x.user_id
        gid = group["conversation_id"]
        async with Socket(gw2, y) as sy, Socket(gw2, z) as sz:
            ids = []
            for i in range(3):
                r = await http.post(f"{gw1}/api/conversations/{gid}/messages", json={"body": f"g{i}"},
                                    headers=x.auth)
                assert r.status_code == 201, r.text
                ids.append(r.json()["message"]["message_id"])
            for s in (sy, sz):
                await wait_until(lambda s=s: s.bodies(gid) == ["g0", "g1", "g2"], 20, "group delivery")
        listed = (await http.get(f"{gw2}/api/conversations", headers=y.auth)).json()["conversations"]
        assert listed[0]["conversation_id"] == gid and listed[0]["unread_count"] == 3
        mark = await http.post(f"{gw2}/api/conversations/{gid}/read", json={"message_id": ids[1]},
                               headers=y.auth)
        assert mark.status_code == 200 and mark.json()["conversation"]["unread_count"] == 1
        # the mark never moves back
        back = await http.post(f"{gw2}/api/conversations/{gid}/read", json={"message_id": ids[0]},
                               headers=y.auth)
        assert back.json()["conversation"]["unread_count"] == 1
        mine = (await http.get(f"{gw1}/api/conversations/{gid}", headers=x.auth)).json()["conversation"]
        assert mine["unread_count"] == 0 and mine["last_message"]["body"] == "g2"
        # y opens a one-to-one with z (newer than the group's last message): page by page, most
        # recently active first
        dm = await http.post(f"{gw2}/api/conversations", json={"member_user_ids": [z.user_id]},
                             headers=y.auth)
        dm_id = dm.json()["conversation"]["conversation_id"]
        seen, token = [], ""
        while True:
            params = {"page_size": 1, **({"page_token": token} if token else {})}
            page = (await http.get(f"{gw2}/api/conversations", headers=y.auth, params=params)).json()
            assert len(page["conversations"]) <= 1
            seen += [c["conversation_id"] for c in page["conversations"]]
            token = page["next_page_token"]
            if not token:
                break
        assert seen == [dm_id, gid]


async def test_a_silently_dead_socket_shows_offline_within_the_ttl_and_catches_up(chat_run: ChatRun) -> None:
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    port = int(gw2.rsplit(":", 1)[1])
    tunnel = TcpProxy("127.0.0.1", port)
    await tunnel.open()
    http = httpx.AsyncClient(base_url=gw1, timeout=30)
    try:
        async with Socket(gw1, x) as sx:
            sy = Socket(gw2, y, via=tunnel)
            await sy.open()

            async def status() -> str:
                reply = await http.get("/api/presence", params={"users": y.user_id}, headers=x.auth)
                return reply.json()["presences"][0]["status"]

            async def online() -> bool:
                return await status() == "online"

            await wait_until(online, 10, "y online")
            await send_over(sx, conv, "before")
            await sy.wait_for(lambda f: f["type"] == "chat.message", "the first message")
            last = sy.of("chat.message")[-1]["message"]["message_id"]
            tunnel.freeze()  # no close, no FIN: the socket just goes silent
            sy.abandon()
            frozen_at = asyncio.get_running_loop().time()
            await sx.wait_for(lambda f: f["type"] == "chat.presence" and f["user_id"] == y.user_id
                              and f["status"] == "offline", "y offline pushed to x", within=PRESENCE_TTL + 10)
            assert await status() == "offline"
            took = asyncio.get_running_loop().time() - frozen_at
            print(f"offline after {took:.1f}s (TTL {PRESENCE_TTL}s)")
            missed = [f"while away {i}" for i in range(4)]
            for body in missed:
                await send_over(sx, conv, body)
            async with Socket(gw2, y) as back:
                await back.send({"type": "chat.resume", "last_message_id": last})
                await back.wait_for(lambda f: f["type"] == "chat.caught-up", "the catch-up")
                assert back.bodies(conv) == missed
                await sx.wait_for(lambda f: f["type"] == "chat.presence" and f["user_id"] == y.user_id
                                  and f["status"] == "online" and f is sx.of("chat.presence")[-1],
                                  "y online again")
    finally:
        await http.aclose()
        await tunnel.close()


async def test_redis_cut_mid_conversation_loses_no_message(chat_run: ChatRun) -> None:
    """Redis goes away (the proxy in front of it closes) while X keeps sending: the sends are stored,
    the live notices are lost, and once Redis is back the gateway fills the gap from history."""
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    async with Socket(gw1, x) as sx, Socket(gw2, y) as sy:
        sent = []
        for i in range(3):
            sent.append(f"before {i}")
            await send_over(sx, conv, sent[-1])
        await wait_until(lambda: sy.bodies(conv) == sent, 20, "live delivery before the cut")
        await chat_run.redis_proxy.close()
        try:
            for i in range(5):
                sent.append(f"during {i}")
                await send_over(sx, conv, sent[-1])
        finally:
            await chat_run.redis_proxy.open()
        for i in range(3):
            sent.append(f"after {i}")
            await send_over(sx, conv, sent[-1])
        await wait_until(lambda: sy.bodies(conv) == sent, 30, "every message, in order, after Redis is back")
        assert sy.of("chat.caught-up"), "the gateway caught up from history"


async def test_concurrent_senders_of_one_conversation_see_one_order(chat_run: ChatRun) -> None:
    """X (gateway 1) and Y (gateway 2) send at the same time: both sockets get the messages in one
    and the same order, which is the order of the history."""
    gw1, gw2 = chat_run.gateways
    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    async with Socket(gw1, x) as sx, Socket(gw2, y) as sy:
        async def burst(socket: Socket, name: str) -> None:
            for i in range(10):
                await socket.send({"type": "chat.send", "conversation_id": conv, "body": f"{name}{i}",
                                   "client_message_id": f"{name}{i}"})

        await asyncio.gather(burst(sx, "x"), burst(sy, "y"))
        for s in (sx, sy):
            await wait_until(lambda s=s: len(s.bodies(conv)) >= 20, 30, "every message on both sockets")
        assert sx.bodies(conv) == sy.bodies(conv)
        history = [m["body"] for m in await _history(gw1, x, conv)]
        assert history == sx.bodies(conv)
        assert [b for b in history if b.startswith("x")] == [f"x{i}" for i in range(10)]


# -- StreamMessages (gRPC, api-read) ---------------------------------------------------------------


async def _numsub(chat_run: ChatRun, user_id: str) -> int:
    client = aioredis.from_url(chat_run.platform.redis_url or "")
    try:
        ((_, count),) = await client.pubsub_numsub(user_channel(f"{chat_run.run_id}:chat:", user_id))
        return int(count)
    finally:
        await client.aclose()


async def _numsub_at(redis_url: str, channel: str, expected: int) -> bool:
    client = aioredis.from_url(redis_url)
    try:
        ((_, count),) = await client.pubsub_numsub(channel)
        return int(count) == expected
    finally:
        await client.aclose()


async def _next(call: grpc.aio.UnaryStreamCall) -> chat_pb2.ChatMessage:
    reply = await asyncio.wait_for(call.read(), 20)
    assert reply is not grpc.aio.EOF, "the stream ended"
    return reply.message


async def test_stream_messages_delivers_the_users_messages_in_order_and_frees_its_channel_on_cancel(
        chat_run: ChatRun) -> None:
    a, b, c = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("a", "b", "c"))
    async with grpc.aio.insecure_channel(chat_run.grpc("api-write")) as wch, \
            grpc.aio.insecure_channel(chat_run.grpc("api-read")) as rch:
        writer, reader = chat_pb2_grpc.ChatServiceStub(wch), chat_pb2_grpc.ChatServiceStub(rch)
        to_b = reader.StreamMessages(chat_pb2.StreamMessagesRequest(user_id=b))
        to_c = reader.StreamMessages(chat_pb2.StreamMessagesRequest(user_id=c))
        await asyncio.wait_for(to_b.initial_metadata(), 20)  # the stream is live from here
        await asyncio.wait_for(to_c.initial_metadata(), 20)
        assert await _numsub(chat_run, b) == 1
        sent = [f"s{i}" for i in range(6)]
        for body in sent:
            await writer.SendMessage(chat_pb2.SendMessageRequest(sender_user_id=a, recipient_user_id=b,
                                                                 body=body), timeout=10)
        got = [await _next(to_b) for _ in sent]
        assert [m.body for m in got] == sent
        assert {(m.sender_user_id, m.recipient_user_id) for m in got} == {(a, b)}
        assert len({m.message_id for m in got}) == len(sent)
        # C's stream saw none of them: the first thing it gets is a message to C, sent afterwards
        await writer.SendMessage(chat_pb2.SendMessageRequest(sender_user_id=a, recipient_user_id=c,
                                                             body="for c"), timeout=10)
        first = await _next(to_c)
        assert (first.body, first.recipient_user_id) == ("for c", c)
        # a conversation filter only for members
        conv = got[0].conversation_id
        refused = reader.StreamMessages(chat_pb2.StreamMessagesRequest(user_id=c, conversation_id=conv))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(refused.read(), 20)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # cancelling frees the stream's subscription
        to_b.cancel()
        to_c.cancel()

        async def freed() -> bool:
            return await _numsub(chat_run, b) == 0 and await _numsub(chat_run, c) == 0

        await wait_until(freed, 10, "the cancelled streams' subscriptions to go")


async def test_stream_messages_of_one_conversation(chat_run: ChatRun) -> None:
    a, b, d = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("a", "b", "d"))
    async with grpc.aio.insecure_channel(chat_run.grpc("api-write")) as wch, \
            grpc.aio.insecure_channel(chat_run.grpc("api-read")) as rch:
        writer, reader = chat_pb2_grpc.ChatServiceStub(wch), chat_pb2_grpc.ChatServiceStub(rch)
        ab = (await writer.SendMessage(chat_pb2.SendMessageRequest(sender_user_id=a, recipient_user_id=b,
                                                                   body="before"), timeout=10)).message
        call = reader.StreamMessages(chat_pb2.StreamMessagesRequest(user_id=b,
                                                                    conversation_id=ab.conversation_id))
        try:
            await asyncio.wait_for(call.initial_metadata(), 20)
            await writer.SendMessage(chat_pb2.SendMessageRequest(sender_user_id=d, recipient_user_id=b,
                                                                 body="other conversation"), timeout=10)
            await writer.SendMessage(chat_pb2.SendMessageRequest(sender_user_id=b, recipient_user_id=a,
                                                                 body="mine, in it"), timeout=10)
            first = await _next(call)
            assert (first.body, first.sender_user_id, first.conversation_id) == ("mine, in it", b,
                                                                                 ab.conversation_id)
        finally:
            call.cancel()


class _Context:
    """The little of grpc.aio.ServicerContext StreamMessages uses (the servicer run in-process)."""

    def __init__(self) -> None:
        self.live = asyncio.Event()

    async def send_initial_metadata(self, metadata: object) -> None:
        self.live.set()


async def test_a_stream_ends_when_the_server_stops_and_fails_unavailable_when_redis_goes(
        chat_run: ChatRun) -> None:
    """In-process ChatReader (no store needed without a conversation filter) on its own Redis proxy."""
    redis_url = chat_run.platform.redis_url or ""
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    rhost, _, rport = host_port.rpartition(":")
    proxy = TcpProxy(rhost, int(rport))
    await proxy.open()
    prefix = f"{chat_run.run_id}:inproc:"
    reader = ChatReader(None, None, ChatSettings(redis_prefix=prefix),  # type: ignore[arg-type]
                        redis_url.replace(host_port, proxy.address))
    publisher = LivePublisher(redis_url, prefix)

    got: list[chat_pb2.ChatMessage] = []

    async def drain(user: str, ctx: _Context) -> None:
        async for reply in reader.StreamMessages(chat_pb2.StreamMessagesRequest(user_id=user),
                                                 ctx):  # type: ignore[arg-type]
            got.append(reply.message)

    try:
        # the server stops: the stream ends (OK) with what it delivered, its subscription gone
        ctx = _Context()
        stream = asyncio.ensure_future(drain("u1", ctx))
        await asyncio.wait_for(ctx.live.wait(), 20)
        msg = chat_pb2.ChatMessage(message_id=str(uuid.uuid1()), conversation_id="d-" + "0" * 32,
                                   sender_user_id="u0", recipient_user_id="u1", body="hi",
                                   member_user_ids=["u0", "u1"])
        msg.send_time.GetCurrentTime()
        await publisher.publish(["u1"], live_frame(msg))
        await wait_until(lambda: got, 20, "the message on the stream")
        assert got == [msg]  # the frame decodes back to the message as sent
        stop = asyncio.Event()
        closer = asyncio.ensure_future(reader.close_streams(stop))
        stop.set()
        await asyncio.wait_for(stream, 20)
        await closer
        await wait_until(lambda: _numsub_at(redis_url, user_channel(prefix, "u1"), 0), 10,
                         "the stopped stream's subscription to go")
        # Redis goes away under an open stream: UNAVAILABLE (the client reconnects and catches up)
        reader.closing.clear()
        ctx = _Context()
        stream = asyncio.ensure_future(drain("u2", ctx))
        await asyncio.wait_for(ctx.live.wait(), 20)
        await proxy.close()
        with pytest.raises(Unavailable):
            await asyncio.wait_for(stream, 30)
    finally:
        await publisher.close()
        await proxy.close()


async def test_every_chat_frame_both_ways_follows_the_served_openapi_schemas(chat_run: ChatRun) -> None:
    """The frames a chat exchange produces (ready, sent, message, delivered, presence, caught-up, error)
    and the frames the client sent, against the PushMessage and ChatClientFrame schemas of the
    gateway's own /openapi.json."""
    import jsonschema

    gw1, gw2 = chat_run.gateways
    async with httpx.AsyncClient(base_url=gw1, timeout=30) as http:
        spec = (await http.get("/openapi.json")).json()

    def valid(schema: str, frame: dict) -> list[str]:
        validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                                     "components": spec["components"]})
        return [e.message for e in validator.iter_errors(frame)]

    x, y = await new_user(gw1, "x"), await new_user(gw2, "y")
    conv = await _direct(gw1, x, y)
    sent_frames: list[dict] = []
    async with Socket(gw1, x) as sx:
        async with Socket(gw2, y) as sy:
            frames = [{"type": "chat.send", "conversation_id": conv, "body": "hello",
                       "client_message_id": uuid.uuid4().hex}, {"type": "chat.heartbeat"}]
            for frame in frames:
                await sx.send(frame)
            sent_frames += frames
            await sx.send({"type": "chat.send", "conversation_id": conv, "body": ""})  # refused: chat.error
            await sx.wait_for(lambda f: f["type"] == "chat.sent", "the sent frame")
            await sx.wait_for(lambda f: f["type"] == "chat.error", "the error frame")
            message = (await sy.wait_for(lambda f: f["type"] == "chat.message", "the message"))["message"]
            ack = {"type": "chat.ack", "message_id": message["message_id"], "conversation_id": conv}
            resume = {"type": "chat.resume", "last_message_id": message["message_id"]}
            for frame in (ack, resume):
                await sy.send(frame)
            sent_frames += [ack, resume]
            await sx.wait_for(lambda f: f["type"] == "chat.delivered", "the delivery acknowledgement")
            await sy.wait_for(lambda f: f["type"] == "chat.caught-up", "the catch-up")
        # (y's "online" may reach x's gateway before it has subscribed x's channel; by now it has)
        await sx.wait_for(lambda f: f["type"] == "chat.presence" and f["status"] == "offline",
                          "y offline for x")
        received = sx.frames + sy.frames
    types = {f["type"] for f in received}
    assert types >= {"ready", "chat.sent", "chat.error", "chat.message", "chat.delivered", "chat.presence",
                     "chat.caught-up"}, types
    for frame in received:
        assert not (errors := valid("PushMessage", frame)), (frame, errors)
    for frame in sent_frames:
        assert not (errors := valid("ChatClientFrame", frame)), (frame, errors)
    # and the schema does refuse what the server refuses
    assert valid("ChatClientFrame", {"type": "chat.send", "conversation_id": conv, "body": ""})
