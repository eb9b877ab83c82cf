"""ChatService over gRPC: ChatWriter (api-write: CreateConversation, SendMessage, MarkRead,
SetPresence) and ChatReader (api-read: History, GetConversation, ListConversations, GetPresence,
StreamMessages).

The contract's buf.validate rules run before these methods (culture_grpc.validation); what is left
here are the rules no annotation can state: membership (PERMISSION_DENIED for a non-member, the same
answer whether or not the conversation exists), the shape of ids and cursors, blank bodies.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2

from culture.chat.v1 import chat_pb2, chat_pb2_grpc
from culture.events.v1 import chat_events_pb2
from culture_chat import model
from culture_chat.claims import ClientIdClaims
from culture_chat.live import LivePublisher, Presence, UserSubscription, message_json
from culture_chat.settings import ChatSettings
from culture_chat.store import ChatStore, Conversation, StoredMessage
from culture_contracts.topics import key_of
from culture_events.codec import encode
from culture_grpc.errors import PermissionDenied, Unavailable, invalid_argument

log = logging.getLogger("culture_chat")

DIRECT, GROUP = chat_pb2.CONVERSATION_KIND_DIRECT, chat_pb2.CONVERSATION_KIND_GROUP
_NOT_A_MEMBER = "not a member of this conversation (or it does not exist)"


def _millis(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _ts(when: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return ts


def message_proto(msg: StoredMessage, conv: Conversation) -> chat_pb2.ChatMessage:
    recipient = ""
    if conv.kind == DIRECT:
        recipient = next((m for m in conv.members if m != msg.sender), msg.sender)
    return chat_pb2.ChatMessage(message_id=str(msg.message_id), conversation_id=conv.conversation_id,
                                sender_user_id=msg.sender, recipient_user_id=recipient, body=msg.body,
                                send_time=_ts(msg.send_time), client_message_id=msg.client_message_id,
                                member_user_ids=list(conv.members))


def conversation_proto(conv: Conversation, unread: int = 0,
                       mark: uuid.UUID | None = None) -> chat_pb2.Conversation:
    out = chat_pb2.Conversation(conversation_id=conv.conversation_id, kind=conv.kind,
                                member_user_ids=list(conv.members), title=conv.title,
                                create_time=_ts(conv.create_time), unread_count=unread,
                                last_read_message_id=str(mark) if mark else "")
    if conv.last is not None:
        out.last_message.CopyFrom(message_proto(conv.last, conv))
    return out


def live_frame(msg: chat_pb2.ChatMessage) -> dict:
    sent = msg.send_time.ToDatetime().isoformat(timespec="microseconds") + "Z"
    return {"type": "chat.message",
            "message": message_json(msg.message_id, msg.conversation_id, msg.sender_user_id, msg.body, sent,
                                    msg.client_message_id, list(msg.member_user_ids))}


def message_of_frame(frame: dict) -> chat_pb2.ChatMessage | None:
    """The message of a live "chat.message" frame (the inverse of live_frame); None for other frames."""
    msg = frame.get("message") if frame.get("type") == "chat.message" else None
    if not isinstance(msg, dict):
        return None
    try:
        members = [str(m) for m in msg.get("member_user_ids") or ()]
        sender, conv = str(msg["sender_user_id"]), str(msg["conversation_id"])
        recipient = next((m for m in members if m != sender), sender) if model.is_direct(conv) else ""
        out = chat_pb2.ChatMessage(
            message_id=str(msg["message_id"]), conversation_id=conv, sender_user_id=sender,
            recipient_user_id=recipient,
            body=str(msg["body"]), client_message_id=str(msg.get("client_message_id") or ""),
            member_user_ids=members)
        out.send_time.FromJsonString(str(msg["sent_at"]))
    except (KeyError, ValueError, TypeError):
        log.warning("chat: ignoring a malformed live message frame")
        return None
    return out


async def member_view(store: ChatStore, conversation_id: str, user_id: str) -> Conversation:
    """The conversation if `user_id` is a member; PERMISSION_DENIED otherwise (also when unknown)."""
    if not model.is_conversation_id(conversation_id):
        raise invalid_argument({"conversation_id": "not a conversation id"})
    conv = await store.conversation(conversation_id)
    if conv is None or user_id not in conv.members:
        raise PermissionDenied(_NOT_A_MEMBER)
    return conv


class ChatWriter(chat_pb2_grpc.ChatServiceServicer):
    """The command side."""

    def __init__(self, store: ChatStore, live: LivePublisher, presence: Presence | None,
                 settings: ChatSettings, topic: str, claims: ClientIdClaims | None = None) -> None:
        self.store, self.live, self.presence, self.settings = store, live, presence, settings
        self.claims = claims  # None: every client message id is claimed through Cassandra
        self.topic = topic  # chat.message-sent, in the platform's namespace
        self.ids = model.MessageIds()
        self._locks: dict[str, list] = {}  # conversation -> [lock, holders and waiters]
        #: conversations seen lately (members never change), so a send reads no conversation row
        self._known: collections.OrderedDict[str, Conversation] = collections.OrderedDict()

    async def _conversation(self, conversation_id: str) -> Conversation | None:
        conv = self._known.get(conversation_id)
        if conv is not None:
            self._known.move_to_end(conversation_id)
            return conv
        conv = await self.store.conversation(conversation_id)
        if conv is not None:
            self._known[conversation_id] = dataclasses.replace(conv, last=None)
            if len(self._known) > 100_000:
                self._known.popitem(last=False)
        return conv

    async def CreateConversation(self, request: chat_pb2.CreateConversationRequest,
                                 context: grpc.aio.ServicerContext) -> chat_pb2.CreateConversationResponse:
        creator = request.creator_user_id
        others = [m for m in request.member_user_ids if m != creator]
        if not others:
            raise invalid_argument({"member_user_ids": "name at least one member besides yourself"})
        kind = request.kind or (DIRECT if len(others) == 1 and not request.title else GROUP)
        if kind == DIRECT and (len(others) != 1 or request.title):
            raise invalid_argument({"member_user_ids": "a one-to-one conversation has exactly one other "
                                                       "member and no title"})
        if request.title and not request.title.strip():
            raise invalid_argument({"title": "must not be blank"})
        members = model.members_of(creator, others)
        conv_id = model.direct_id(creator, others[0]) if kind == DIRECT \
            else model.group_id(creator, request.client_request_id)
        if kind == DIRECT:
            members = sorted(members)
        conv, _ = await self.store.create_conversation(conv_id, kind, members, request.title, creator,
                                                       dt.datetime.now(dt.UTC))
        if creator not in conv.members:  # a group id another user's request already took
            raise PermissionDenied(_NOT_A_MEMBER)
        mark = await self.store.read_mark(creator, conv.conversation_id)
        return chat_pb2.CreateConversationResponse(
            conversation=conversation_proto(conv, await self.store.unread(conv, creator, mark), mark))

    async def _target(self, request: chat_pb2.SendMessageRequest) -> Conversation:
        sender = request.sender_user_id
        if request.conversation_id:
            if not model.is_conversation_id(request.conversation_id):
                raise invalid_argument({"conversation_id": "not a conversation id"})
            known = await self._conversation(request.conversation_id)
            if known is None or sender not in known.members:
                raise PermissionDenied(_NOT_A_MEMBER)
            return known
        if request.recipient_user_id == sender:
            raise invalid_argument({"recipient_user_id": "cannot message yourself"})
        conv_id = model.direct_id(sender, request.recipient_user_id)
        conv = await self._conversation(conv_id)
        if conv is None:
            conv, _ = await self.store.create_conversation(
                conv_id, DIRECT, sorted([sender, request.recipient_user_id]), "", sender,
                dt.datetime.now(dt.UTC))
        return conv

    async def SendMessage(self, request: chat_pb2.SendMessageRequest,
                          context: grpc.aio.ServicerContext) -> chat_pb2.SendMessageResponse:
        if not request.body.strip():
            raise invalid_argument({"body": "must not be blank"})
        conv = await self._target(request)
        # one send at a time per conversation in this process: ids, stored order and live order agree
        lock = self._locks.setdefault(conv.conversation_id, [asyncio.Lock(), 0])
        lock[1] += 1
        try:
            async with lock[0]:
                return await self._send(request, conv)
        finally:
            lock[1] -= 1
            if not lock[1]:
                self._locks.pop(conv.conversation_id, None)

    async def _send(self, request: chat_pb2.SendMessageRequest,
                    conv: Conversation) -> chat_pb2.SendMessageResponse:
        sender = request.sender_user_id
        message_id = self.ids.next()
        record_client_id = False  # claimed in Redis: the durable row goes in the message's batch
        if request.client_message_id:
            claimed = None
            if self.claims is not None:
                claimed = await self.claims.claim(conv.conversation_id, _millis(conv.create_time), sender,
                                                  request.client_message_id, message_id)
                record_client_id = claimed == message_id
            if claimed is None:
                claimed = await self.store.claim_client_id(conv.conversation_id, sender,
                                                           request.client_message_id, message_id)
            if claimed != message_id:
                existing = await self.store.message(conv.conversation_id, claimed)
                if existing is not None:  # a retry: the first send's message, nothing written again
                    return chat_pb2.SendMessageResponse(message=message_proto(existing, conv))
                message_id = claimed  # the first send died before its batch: complete it
        stored = StoredMessage(message_id, conv.conversation_id, sender, request.body,
                               request.client_message_id)
        proto = message_proto(stored, conv)
        event = chat_events_pb2.MessageSent(
            message_id=proto.message_id, conversation_id=conv.conversation_id, sender_user_id=sender,
            recipient_user_id=proto.recipient_user_id, body=request.body, send_time=proto.send_time,
            recipient_user_ids=[m for m in conv.members if m != sender])
        await self.store.store_message(stored, self.topic,
                                       encode(event, key=key_of(event), event_id=proto.message_id),
                                       record_client_id=record_client_id)
        await self.live.publish(conv.members, live_frame(proto))
        return chat_pb2.SendMessageResponse(message=proto)

    async def MarkRead(self, request: chat_pb2.MarkReadRequest,
                       context: grpc.aio.ServicerContext) -> chat_pb2.MarkReadResponse:
        conv = await member_view(self.store, request.conversation_id, request.user_id)
        target: uuid.UUID | None
        if request.message_id:
            try:
                target = model.parse_message_id(request.message_id)
            except model.BadCursor as exc:
                raise invalid_argument({"message_id": str(exc)}) from None
            if await self.store.message(conv.conversation_id, target) is None:
                raise invalid_argument({"message_id": "no such message in this conversation"})
        else:
            target = conv.last.message_id if conv.last is not None else None
        if target is not None:
            await self.store.mark_read(request.user_id, conv.conversation_id, target)
        mark = await self.store.read_mark(request.user_id, conv.conversation_id)
        return chat_pb2.MarkReadResponse(
            conversation=conversation_proto(conv, await self.store.unread(conv, request.user_id, mark), mark))

    async def SetPresence(self, request: chat_pb2.SetPresenceRequest,
                          context: grpc.aio.ServicerContext) -> chat_pb2.SetPresenceResponse:
        assert self.presence is not None
        ttl = request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else 60.0
        if request.status == chat_pb2.PRESENCE_STATUS_OFFLINE:
            await self.presence.leave(request.user_id, "api")
        else:
            await self.presence.refresh([(request.user_id, "api")], ttl)
        (state,) = await self.presence.get([request.user_id])
        return chat_pb2.SetPresenceResponse(presence=presence_proto(request.user_id, state))


def presence_proto(user_id: str, state: tuple[bool, int, int]) -> chat_pb2.Presence:
    online, expire_ms, seen_ms = state
    out = chat_pb2.Presence(user_id=user_id, status=chat_pb2.PRESENCE_STATUS_ONLINE if online
                            else chat_pb2.PRESENCE_STATUS_OFFLINE)
    if seen_ms:
        out.last_seen_time.FromMilliseconds(seen_ms)
    if online:
        out.expire_time.FromMilliseconds(expire_ms)
    return out


class ChatReader(chat_pb2_grpc.ChatServiceServicer):
    """The query side."""

    def __init__(self, store: ChatStore, presence: Presence, settings: ChatSettings,
                 redis_url: str = "") -> None:
        self.store, self.presence, self.settings = store, presence, settings
        self.redis_url = redis_url
        #: set when the server stops: open streams end (OK) instead of holding the shutdown's grace
        self.closing = asyncio.Event()

    async def close_streams(self, stop: asyncio.Event) -> None:
        """A background job of the role: on stop, end every open stream."""
        await stop.wait()
        self.closing.set()

    async def StreamMessages(
            self, request: chat_pb2.StreamMessagesRequest,
            context: grpc.aio.ServicerContext) -> AsyncIterator[chat_pb2.StreamMessagesResponse]:
        """The messages sent to the user from when the stream is live (its initial metadata arrives)
        until the client cancels or the server stops. At-most-once, like the channel it reads: a
        client that reconnects catches up with History (after_message_id)."""
        if request.conversation_id:
            await member_view(self.store, request.conversation_id, request.user_id)
        sub = UserSubscription(self.redis_url, self.settings.redis_prefix, request.user_id)
        try:
            try:
                await sub.open()
            except ConnectionError as exc:
                raise Unavailable("live delivery is unavailable; retry, and catch up with History") from exc
            await context.send_initial_metadata(())
            while not self.closing.is_set():
                try:
                    frame = await sub.next_frame(0.5)
                except ConnectionError as exc:
                    log.warning("chat: a stream of %s lost Redis (%s)", request.user_id, exc)
                    raise Unavailable("live delivery was lost; reconnect, and catch up with History") from exc
                msg = message_of_frame(frame) if frame is not None else None
                if msg is None or request.conversation_id not in ("", msg.conversation_id):
                    continue
                yield chat_pb2.StreamMessagesResponse(message=msg)
        finally:
            await sub.close()

    async def History(self, request: chat_pb2.HistoryRequest,
                      context: grpc.aio.ServicerContext) -> chat_pb2.HistoryResponse:
        conv = await member_view(self.store, request.conversation_id, request.user_id)
        limit = model.history_limit(request.page_size or request.limit)
        if request.after_message_id:
            if request.page_token or request.HasField("before"):
                raise invalid_argument({"after_message_id": "not together with page_token or before"})
            try:
                after = model.parse_message_id(request.after_message_id)
            except model.BadCursor as exc:
                raise invalid_argument({"after_message_id": str(exc)}) from None
            newer, more = await self.store.after(conv, after, limit)
            return chat_pb2.HistoryResponse(messages=[message_proto(m, conv) for m in newer], has_more=more)
        try:
            cursor = model.decode_token(request.page_token)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        if cursor is not None:
            bucket, before = cursor
        elif request.HasField("before"):
            ticks = model.uuid_ticks(request.before.ToDatetime(tzinfo=dt.UTC))
            before = model.lowest_id(max(ticks, 0))
            bucket = self.store.bucket(before)
        elif conv.last is None:
            return chat_pb2.HistoryResponse()
        else:  # from the last message's bucket: no query for the empty buckets after it
            before = model.highest_id((1 << 60) - 1)
            bucket = self.store.bucket(conv.last.message_id)
        older, nxt = await self.store.history(conv, bucket, before, limit)
        return chat_pb2.HistoryResponse(messages=[message_proto(m, conv) for m in older],
                                        has_more=nxt is not None,
                                        next_page_token=model.encode_token(*nxt) if nxt else "")

    async def GetConversation(self, request: chat_pb2.GetConversationRequest,
                              context: grpc.aio.ServicerContext) -> chat_pb2.GetConversationResponse:
        conv = await member_view(self.store, request.conversation_id, request.user_id)
        mark = await self.store.read_mark(request.user_id, conv.conversation_id)
        return chat_pb2.GetConversationResponse(
            conversation=conversation_proto(conv, await self.store.unread(conv, request.user_id, mark), mark))

    async def ListConversations(self, request: chat_pb2.ListConversationsRequest,
                                context: grpc.aio.ServicerContext) -> chat_pb2.ListConversationsResponse:
        user = request.user_id
        try:
            after = model.decode_list_token(request.page_token)
        except model.BadCursor as exc:
            raise invalid_argument({"page_token": str(exc)}) from None
        ids, marks = await asyncio.gather(self.store.conversation_ids(user), self.store.read_marks(user))
        convs = [c for c in await asyncio.gather(*(self.store.conversation(i) for i in ids))
                 if c is not None and user in c.members]

        def activity(c: Conversation) -> tuple[int, int]:
            return model.order_key(c.last.message_id) if c.last is not None \
                else (model.uuid_ticks(c.create_time), 0)

        ordered = sorted(((activity(c), c.conversation_id, c) for c in convs), key=lambda t: t[:2],
                         reverse=True)
        if after is not None:
            ordered = [t for t in ordered if t[:2] < after]
        size = model.conversations_limit(request.page_size)
        page, more = ordered[:size], len(ordered) > size
        unread = await asyncio.gather(*(self.store.unread(c, user, marks.get(c.conversation_id))
                                        for _, _, c in page))
        return chat_pb2.ListConversationsResponse(
            conversations=[conversation_proto(c, n, marks.get(c.conversation_id))
                           for (_, _, c), n in zip(page, unread, strict=True)],
            next_page_token=model.encode_list_token(page[-1][0], page[-1][1]) if more else "")

    async def GetPresence(self, request: chat_pb2.GetPresenceRequest,
                          context: grpc.aio.ServicerContext) -> chat_pb2.GetPresenceResponse:
        states = await self.presence.get(list(request.user_ids))
        return chat_pb2.GetPresenceResponse(
            presences=[presence_proto(u, s) for u, s in zip(request.user_ids, states, strict=True)])
