"""Chat on the gateway's WebSocket: live delivery through Redis pub/sub, catch-up from history,
delivery acknowledgements and presence (see docs/chat.md for the frames).

One `ChatHub` per gateway process holds ONE Redis pub/sub connection, subscribed to the channel of
every user with a socket here (culture_chat.live.user_channel), and fans frames out to that user's
`ChatSession`s. Pub/sub is at-most-once, so nothing relies on it alone:

- a session catches up from Cassandra (ListConversations + History after_message_id) when its
  client resumes with the last message it has, and again whenever the hub re-subscribes after
  losing Redis (from the last message it delivered in each conversation, or from what it had
  when Redis went away);
- while a catch-up runs, live frames wait, so a conversation's messages go out in order; every
  message is delivered once per socket (a bounded set of recent ids drops repeats).

Presence: the hub refreshes every local (user, connection) in Redis each third of the TTL; a
session's end removes its connection and, when that was the user's last, pushes "offline" to the
user's contacts (the members of their conversations), as the first connection pushes "online".
uvicorn's WebSocket pings (interval + timeout <= TTL) close a socket that died silently, which ends
its session, so the user shows offline within the TTL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import redis.asyncio as aioredis
from starlette.websockets import WebSocket, WebSocketDisconnect

from culture.chat.v1 import chat_pb2
from culture_chat import model
from culture_chat.live import LivePublisher, Presence, decode_frame, redis_client, user_channel
from culture_gateway.errors import http_status_of, json_depth_exceeds
from culture_gateway.routes_chat import chat_message_json
from culture_gateway.settings import GatewaySettings
from culture_gateway.upstreams import Upstreams
from culture_grpc.errors import field_violations_of

log = logging.getLogger("culture_gateway.chat")

#: frames a slow socket may have waiting before it is closed (its client resumes and catches up)
QUEUE_LIMIT = 2000
#: message ids a session remembers to drop repeats (catch-up overlapping live delivery)
SEEN_LIMIT = 4096
#: senders of delivered messages remembered for the client's acknowledgements
ACK_LIMIT = 1024


def _order(message_id: str) -> tuple[int, int]:
    try:
        return model.order_key(model.parse_message_id(message_id))
    except model.BadCursor:
        return (0, 0)


class ChatHub:
    """The process's Redis pub/sub connection and its local sessions."""

    def __init__(self, settings: GatewaySettings, upstreams: Upstreams, redis_url: str) -> None:
        self.settings = settings
        self.up = upstreams
        self.redis_url = redis_url
        self.prefix = settings.chat_prefix
        self.sessions: dict[str, set[ChatSession]] = {}
        self.subscribed: set[str] = set()  # users whose channel subscription Redis confirmed
        self.redis = redis_client(redis_url)
        self.publisher = LivePublisher(redis_url, self.prefix)
        self.presence = Presence(self.redis, self.prefix)
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._control = f"{self.prefix}gateway:{uuid.uuid4().hex}"

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._refresh())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.publisher.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    # -- sessions -------------------------------------------------------------------------------

    async def attach(self, session: ChatSession) -> None:
        self._start()
        first = session.user_id not in self.sessions
        self.sessions.setdefault(session.user_id, set()).add(session)
        if session.user_id in self.subscribed:
            session.subscribed.set()
        elif first and self._pubsub is not None:
            with contextlib.suppress(Exception):  # the listener re-subscribes everyone after a loss
                await self._pubsub.subscribe(user_channel(self.prefix, session.user_id))

    async def detach(self, session: ChatSession) -> None:
        users = self.sessions.get(session.user_id)
        if users is None:
            return
        users.discard(session)
        if not users:
            del self.sessions[session.user_id]
            self.subscribed.discard(session.user_id)
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(user_channel(self.prefix, session.user_id))

    # -- pub/sub --------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Subscribe the local users' channels and dispatch; after a loss, reconnect and resubscribe
        (each session then catches up from history)."""
        backoff = 0.2
        while True:
            client = aioredis.from_url(self.redis_url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._control)
                self._pubsub = pubsub  # before listing the users: one attaching now subscribes itself
                channels = [user_channel(self.prefix, u) for u in self.sessions]
                if channels:
                    await pubsub.subscribe(*channels)
                idle = 0.0
                while True:
                    item = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if item is None:
                        idle += 1.0
                        if idle >= 5.0:  # a half-open connection shows up as a missing pong
                            await asyncio.wait_for(pubsub.ping(), 3.0)
                            idle = 0.0
                        continue
                    idle = 0.0
                    backoff = 0.2
                    self._dispatch(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: reconnect, sessions catch up
                log.warning("gateway chat: Redis pub/sub lost (%s); reconnecting", exc)
                self._pubsub = None
                self.subscribed.clear()
                for sessions in self.sessions.values():
                    for session in sessions:
                        session.lost()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _dispatch(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        channel = item.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if not isinstance(channel, str) or not channel.startswith(f"{self.prefix}user:"):
            return
        user = channel[len(f"{self.prefix}user:"):]
        if kind == "subscribe":
            self.subscribed.add(user)
            for session in self.sessions.get(user, ()):
                session.subscribed.set()
            return
        if kind != "message":
            return
        frame = decode_frame(item.get("data"))
        if frame is None:
            log.warning("gateway chat: ignoring a malformed frame on %s", channel)
            return
        for session in list(self.sessions.get(user, ())):
            session.live(frame)

    async def _refresh(self) -> None:
        """Keep every local connection's presence alive."""
        ttl = self.settings.presence_ttl_seconds
        while True:
            await asyncio.sleep(ttl / 3)
            entries = [(s.user_id, s.conn_id) for sessions in self.sessions.values() for s in sessions]
            if entries:
                try:
                    await self.presence.refresh(entries, ttl)
                except Exception as exc:  # noqa: BLE001 - Redis away: presence lapses, sockets stay
                    log.warning("gateway chat: presence refresh failed (%s)", exc)


