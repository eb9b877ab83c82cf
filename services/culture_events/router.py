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
from culture_events.errors import ClosedError, EventsError, RetryLater
from culture_events.handling import Handler, Middleware
from culture_events.message import NOT_STARTED, Message, Meta, Settlement
from culture_events.ports import Publisher, Subscriber

log = logging.getLogger(__name__)

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
    #: this handler's retry budget (seconds), instead of the Retry middleware's own
    retry_budget: float | None = None


class _Lane:
    """A FIFO of messages handled one after the other by one worker.

    One producer (the handler's consume loop) and one consumer (the lane's worker). The lane is not
    bounded: the consume loop never waits for one lane (a slow lane would stop every other lane,
    the fetches and the commits); the subscriber bounds the messages in flight (`max_in_flight`).
    `revoke()` is the hook a message's backend calls when it takes the message back (its partition
    went to another member): the handler running it is cancelled, the message nacked.
    """

    __slots__ = ("_getter", "current", "queue", "revoked", "worker")

    def __init__(self) -> None:
        self.queue: collections.deque[Message | None] = collections.deque()
        self._getter: asyncio.Future[None] | None = None  # the worker, waiting for a message
        self.worker: asyncio.Task[None] | None = None
        #: the message the worker is handling, and the one whose handling revoke() cancelled
        self.current: Message | None = None
        self.revoked: Message | None = None

    def offer(self, msg: Message | None) -> None:
        """Append (None is the stop mark) and wake the worker."""
        self.queue.append(msg)
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    async def get(self) -> Message | None:
        """The next message, waiting for one. None means stop."""
        while not self.queue:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.queue.popleft()

    def revoke(self) -> None:
        """Cancel the handling of the current message (the backend took it back)."""
        msg = self.current
        if msg is not None and msg.state is Settlement.PENDING and msg.on_revoke == self.revoke \
                and self.worker is not None:  # it runs now (a parked one has NOT_STARTED)
            self.revoked = msg
            self.worker.cancel()

    def take_key(self, key: str) -> list[Message]:
        """Remove and return the waiting messages with this key, in order."""
        taken = [m for m in self.queue if m is not None and m.metadata.get(Meta.PARTITION_KEY) == key]
        if taken:
            kept = [m for m in self.queue if m is None or m.metadata.get(Meta.PARTITION_KEY) != key]
            self.queue.clear()  # in place: the worker holds this deque
            self.queue.extend(kept)
        return taken

    def nack_key(self, key: str | None) -> None:
        """Nack the waiting messages with this key: they must follow the nacked one, not overtake it."""
        if key is not None:
            for msg in self.take_key(key):
                msg.nack()


