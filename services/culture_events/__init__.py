"""culture_events: a Watermill-like event library for Python.

Messages, Publisher/Subscriber ports with swappable backends (Kafka, Redis Streams, in-memory), a
router with middleware, a transactional outbox and saga helpers. See docs/events.md.
"""

from culture_events.message import Message, Meta
from culture_events.ports import Publisher, Subscriber, TopicCreator

__all__ = ["Message", "Meta", "Publisher", "Subscriber", "TopicCreator"]
