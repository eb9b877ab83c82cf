"""Sagas: a step that fails for good emits a failure event; the owner of an earlier step
compensates by handling that event. A Saga names the flow and registers its compensations on a
router, so they run with the router's middleware (retry, poison, dedup...) like any handler.

    saga = Saga("registration", router, subscriber, publisher)
    saga.compensate(on_topic="feed.creation-failed", handler=mark_profile_incomplete,
                    publish_topic="catalog.profile-marked-incomplete")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from culture_events.handling import Handler, Middleware
from culture_events.ports import Publisher, Subscriber
from culture_events.router import HandlerConfig, Router


@dataclasses.dataclass(frozen=True)
class Compensation:
    """One compensation: which failure event triggers it and which handler undoes the earlier step."""

    on_topic: str
    handler_name: str
    publish_topic: str | None


class Saga:
    """A named flow whose compensations are router handlers on failure events."""

    def __init__(self, name: str, router: Router, subscriber: Subscriber, publisher: Publisher | None = None,
                 *, middleware: Sequence[Middleware] = ()) -> None:
        self.name = name
        self.router = router
        self.subscriber = subscriber
        self.publisher = publisher
        self.middleware = tuple(middleware)
        self.compensations: list[Compensation] = []

    def compensate(self, *, on_topic: str, handler: Handler, publish_topic: str | None = None,
                   name: str | None = None) -> HandlerConfig:
        """Run `handler` on every event of `on_topic`; its outputs (if any) go to `publish_topic`."""
        if publish_topic is not None and self.publisher is None:
            raise ValueError(f"saga {self.name!r}: a compensation that publishes needs Saga(publisher=...)")
        handler_name = name or f"{self.name}.compensate.{on_topic}"
        config = self.router.add_handler(
            handler_name, on_topic, self.subscriber, handler, publish_topic,
            self.publisher if publish_topic is not None else None, middleware=self.middleware)
        self.compensations.append(Compensation(on_topic, handler_name, publish_topic))
        return config
