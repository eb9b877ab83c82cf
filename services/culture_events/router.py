"""The router: subscribes handlers to topics, runs them through middleware, publishes their outputs.

    router = Router(concurrency=8)
    router.add_middleware(*default_middleware(...))
    router.add_handler("feed.fan-out", "catalog.review-created", subscriber, fan_out,
                       publish_topic="feed.feed-created", publisher=publisher)
    router.add_consumer_handler("mailer.welcome", "identity.user-registered", subscriber, send_welcome)
    await router.run()        # returns after close(); router.running is set while it consumes
    await router.close()      # stop taking messages, finish in-flight ones, close subscribers

Each handler consumes in `concurrency` lanes; a message goes to the lane of its partition key, so
messages with one key are handled one after the other, in order, while other keys run in parallel.
A handler's result decides the message's fate: success -> outputs published, then ack; exception ->
nack (redelivery). Middleware added first runs outermost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import zlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from culture_events import handling
from culture_events.errors import ClosedError, EventsError
from culture_events.handling import Handler, Middleware
from culture_events.message import Message, Meta, Settlement
from culture_events.ports import Publisher, Subscriber

log = logging.getLogger(__name__)

#: messages waiting in one lane: enough for bursts between the consume loop and the lane's worker,
#: few enough that close() (which lets every waiting message finish) stays quick
LANE_CAPACITY = 8
_KEYS_REMEMBERED = 10_000


@runtime_checkable
class Lifecycle(Protocol):
    """Optional for middleware: started when the router starts, stopped when it closes (Throttle)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclasses.dataclass
class HandlerConfig:
    """One handler as registered: where it reads, what it runs, where its outputs go."""

    name: str
    topic: str
    subscriber: Subscriber
    handler: Handler
    publish_topic: str | None = None
    publisher: Publisher | None = None
    middleware: Sequence[Middleware] = ()
    concurrency: int = 8


class _Lane:
    """A bounded FIFO of messages handled one after the other by one worker.

    One producer (the handler's consume loop) and one consumer (the lane's worker), each waiting on
    a plain future only when it must: no timeout and no task per message, and `offer`/`take` do
    not even suspend while there is room / there are messages. A full lane lets its producer go on
    only once it is half empty, so producer and worker hand messages over in bursts instead of
    waking each other for every message.
    """

    __slots__ = ("_getter", "_putter", "capacity", "queue")

    def __init__(self, capacity: int) -> None:
        self.queue: collections.deque[Message | None] = collections.deque()
        self.capacity = capacity
        self._getter: asyncio.Future[None] | None = None  # the worker, waiting for a message
        self._putter: asyncio.Future[None] | None = None  # the consume loop, waiting for room

    def offer(self, msg: Message | None) -> bool:
        """Append without waiting when there is room (None, the stop mark, always fits)."""
        if msg is not None and len(self.queue) >= self.capacity:
            return False
        self.queue.append(msg)
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        return True

    async def put(self, msg: Message | None) -> None:
        """Append a message, waiting for room."""
        while not self.offer(msg):
            self._putter = asyncio.get_running_loop().create_future()
            try:
                await self._putter
            finally:
                self._putter = None

    def take(self) -> Message | None:
        """The next message; the queue must not be empty. None means stop."""
        msg = self.queue.popleft()
        if self._putter is not None and len(self.queue) <= self.capacity // 2:
            self._room()
        return msg

    async def get(self) -> Message | None:
        """The next message, waiting for one. None means stop."""
        while not self.queue:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.take()

    def _room(self) -> None:
        if self._putter is not None and not self._putter.done():
            self._putter.set_result(None)

    def nack_key(self, key: str | None) -> None:
        """Nack the waiting messages with this key: they must follow the nacked one, not overtake it."""
        if key is not None:
            for msg in self.queue:
                if msg is not None and msg.key == key:
                    msg.nack()
            kept = [m for m in self.queue if m is None or m.state is Settlement.PENDING]
            self.queue.clear()  # in place: the worker holds this deque
            self.queue.extend(kept)
            self._room()


