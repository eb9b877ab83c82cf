"""What a backend can do, and how a contract test makes its publishers and subscribers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from culture_events.ports import Publisher, Subscriber


@dataclasses.dataclass(frozen=True)
class Features:
    """The abilities the contract scenarios may rely on; a scenario needing a missing one is skipped."""

    #: subscribers with the same group share the messages; different groups each get everything
    consumer_groups: bool = True
    #: messages with the same partition key reach ONE member of a group, in publish order
    ordering_per_key: bool = True
    #: a new subscriber in a group resumes after the group's last ack (messages outlive subscribers)
    persistent: bool = True
    #: a nacked message is delivered again
    redelivery_after_nack: bool = True
    #: a message handed out but never settled reaches another subscriber of the group after a close
    redelivery_of_abandoned: bool = True
    #: partitions to create when the publisher is a TopicCreator
    partitions: int = 4
    #: how long a scenario waits for deliveries (real brokers rebalance slowly)
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class Backend:
    """A backend under test: how to make its publisher and subscribers, and what it can do.

    `subscriber(group, **overrides)` accepts at least `close_timeout` and `max_in_flight`.
    """

    name: str
    features: Features
    publisher: Callable[[], Publisher]
    subscriber: Callable[..., Subscriber]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
