"""The chat's Cassandra store: schema migrations, conversations, messages, read marks, the
idempotency records and the outbox of `chat.message-sent`. Single statements are bridged to asyncio
through `execute_async` (culture_runtime.cassandra); the event loop never blocks on Cassandra.

Tables (keyspace from the settings):
- conversations (conversation_id) -> kind, members, title, creator, create time, first bucket, and
  the last message's cells (written USING TIMESTAMP <message time>, so the newest wins in any order);
- user_conversations (user_id, conversation_id) -> the conversations a user is a member of;
- messages ((conversation_id, bucket), message_id DESC) -> sender, body, client message id;
- client_ids ((conversation_id, sender_user_id, client_message_id)) -> the message id a client
  message id got: written in the message's batch after a claim in Redis (culture_chat.claims), or
  claimed here with a lightweight transaction when Redis cannot tell (the first send wins);
- read_marks (user_id, conversation_id) -> the newest message read (USING TIMESTAMP <its time>, so
  the mark never moves back);
- outbox, outbox_lease: culture_events.outbox.cassandra (MessageSent, in the message's batch).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from culture_chat import model
from culture_chat.settings import ChatSettings
from culture_events.message import Message
from culture_events.outbox.cassandra import CassandraOutbox
from culture_runtime.cassandra import KeyspaceStore, bridge

#: buckets a History page or an unread count walks back at most in one call
MAX_BUCKET_WALK = 64

#: the execution profile whose rows are dicts (the driver's default named tuples build a class per
#: result: on every send's claim, that was 3-4% of the api-write's CPU in bench/chat.py)
_DICTS = "dicts"


@dataclasses.dataclass(frozen=True)
class Conversation:
    conversation_id: str
    kind: int
    members: tuple[str, ...]
    title: str
    creator: str
    create_time: dt.datetime
    first_bucket: int
    last: StoredMessage | None = None


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    message_id: uuid.UUID
    conversation_id: str
    sender: str
    body: str
    client_message_id: str

    @property
    def send_time(self) -> dt.datetime:
        return model.time_of(self.message_id)


def _schema(ks: str) -> dict[str, str]:
    """The chat's tables, besides `meta` and the outbox's."""
    return {
        "conversations": f"CREATE TABLE IF NOT EXISTS {ks}.conversations (conversation_id text PRIMARY KEY, "
                         "kind int, members list<text>, title text, creator text, create_time timestamp, "
                         "first_bucket bigint, last_message_id timeuuid, last_sender text, last_body text, "
                         "last_client_id text)",
        "user_conversations": f"CREATE TABLE IF NOT EXISTS {ks}.user_conversations (user_id text, "
                              "conversation_id text, PRIMARY KEY ((user_id), conversation_id))",
        "messages": f"CREATE TABLE IF NOT EXISTS {ks}.messages (conversation_id text, bucket bigint, "
                    "message_id timeuuid, sender text, body text, client_message_id text, "
                    "PRIMARY KEY ((conversation_id, bucket), message_id)) "
                    "WITH CLUSTERING ORDER BY (message_id DESC)",
        "client_ids": f"CREATE TABLE IF NOT EXISTS {ks}.client_ids (conversation_id text, sender text, "
                      "client_message_id text, message_id timeuuid, "
                      "PRIMARY KEY ((conversation_id, sender, client_message_id)))",
        "read_marks": f"CREATE TABLE IF NOT EXISTS {ks}.read_marks (user_id text, conversation_id text, "
                      "message_id timeuuid, PRIMARY KEY ((user_id), conversation_id))",
    }


def _micros(message_id: uuid.UUID) -> int:
    return int(model.time_of(message_id).timestamp() * 1_000_000)


class ChatStore(KeyspaceStore):
    """The chat's tables in one keyspace."""

    service = "chat"
    settings: ChatSettings

    def __init__(self, contact_points: str, port: int, settings: ChatSettings) -> None:
        super().__init__(contact_points, port, settings)
        self.outbox = CassandraOutbox(self.ks, shards=settings.outbox_shards,
                                      ttl_seconds=settings.outbox_ttl_days * 86400,
                                      grace_seconds=settings.outbox_grace_seconds)

    # -- connection and schema (culture_runtime.cassandra) --------------------------------------

    def _tables(self) -> dict[str, str]:
        return {**_schema(self.ks), **self.outbox.schema_cql()}

    def _layout(self) -> dict[str, object]:
        # the bucket span and the outbox shards are part of the data's layout: others would hide rows
        return {"bucket_seconds": self.settings.bucket_seconds, "outbox_shards": self.settings.outbox_shards}

    def _profiles(self) -> dict[str, dict[str, Any]]:
        from cassandra.query import dict_factory

        return {_DICTS: {"row_factory": dict_factory}}

    def _prepare(self) -> None:
        ks = self.ks
        msg_cols = "message_id, sender, body, client_message_id"
        statements = {
            "conv_insert": f"INSERT INTO {ks}.conversations (conversation_id, kind, members, title, creator, "
                           "create_time, first_bucket) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
            "conv_get": f"SELECT conversation_id, kind, members, title, creator, create_time, first_bucket, "
                        "last_message_id, last_sender, last_body, last_client_id FROM "
                        f"{ks}.conversations WHERE conversation_id = ?",
            "conv_last": f"UPDATE {ks}.conversations USING TIMESTAMP ? SET last_message_id = ?, "
                         "last_sender = ?, last_body = ?, last_client_id = ? WHERE conversation_id = ?",
            "member_insert": f"INSERT INTO {ks}.user_conversations (user_id, conversation_id) VALUES (?, ?)",
            "member_list": f"SELECT conversation_id FROM {ks}.user_conversations WHERE user_id = ? LIMIT ?",
            "msg_insert": f"INSERT INTO {ks}.messages (conversation_id, bucket, {msg_cols}) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
            "msg_get": f"SELECT {msg_cols} FROM {ks}.messages WHERE conversation_id = ? AND bucket = ? "
                       "AND message_id = ?",
            "msg_before": f"SELECT {msg_cols} FROM {ks}.messages WHERE conversation_id = ? AND bucket = ? "
                          "AND message_id < ? LIMIT ?",
            "msg_after": f"SELECT {msg_cols} FROM {ks}.messages WHERE conversation_id = ? AND bucket = ? "
                         "AND message_id > ? ORDER BY message_id ASC LIMIT ?",
            "senders_after": f"SELECT sender FROM {ks}.messages WHERE conversation_id = ? AND bucket = ? "
                             "AND message_id > ? LIMIT ?",
            "client_claim": f"INSERT INTO {ks}.client_ids (conversation_id, sender, client_message_id, "
                            "message_id) VALUES (?, ?, ?, ?) IF NOT EXISTS",
            "client_record": f"INSERT INTO {ks}.client_ids (conversation_id, sender, client_message_id, "
                             "message_id) VALUES (?, ?, ?, ?)",
            "mark_set": f"INSERT INTO {ks}.read_marks (user_id, conversation_id, message_id) "
                        "VALUES (?, ?, ?) "
                        "USING TIMESTAMP ?",
            "mark_get": f"SELECT message_id FROM {ks}.read_marks WHERE user_id = ? AND conversation_id = ?",
            "marks": f"SELECT conversation_id, message_id FROM {ks}.read_marks WHERE user_id = ?",
            "outbox_insert": self.outbox.insert_cql,
        }
        self._prepared = {name: self.session.prepare(cql) for name, cql in statements.items()}
        for name in ("msg_insert", "conv_last", "outbox_insert", "member_insert", "mark_set", "msg_get",
                     "msg_before", "msg_after", "senders_after", "conv_get", "member_list", "mark_get",
                     "marks"):
            self._prepared[name].is_idempotent = True

    def bucket(self, message_id: uuid.UUID) -> int:
        return model.bucket_of(message_id, self.settings.bucket_seconds)

    # -- conversations --------------------------------------------------------------------------

    async def create_conversation(self, conversation_id: str, kind: int, members: Sequence[str], title: str,
                                  creator: str, now: dt.datetime) -> tuple[Conversation, bool]:
        """The conversation (created unless it exists) and whether this call created it."""
        first = model.bucket_at(now, self.settings.bucket_seconds)
        rows = await self._run("conv_insert",
                               (conversation_id, kind, list(members), title, creator, now, first))
        created = bool(rows and rows[0].applied)
        conv = await self.conversation(conversation_id)
        assert conv is not None
        # (again on a retry: a creation that died before its member rows is completed by the next)
        await asyncio.gather(*(self._run("member_insert", (m, conversation_id)) for m in conv.members))
        return conv, created

    async def conversation(self, conversation_id: str) -> Conversation | None:
        rows = await self._run("conv_get", (conversation_id,))
        if not rows or rows[0].kind is None:
            return None
        r = rows[0]
        last = None
        if r.last_message_id is not None:
            last = StoredMessage(r.last_message_id, conversation_id, r.last_sender or "", r.last_body or "",
                                 r.last_client_id or "")
        create_time = r.create_time.replace(tzinfo=dt.UTC) if r.create_time else dt.datetime.now(dt.UTC)
        return Conversation(conversation_id, r.kind, tuple(r.members or ()), r.title or "", r.creator or "",
                            create_time, r.first_bucket or 0, last)

    async def conversation_ids(self, user_id: str, limit: int = 5000) -> list[str]:
        return [r.conversation_id for r in await self._run("member_list", (user_id, limit))]

    # -- messages -------------------------------------------------------------------------------

    async def claim_client_id(self, conversation_id: str, sender: str, client_message_id: str,
                              message_id: uuid.UUID) -> uuid.UUID:
        """The message id of this client message id: `message_id` if this call is the first, else the
        one the first send got."""
        rows = await self._run("client_claim", (conversation_id, sender, client_message_id, message_id),
                               _DICTS)
        if rows and not rows[0]["[applied]"]:
            return rows[0]["message_id"]
        return message_id

    async def message(self, conversation_id: str, message_id: uuid.UUID) -> StoredMessage | None:
        rows = await self._run("msg_get", (conversation_id, self.bucket(message_id), message_id))
        return _message(rows[0], conversation_id) if rows else None

    async def store_message(self, msg: StoredMessage, event_topic: str, event: Message, *,
                            record_client_id: bool = False) -> None:
        """The message, its conversation's last-message cells and its outbox entry: one logged batch
        (with `record_client_id`, also its `client_ids` row: the claim was made in Redis, see
        culture_chat.claims). Its timeout stays below the outbox grace (culture_events.outbox.cassandra)."""
        from cassandra.query import BatchStatement, BatchType

        batch = BatchStatement(batch_type=BatchType.LOGGED)
        batch.add(self._prepared["msg_insert"], (msg.conversation_id, self.bucket(msg.message_id),
                                                 msg.message_id, msg.sender, msg.body, msg.client_message_id))
        batch.add(self._prepared["conv_last"], (_micros(msg.message_id), msg.message_id, msg.sender,
                                                msg.body[:200], msg.client_message_id, msg.conversation_id))
        batch.add(self._prepared["outbox_insert"], self.outbox.insert_params(event_topic, event))
        if record_client_id:
            batch.add(self._prepared["client_record"],
                      (msg.conversation_id, msg.sender, msg.client_message_id, msg.message_id))
        batch.is_idempotent = False  # a retried batch would add a second outbox entry
        s = self.settings
        timeout = max(0.5, min(s.request_timeout_seconds, s.outbox_grace_seconds - 0.5))
        await bridge(self.session.execute_async(batch, timeout=timeout))

    async def history(self, conv: Conversation, bucket: int, before: uuid.UUID,
                      want: int) -> tuple[list[StoredMessage], tuple[int, uuid.UUID] | None]:
        """Up to `want` messages older than `before` (starting in `bucket`), newest first, and where
        the next page starts (None when the conversation's first bucket was reached)."""
        out: list[StoredMessage] = []
        b, walked = bucket, 0
        while b >= conv.first_bucket and walked < MAX_BUCKET_WALK:
            rows = await self._run("msg_before", (conv.conversation_id, b, before, want + 1 - len(out)))
            out += [_message(r, conv.conversation_id) for r in rows]
            if len(out) > want:
                last = out[want - 1]
                return out[:want], (self.bucket(last.message_id), last.message_id)
            b, walked = b - 1, walked + 1
            before = model.highest_id((1 << 60) - 1)
        if b >= conv.first_bucket:  # the walk limit, not the start: go on from the next bucket
            return out, (b, model.highest_id((1 << 60) - 1))
        return out, None

    async def after(self, conv: Conversation, after: uuid.UUID,
                    want: int) -> tuple[list[StoredMessage], bool]:
        """Up to `want` messages newer than `after`, oldest first, and whether more exist."""
        out: list[StoredMessage] = []
        now_bucket = model.bucket_at(dt.datetime.now(dt.UTC), self.settings.bucket_seconds) + 1
        b = max(self.bucket(after), conv.first_bucket)
        while b <= now_bucket and len(out) <= want:
            rows = await self._run("msg_after", (conv.conversation_id, b, after, want + 1 - len(out)))
            out += [_message(r, conv.conversation_id) for r in rows]
            b += 1
        return out[:want], len(out) > want

    # -- read marks and unread counts -----------------------------------------------------------

    async def mark_read(self, user_id: str, conversation_id: str, message_id: uuid.UUID) -> None:
        await self._run("mark_set", (user_id, conversation_id, message_id, _micros(message_id)))

    async def read_mark(self, user_id: str, conversation_id: str) -> uuid.UUID | None:
        rows = await self._run("mark_get", (user_id, conversation_id))
        return rows[0].message_id if rows else None

    async def read_marks(self, user_id: str) -> dict[str, uuid.UUID]:
        return {r.conversation_id: r.message_id for r in await self._run("marks", (user_id,))}

    async def unread(self, conv: Conversation, reader: str, mark: uuid.UUID | None) -> int:
        """Messages from others after the mark, up to model.UNREAD_CAP (walking back from the newest)."""
        if conv.last is None or (mark is not None
                                 and model.order_key(conv.last.message_id) <= model.order_key(mark)):
            return 0
        lower = mark if mark is not None else model.lowest_id(0)
        low_bucket = max(self.bucket(lower) if mark is not None else conv.first_bucket, conv.first_bucket)
        senders: list[str] = []
        b = self.bucket(conv.last.message_id)
        walked = 0
        while b >= low_bucket and walked < MAX_BUCKET_WALK and len(senders) < model.UNREAD_CAP * 2:
            rows = await self._run("senders_after", (conv.conversation_id, b, lower, model.UNREAD_CAP * 2))
            senders += [r.sender for r in rows]
            b, walked = b - 1, walked + 1
        return model.unread(senders, reader)


def _message(row: Any, conversation_id: str) -> StoredMessage:
    return StoredMessage(row.message_id, conversation_id, row.sender or "", row.body or "",
                         row.client_message_id or "")