class Router:
    """Runs handlers over subscriptions with middleware, bounded concurrency and graceful shutdown."""

    def __init__(self, *, concurrency: int = 8, close_timeout: float = 60.0) -> None:
        self.concurrency = concurrency
        self.close_timeout = close_timeout
        self.handlers: dict[str, HandlerConfig] = {}
        self._middleware: list[Middleware] = []
        #: set while the router consumes (after run() started every handler), cleared on close()
        self.running = asyncio.Event()
        self._closing = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started = False
        self._closer: asyncio.Future[None] | None = None
        self._consumers: list[asyncio.Task[None]] = []

    def add_middleware(self, *middleware: Middleware) -> None:
        """Add router-wide middleware; the first added runs outermost, around per-handler middleware."""
        self._check_not_started()
        self._middleware.extend(middleware)

    def add_handler(self, name: str, subscribe_topic: str, subscriber: Subscriber, handler: Handler,
                    publish_topic: str | None = None, publisher: Publisher | None = None, *,
                    middleware: Sequence[Middleware] = (), concurrency: int | None = None) -> HandlerConfig:
        """Register a handler; its outputs are published to `publish_topic` with `publisher`."""
        self._check_not_started()
        if name in self.handlers:
            raise ValueError(f"a handler named {name!r} is already registered")
        if (publish_topic is None) != (publisher is None):
            raise ValueError(f"handler {name!r}: give both publish_topic and publisher, or neither")
        config = HandlerConfig(name, subscribe_topic, subscriber, handler, publish_topic, publisher,
                               tuple(middleware), concurrency or self.concurrency)
        self.handlers[name] = config
        return config

    def add_consumer_handler(self, name: str, subscribe_topic: str, subscriber: Subscriber,
                             handler: Handler, *, middleware: Sequence[Middleware] = (),
                             concurrency: int | None = None) -> HandlerConfig:
        """Register a handler without outputs (it may return None or [])."""
        return self.add_handler(name, subscribe_topic, subscriber, handler, middleware=middleware,
                                concurrency=concurrency)

    def _check_not_started(self) -> None:
        if self._started:
            raise EventsError("the router is already running: add handlers and middleware before run()")

    def is_ready(self) -> bool:
        """True while the router consumes with every handler (for health checks and probes): False
        before run(), after close(), and once any subscription has ended."""
        return (self.running.is_set() and not self._closing.is_set()
                and not any(task.done() for task in self._consumers))

    def _lifecycles(self) -> list[Lifecycle]:
        found: list[Lifecycle] = []
        for mw in [*self._middleware, *(m for h in self.handlers.values() for m in h.middleware)]:
            if isinstance(mw, Lifecycle) and all(mw is not f for f in found):
                found.append(mw)
        return found

    def _chain(self, config: HandlerConfig) -> Handler:
        handler = config.handler
        for mw in reversed([*self._middleware, *config.middleware]):
            handler = mw(handler)
        return handler

    async def run(self) -> None:
        """Consume with every handler until close(); raises when a subscription fails for good."""
        if self._started:
            raise EventsError("Router.run() was already called; a router runs once")
        if self._closing.is_set():
            raise ClosedError("the router was closed before it ran")
        if not self.handlers:
            raise EventsError("the router has no handlers: add_handler() before run()")
        self._started = True
        lifecycles = self._lifecycles()
        for lc in lifecycles:
            await lc.start()
        tasks = self._consumers = [
            asyncio.create_task(self._consume(cfg, self._chain(cfg)), name=f"router:{cfg.name}")
            for cfg in self.handlers.values()]
        self.running.set()
        log.info("router running %d handler(s): %s", len(tasks), ", ".join(self.handlers))
        failure: BaseException | None = None
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    await next_done
                except Exception as exc:  # noqa: BLE001 - one subscription died: stop the others, then fail
                    log.error("router: a subscription failed: %s", exc)
                    failure = failure or exc
                    self._closer = asyncio.ensure_future(self.close())
        finally:
            self.running.clear()
            for lc in lifecycles:
                with contextlib.suppress(Exception):
                    await lc.stop()
            self._stopped.set()
        if failure is not None:
            raise failure

    async def _consume(self, config: HandlerConfig, chain: Handler) -> None:
        lanes = [_Lane(LANE_CAPACITY) for _ in range(config.concurrency)]
        workers = [asyncio.create_task(self._work(config, chain, lane)) for lane in lanes]
        spread = itertools.count()
        # the lane of a key is crc32(key) % lanes; remembered for the keys seen lately (bounded)
        lane_of: dict[str, _Lane] = {}
        capacity = LANE_CAPACITY
        try:
            async for msg in config.subscriber.subscribe(config.topic):
                key = msg.metadata.get(Meta.PARTITION_KEY)  # msg.key, without the property call
                if key is None:
                    lane = lanes[next(spread) % len(lanes)]
                elif (known := lane_of.get(key)) is not None:
                    lane = known
                else:
                    if len(lane_of) >= _KEYS_REMEMBERED:
                        lane_of.clear()
                    lane = lane_of[key] = lanes[zlib.crc32(key.encode()) % len(lanes)]
                # lane.offer(), inlined (once per message)
                queue = lane.queue
                if len(queue) < capacity:
                    queue.append(msg)
                    getter = lane._getter
                    if getter is not None and not getter.done():
                        getter.set_result(None)
                else:
                    await lane.put(msg)
        finally:
            for lane in lanes:
                await lane.put(None)
            await asyncio.gather(*workers)

    async def _work(self, config: HandlerConfig, chain: Handler, lane: _Lane) -> None:
        """Handle a lane's messages in order. Inlined (no coroutine per message): the hot path."""
        # bound once: this worker task has its own context and runs only this handler's calls, so
        # every call sees it without a set and a reset per message
        handling.bind(handling.Handling(config.name, config.topic))
        queue, half = lane.queue, lane.capacity // 2
        while True:
            if queue:  # lane.take(), inlined
                msg = queue.popleft()
                if lane._putter is not None and len(queue) <= half:
                    lane._room()
            else:
                msg = await lane.get()
            if msg is None:
                break
            try:
                outputs = await chain(msg)
                if outputs:  # the common consumer case (None or []) skips the publish path entirely
                    if config.publisher is None or config.publish_topic is None:
                        raise EventsError(f"handler {config.name!r} returned {len(outputs)} message(s) "
                                          "but has no publish_topic; use add_handler(..., publish_topic, "
                                          "publisher)")
                    await config.publisher.publish(config.publish_topic, *outputs)
                if msg.ack():  # False: the chain nacked it itself
                    continue
            except asyncio.CancelledError:
                msg.nack()
                raise
            except KeyboardInterrupt:
                msg.nack()
                raise
            except BaseException as exc:  # noqa: BLE001 - the safety net: nothing a handler does stops the router
                log.warning("handler %s failed on message %s: %r (nacked)", config.name, msg.id, exc)
                msg.nack()
            if msg.state is Settlement.NACKED:
                lane.nack_key(msg.key)

    async def close(self) -> None:
        """Stop taking messages, finish the in-flight ones, close the subscribers (idempotent)."""
        if self._closing.is_set():
            if self._started:
                await self._stopped.wait()
            return
        self._closing.set()
        self.running.clear()
        subscribers: list[Subscriber] = []
        for cfg in self.handlers.values():
            if all(cfg.subscriber is not s for s in subscribers):
                subscribers.append(cfg.subscriber)
        log.info("router closing: finishing in-flight messages")
        await asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)
        if self._started:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await self._stopped.wait()
            except TimeoutError:
                log.warning("router: handlers still busy %.0fs after close()", self.close_timeout)