class _Parked:
    """A key waiting for a retry: its failed message (the head) and the key's later messages."""

    __slots__ = ("followers", "head", "lane", "timer")

    def __init__(self, head: Message, lane: _Lane) -> None:
        self.head = head
        self.lane = lane
        self.followers: collections.deque[Message] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None

    def nack_all(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.head.nack()
        for msg in self.followers:
            msg.nack()
        self.followers.clear()


class _Consumption:
    """The state of one handler's consumption: its lanes and its parked keys."""

    __slots__ = ("lanes", "parked")

    def __init__(self, lanes: list[_Lane]) -> None:
        self.lanes = lanes
        #: keys waiting for a retry (RetryLater): their messages wait here, other keys go on
        self.parked: dict[str, _Parked] = {}

    def park(self, key: str, msg: Message, lane: _Lane, delay: float) -> None:
        """Take `msg` out of its lane for `delay` seconds; its key's later messages wait behind it."""
        parked = self.parked.get(key)
        if parked is None or parked.head is not msg:
            parked = self.parked[key] = _Parked(msg, lane)
            parked.followers.extend(lane.take_key(key))
        parked.timer = asyncio.get_running_loop().call_later(delay, self._due, key, parked)

    def _due(self, key: str, parked: _Parked) -> None:
        parked.timer = None
        if self.parked.get(key) is not parked:
            return
        if parked.head.state is not Settlement.PENDING:  # taken back meanwhile (revoked, closing)
            del self.parked[key]
            parked.nack_all()
            return
        parked.lane.offer(parked.head)

    def settled(self, key: str, msg: Message) -> None:
        """`msg` of a parked key was handled (acked or nacked): release or nack its followers."""
        parked = self.parked.get(key)
        if parked is None or parked.head is not msg:
            return
        del self.parked[key]
        if msg.state is Settlement.ACKED:
            lane = parked.lane
            for follower in parked.followers:
                lane.offer(follower)
        else:
            parked.nack_all()

    def release_all(self) -> None:
        """Closing: nack every parked and waiting message (the next owner gets them again)."""
        for p in self.parked.values():
            p.nack_all()
        self.parked.clear()  # in place: the consume loop and the workers hold this dict
        for lane in self.lanes:
            for msg in lane.queue:
                if msg is not None:
                    msg.nack()


def _park_key(msg: Message) -> str:
    key = msg.metadata.get(Meta.PARTITION_KEY)
    return key if key is not None else f"\0{msg.id}"  # a keyless message parks alone


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
        self._consumptions: list[_Consumption] = []
        self._closing_now = False  # self._closing.is_set(), as a plain attribute for the consume loop

    def add_middleware(self, *middleware: Middleware) -> None:
        """Add router-wide middleware; the first added runs outermost, around per-handler middleware."""
        self._check_not_started()
        self._middleware.extend(middleware)

    def add_handler(self, name: str, subscribe_topic: str, subscriber: Subscriber, handler: Handler,
                    publish_topic: str | None = None, publisher: Publisher | None = None, *,
                    middleware: Sequence[Middleware] = (), concurrency: int | None = None,
                    retry_budget: float | None = None) -> HandlerConfig:
        """Register a handler; its outputs are published to `publish_topic` with `publisher`.
        `retry_budget`: how long (seconds) Retry goes on for this handler's messages, when it should
        differ from the Retry middleware's own `budget`."""
        self._check_not_started()
        if name in self.handlers:
            raise ValueError(f"a handler named {name!r} is already registered")
        if (publish_topic is None) != (publisher is None):
            raise ValueError(f"handler {name!r}: give both publish_topic and publisher, or neither")
        config = HandlerConfig(name, subscribe_topic, subscriber, handler, publish_topic, publisher,
                               tuple(middleware), concurrency or self.concurrency, retry_budget)
        self.handlers[name] = config
        return config

    def add_consumer_handler(self, name: str, subscribe_topic: str, subscriber: Subscriber,
                             handler: Handler, *, middleware: Sequence[Middleware] = (),
                             concurrency: int | None = None,
                             retry_budget: float | None = None) -> HandlerConfig:
        """Register a handler without outputs (it may return None or [])."""
        return self.add_handler(name, subscribe_topic, subscriber, handler, middleware=middleware,
                                concurrency=concurrency, retry_budget=retry_budget)

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
        lanes = [_Lane() for _ in range(config.concurrency)]
        state = _Consumption(lanes)
        self._consumptions.append(state)
        for lane in lanes:
            lane.worker = asyncio.create_task(self._work(config, chain, lane, state))
        workers = [lane.worker for lane in lanes]
        spread = itertools.count()
        # the lane of a key is crc32(key) % lanes; remembered for the keys seen lately (bounded)
        lane_of: dict[str, _Lane] = {}
        parked = state.parked
        try:
            async for msg in config.subscriber.subscribe(config.topic):
                msg.on_revoke = NOT_STARTED  # a revocation may simply nack it until it runs
                key = msg.metadata.get(Meta.PARTITION_KEY)  # msg.key, without the property call
                if key is None:
                    lane = lanes[next(spread) % len(lanes)]
                else:
                    if parked and key in parked:
                        waiting = parked[key]
                        if waiting.head._state is Settlement.PENDING:  # the key waits for a retry
                            waiting.followers.append(msg)
                            continue
                        del parked[key]  # its head was taken back (revoked): this is a redelivery
                        waiting.nack_all()
                    known = lane_of.get(key)
                    if known is None:
                        if len(lane_of) >= _KEYS_REMEMBERED:
                            lane_of.clear()
                        known = lane_of[key] = lanes[zlib.crc32(key.encode()) % len(lanes)]
                    lane = known
                # lane.offer(), inlined (once per message)
                lane.queue.append(msg)
                getter = lane._getter
                if getter is not None and not getter.done():
                    getter.set_result(None)
        finally:
            state.release_all()
            for lane in lanes:
                lane.offer(None)
            await asyncio.gather(*workers)

    async def _work(self, config: HandlerConfig, chain: Handler, lane: _Lane, state: _Consumption) -> None:
        """Handle a lane's messages in order. Inlined (no coroutine per message): the hot path."""
        # bound once: this worker task has its own context and runs only this handler's calls, so
        # every call sees it without a set and a reset per message
        handling.bind(handling.Handling(config.name, config.topic, can_defer=True,
                                        retry_budget=config.retry_budget))
        queue = lane.queue
        parked = state.parked
        revoke = lane.revoke
        while True:
            msg = queue.popleft() if queue else await lane.get()  # lane.get() only when it must wait
            if msg is None:
                break
            if msg._state is not Settlement.PENDING or self._closing_now:
                # nacked while it waited (revoked), or not started before close(): it goes back
                msg.nack()
                continue
            # (not reset afterwards: revoke() acts only on a message still pending with this hook)
            lane.current = msg
            msg.on_revoke = revoke
            try:
                outputs = await chain(msg)
                if outputs:  # the common consumer case (None or []) skips the publish path entirely
                    if config.publisher is None or config.publish_topic is None:
                        raise EventsError(f"handler {config.name!r} returned {len(outputs)} message(s) "
                                          "but has no publish_topic; use add_handler(..., publish_topic, "
                                          "publisher)")
                    await config.publisher.publish(config.publish_topic, *outputs)
                if msg.ack() and not parked:  # False: the chain nacked it itself
                    continue
            except RetryLater as later:
                msg.on_revoke = NOT_STARTED
                state.park(_park_key(msg), msg, lane, later.delay)
                continue
            except asyncio.CancelledError:
                msg.nack()
                if lane.revoked is not msg:
                    raise
                # revoke(): the backend took the message back; the worker goes on with the others
                lane.revoked = None
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                log.warning("handler %s: handling of %s cancelled (its partition was revoked)",
                            config.name, msg.id)
            except KeyboardInterrupt:
                msg.nack()
                raise
            except BaseException as exc:  # noqa: BLE001 - the safety net: nothing a handler does stops the router
                log.warning("handler %s failed on message %s: %r (nacked)", config.name, msg.id, exc)
                msg.nack()
            if parked:
                state.settled(_park_key(msg), msg)
            if msg.state is Settlement.NACKED:
                lane.nack_key(msg.key)

    async def close(self) -> None:
        """Stop taking messages, finish the in-flight ones, close the subscribers (idempotent)."""
        if self._closing.is_set():
            if self._started:
                await self._stopped.wait()
            return
        self._closing.set()
        self._closing_now = True
        self.running.clear()
        subscribers: list[Subscriber] = []
        for cfg in self.handlers.values():
            if all(cfg.subscriber is not s for s in subscribers):
                subscribers.append(cfg.subscriber)
        log.info("router closing: finishing in-flight messages")
        closes = asyncio.gather(*(s.close() for s in subscribers), return_exceptions=True)
        await asyncio.sleep(0)  # the subscribers stop handing out messages, then:
        for state in self._consumptions:  # waiting and parked messages go back (redelivered later)
            state.release_all()
        await closes
        if self._started:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await self._stopped.wait()
            except TimeoutError:
                log.warning("router: handlers still busy %.0fs after close()", self.close_timeout)