class ChatSession:
    """One user's WebSocket: the frames to send, the client's frames, catch-up and presence."""

    def __init__(self, hub: ChatHub, ws: WebSocket, user_id: str) -> None:
        self.hub = hub
        self.ws = ws
        self.user_id = user_id
        self.conn_id = uuid.uuid4().hex
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.subscribed = asyncio.Event()
        self.contacts: set[str] = set()
        #: conversation -> the newest message id delivered here (the catch-up's lower bound)
        self.last_by_conv: dict[str, str] = {}
        #: the lower bound of conversations nothing was delivered in (connect time, or a resume)
        self.floor: str = str(model.lowest_id(model.MessageIds().next().time))
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: message id -> (sender, conversation) of the messages delivered here, for their acks
        self._senders: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self._held: list[dict[str, Any]] | None = None  # live frames waiting for a catch-up
        self._catch_up_task: asyncio.Task[None] | None = None
        self._pending_catch_up = False
        self.closed = False

    @property
    def _timeout(self) -> float:
        return self.hub.settings.rpc_timeout_seconds

    # -- outgoing -------------------------------------------------------------------------------

    def _put(self, frame: dict[str, Any]) -> None:
        if self.queue.qsize() >= QUEUE_LIMIT:
            log.warning("gateway chat: %s's socket is too slow; closing it (the client resumes)",
                        self.user_id)
            self.closed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(frame)

    def _deliver(self, frame: dict[str, Any]) -> None:
        """Send a frame, once per message id, tracking what was delivered per conversation."""
        if frame.get("type") == "chat.message":
            msg = frame.get("message") or {}
            mid, conv = str(msg.get("message_id", "")), str(msg.get("conversation_id", ""))
            if mid in self._seen:
                return
            self._seen[mid] = None
            if len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
            if _order(mid) > _order(self.last_by_conv.get(conv, "")):
                self.last_by_conv[conv] = mid
            self._senders[mid] = (str(msg.get("sender_user_id", "")), conv)
            if len(self._senders) > ACK_LIMIT:
                self._senders.popitem(last=False)
        self._put(frame)

    def live(self, frame: dict[str, Any]) -> None:
        """A frame from the user's channel."""
        if self._held is not None:
            self._held.append(frame)
        else:
            self._deliver(frame)

    def lost(self) -> None:
        """Redis went away: after the re-subscription, catch up from what was delivered until now."""
        self.subscribed.clear()
        self._pending_catch_up = True
        self._schedule_catch_up()

    # -- catch-up -------------------------------------------------------------------------------

    def _schedule_catch_up(self) -> None:
        if self._catch_up_task is None or self._catch_up_task.done():
            self._catch_up_task = asyncio.ensure_future(self._catch_up_loop())

    async def _catch_up_loop(self) -> None:
        while self._pending_catch_up and not self.closed:
            await self.subscribed.wait()
            self._pending_catch_up = False
            self._held = []
            try:
                count = await self._catch_up()
                self._put({"type": "chat.caught-up", "count": count})
            except grpc.aio.AioRpcError as exc:
                log.warning("gateway chat: catch-up of %s failed (%s); retrying", self.user_id,
                            exc.code().name)
                self._pending_catch_up = True
                await asyncio.sleep(0.5)
            finally:
                held, self._held = self._held or [], None
                for frame in held:
                    self._deliver(frame)

    async def _catch_up(self) -> int:
        """Deliver, oldest first per conversation, what was sent after the lower bounds."""
        up = self.hub.up
        # most recently active first: every conversation with news is on the pages before the first
        # whose last message is older than every lower bound
        lowest = min([_order(self.floor), *(_order(m) for m in self.last_by_conv.values())])
        news: list[chat_pb2.Conversation] = []
        token = ""
        while True:
            reply = await up.chat_read.ListConversations(
                chat_pb2.ListConversationsRequest(user_id=self.user_id, page_size=200, page_token=token),
                timeout=self._timeout)
            news += [c for c in reply.conversations if c.HasField("last_message")]
            token = reply.next_page_token
            last = reply.conversations[-1] if reply.conversations else None
            if not token or last is None or not last.HasField("last_message") \
                    or _order(last.last_message.message_id) <= lowest:
                break
        count = 0
        for conv in news:
            self.contacts.update(m for m in conv.member_user_ids if m != self.user_id)
            after = self.last_by_conv.get(conv.conversation_id, self.floor)
            if _order(conv.last_message.message_id) <= _order(after):
                continue
            more = True
            while more:
                page = await up.chat_read.History(
                    chat_pb2.HistoryRequest(user_id=self.user_id, conversation_id=conv.conversation_id,
                                            after_message_id=after, page_size=200), timeout=self._timeout)
                for m in page.messages:
                    self._deliver({"type": "chat.message", "message": chat_message_json(m)})
                    count += 1
                    after = m.message_id
                more = page.has_more and bool(page.messages)
        return count

    # -- presence -------------------------------------------------------------------------------

    async def _announce(self, status: str) -> None:
        if self.contacts:
            frame = {"type": "chat.presence", "user_id": self.user_id, "status": status}
            await self.hub.publisher.publish(sorted(self.contacts), frame)

    async def _online(self) -> None:
        try:
            reply = await self.hub.up.chat_read.ListConversations(
                chat_pb2.ListConversationsRequest(user_id=self.user_id, page_size=200), timeout=self._timeout)
            self.contacts.update(m for c in reply.conversations for m in c.member_user_ids
                                 if m != self.user_id)
        except grpc.aio.AioRpcError as exc:
            log.warning("gateway chat: contacts of %s unavailable (%s)", self.user_id, exc.code().name)
        try:
            (before,) = await self.hub.presence.get([self.user_id])
            ttl = self.hub.settings.presence_ttl_seconds
            await self.hub.presence.refresh([(self.user_id, self.conn_id)], ttl)
            if not before[0]:
                await self._announce("online")
        except Exception as exc:  # noqa: BLE001 - Redis away: no presence, chat still works
            log.warning("gateway chat: presence of %s not recorded (%s)", self.user_id, exc)

    async def _offline(self) -> None:
        try:
            await self.hub.presence.leave(self.user_id, self.conn_id)
            (now,) = await self.hub.presence.get([self.user_id])
            if not now[0]:
                await self._announce("offline")
        except Exception as exc:  # noqa: BLE001 - Redis away: the presence lapses by its TTL
            log.warning("gateway chat: presence of %s not cleared (%s)", self.user_id, exc)

    # -- incoming -------------------------------------------------------------------------------

    def _error(self, status: str, message: str, fields: dict[str, str] | None = None,
               client_message_id: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"type": "chat.error", "status": status, "message": message}
        if fields:
            out["fields"] = fields
        if client_message_id:
            out["client_message_id"] = client_message_id
        return out

    async def _handle(self, frame: Any) -> None:
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self._put(self._error("INVALID_ARGUMENT", "a frame is a JSON object with a string `type`"))
            return
        kind = frame["type"]
        if kind == "chat.heartbeat":
            return
        if kind == "chat.resume":
            last = frame.get("last_message_id", "")
            if last:
                try:
                    model.parse_message_id(str(last))
                except model.BadCursor:
                    self._put(self._error("INVALID_ARGUMENT", "not a message id",
                                          {"last_message_id": "not a message id"}))
                    return
                self.floor = str(last)
                self.last_by_conv = {c: m for c, m in self.last_by_conv.items()
                                     if _order(m) > _order(str(last))}
            self._pending_catch_up = True
            self._schedule_catch_up()
            return
        if kind == "chat.ack":
            # an ack names a message delivered here, else it is dropped; the conversation is the
            # message's own, not what the frame says
            mid = str(frame.get("message_id", ""))
            sender, conv = self._senders.pop(mid, ("", ""))
            if sender and sender != self.user_id:
                await self.hub.publisher.publish([sender], {"type": "chat.delivered", "message_id": mid,
                                                            "conversation_id": conv, "user_id": self.user_id})
            return
        if kind == "chat.send":
            await self._send(frame)
            return
        self._put(self._error("INVALID_ARGUMENT", f"unknown frame type {kind[:40]!r}"))

    async def _send(self, frame: dict[str, Any]) -> None:
        names = ("conversation_id", "recipient_user_id", "body", "client_message_id")
        wrong = {n: "must be a string" for n in names if n in frame and not isinstance(frame[n], str)}
        cid = frame.get("client_message_id") if isinstance(frame.get("client_message_id"), str) else ""
        if wrong:
            self._put(self._error("INVALID_ARGUMENT", "the frame has invalid fields", wrong, cid))
            return
        try:
            reply = await self.hub.up.chat_write.SendMessage(
                chat_pb2.SendMessageRequest(sender_user_id=self.user_id,
                                            **{n: frame.get(n, "") for n in names}),
                timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
            self._put(self._error(status, exc.details() or status, field_violations_of(exc) or None, cid))
            if http_status_of(exc.code()) >= 500:
                log.warning("gateway chat: SendMessage failed: %s %s", status, exc.details())
            return
        self._put({"type": "chat.sent", "client_message_id": cid,
                   "message": chat_message_json(reply.message)})

    # -- the socket's life ----------------------------------------------------------------------

    async def run(self, extra: Callable[[], AsyncIterator[dict[str, Any] | None]], closing: asyncio.Event,
                  ready: dict[str, Any]) -> None:
        """Serve the socket until the client leaves, the gateway drains, or the socket is too slow.
        `extra()` streams the user's job updates (None: a heartbeat ping); when it fails (Redis away)
        it is started again, and the chat goes on meanwhile."""
        await self.hub.attach(self)
        self._put(ready)
        await self._online()

        async def receive() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    message = await self.ws.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    raw = message.get("text") or message.get("bytes") or b""
                    depth = self.hub.settings.max_json_depth
                    if json_depth_exceeds(raw.encode() if isinstance(raw, str) else raw, depth):
                        # json.loads would raise RecursionError, ending the socket without a word
                        nested = f"a frame must not nest arrays/objects deeper than {depth} levels"
                        self._put(self._error("INVALID_ARGUMENT", nested))
                        continue
                    try:
                        frame = json.loads(raw)
                    except (ValueError, UnicodeDecodeError):
                        self._put(self._error("INVALID_ARGUMENT", "a frame must be JSON"))
                        continue
                    await self._handle(frame)

        async def jobs() -> None:
            while True:
                try:
                    async for item in extra():
                        if item is None:
                            self._put({"type": "ping"})
                        else:
                            self._put({"type": "done" if item.get("done") else "step", **item})
                except Exception as exc:  # noqa: BLE001 - job updates are best effort here
                    log.warning("gateway chat: job updates of %s interrupted (%s)", self.user_id, exc)
                await asyncio.sleep(1.0)

        async def send() -> None:
            while True:
                frame = await self.queue.get()
                if frame is None:
                    return
                await self.ws.send_text(json.dumps(frame))

        tasks = [asyncio.ensure_future(t) for t in (receive(), jobs(), send(), closing.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.closed = True
            for task in tasks:
                task.cancel()
            if self._catch_up_task is not None:
                self._catch_up_task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._catch_up_task is not None:
                await asyncio.gather(self._catch_up_task, return_exceptions=True)
            await self.hub.detach(self)
            await self._offline()
            with contextlib.suppress(Exception):
                await self.ws.close()
