"""The chat service: one-to-one conversations and groups of up to 50, history in Cassandra, live
delivery over Redis pub/sub, presence as Redis keys with a time to live (see docs/chat.md). Roles for
`culture serve chat`:

- `api-write`: ChatService.CreateConversation, SendMessage (idempotent per client message id; the
  message, its conversation's last-message cells and its `chat.message-sent` outbox entry are one
  logged batch; then PUBLISH to each member's Redis channel), MarkRead, SetPresence;
- `api-read`: History (pages back across time buckets, or catch-up after a message id),
  GetConversation, ListConversations (last message, unread count), GetPresence;
- `relay`: the outbox relay (Cassandra outbox -> Kafka `chat.message-sent`), a role of its own like
  the other services' relays (in the operator's Strimzi mode Kafka admits only workers and relays).

Settings: CULTURE_CHAT_* (settings.py); Cassandra, Redis and Kafka come from PlatformSettings.
"""
