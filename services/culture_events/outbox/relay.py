"""The relay: claim committed outbox entries, publish them, delete them. Store-independent.

A store (PostgresStore, MongoStore) knows how to claim a batch so that concurrent relays never hold
the same entry, which claimed entries may go out without overtaking an older entry of the same key
(records.publishable), how to delete what was published and how to wait for new entries (LISTEN/NOTIFY,
a change stream, or polling). The relay only loops: claim, publish, confirm; on a publish failure
it releases the claim (the entries stay in the store), backs off, and starts a fresh publisher. An
entry the broker refuses itself (PublishRejected: too large, no such topic) is counted in the store
(`failed`): retried after a backoff, dead after the store's max_attempts, holding back only the
later entries of its key; the rest of the batch goes on.

Delivery is at-least-once: a relay that dies after the broker accepted a batch but before the delete
committed leaves the batch to be published again. Consumers deduplicate on the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from prometheus_client import Counter, Gauge

from culture_events.errors import PublishRejected
from culture_events.outbox.records import Entry
from culture_events.ports import Publisher

log = logging.getLogger(__name__)

#: in the default registry, which a role's GET /metrics serves (culture_runtime.metrics)
PENDING = Gauge("culture_outbox_pending_entries", "Outbox entries waiting to be published (dead ones not "
                "included)", ["outbox"])
DEAD = Gauge("culture_outbox_dead_entries", "Outbox entries the broker refused max_attempts times: never "
             "published, they hold back the later entries of their key", ["outbox"])
REFUSED = Counter("culture_outbox_refused_publishes", "Publishes of single entries the broker refused "
                  "(too large, no such topic)", ["outbox"])
PUBLISHED = Counter("culture_outbox_published_entries", "Entries published by the relay", ["outbox"])


def by_topic_entries(entries: list[Entry]) -> dict[str, list[Entry]]:
    """Entries per topic, in store order inside each topic (hence per key)."""
    out: dict[str, list[Entry]] = {}
    for entry in entries:
        out.setdefault(entry.topic, []).append(entry)
    return out


class Claim(Protocol):
    """A batch held by one relay until the claim ends (commit of the deletes, or rollback)."""

    #: entries that may be published now, in store order
    entries: list[Entry]
    #: how many entries were claimed in all (the rest wait behind an older entry of their key)
    held: int

    async def done(self, entries: list[Entry] | None = None) -> None:
        """Delete the published entries (None: all of `entries`)."""

    async def keep_alive(self) -> None:
        """Extend the claim while a publish is pending (a lease that must not expire meanwhile)."""


class FailingClaim(Claim, Protocol):
    """A claim of a store that counts refused publishes per entry (dead entries)."""

    async def failed(self, entry: Entry, error: str) -> tuple[bool, int]:
        """One more refused publish of `entry` (the broker refuses it itself: too large, no such
        topic); it is tried again after a backoff, and after the store's `max_attempts` it is dead:
        never published, it holds back the later entries of its key only. (dead now?, attempts)"""


class OutboxStore(Protocol):
    """Where outbox entries live, seen from the relay."""

    #: a short description for progress lines ("postgres culture.public.outbox")
    describe: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def claim(self, limit: int) -> contextlib.AbstractAsyncContextManager[Claim]: ...

    async def wait_for_new(self, at_most: float) -> None:
        """Return when new entries may have been committed, or after `at_most` seconds."""

    async def pending(self) -> int:
        """How many entries wait in the store (for progress output)."""


@dataclasses.dataclass
class RelayStats:
    """What a relay did so far (read by tests, benchmarks and the CLI's progress lines)."""

    published: int = 0
    batches: int = 0
    failures: int = 0
    blocked_rounds: int = 0
    #: publishes of single entries the broker refused (counted per entry in the store)
    refused: int = 0
    #: entries that became dead in this relay's rounds
    dead: int = 0
    #: publishes that waited longer than `stall_warning` (a broker that went away, then came back)
    stalls: int = 0
    last_error: str | None = None


class _Stopped(Exception):
    """Stop was asked while a publish still waited for the broker: the claim is rolled back."""


def _noop(_: str) -> None:
    return None


class Relay:
    """Publishes a store's outbox entries through a publisher, forever or until `stop` is set.

    `publisher` is a Publisher or a zero-argument factory; with a factory the relay starts a fresh
    publisher after each failure (e.g. a Kafka producer that could not even start).

    A publish that merely waits (the broker went away) is NOT abandoned: the Kafka backend's
    idempotent producer retries the same batch until the broker is back, and the broker drops a
    retried duplicate, so waiting is what keeps "exactly once on the topic". Meanwhile the claim
    is kept alive and a progress line says so. Giving up and publishing again with a new producer
    could publish the batch twice. When `stop` is set during such a wait, the relay waits
    `stop_grace` seconds more, then cancels the publish and rolls the claim back.
    """

    def __init__(self, store: OutboxStore, publisher: Publisher | Callable[[], Publisher], *,
                 batch_size: int = 500, poll_interval: float = 1.0, max_backoff: float = 5.0,
                 report: Callable[[str], None] = _noop, report_every: float = 10.0,
                 stall_warning: float = 5.0, keep_alive_every: float = 10.0, stop_grace: float = 5.0) -> None:
        self.store = store
        is_factory = isinstance(publisher, type) or not isinstance(publisher, Publisher)
        self._factory: Callable[[], Publisher] | None = publisher if is_factory else None  # type: ignore[assignment]
        self._publisher: Publisher | None = None if is_factory else publisher  # type: ignore[assignment]
        self._held = 0  # entries claimed in the last round
        self._blocked = 0  # of which waited behind another relay's older entry of their key
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.stats = RelayStats()
        self._report = report
        self._report_every = report_every
        self.stall_warning = stall_warning
        self.keep_alive_every = keep_alive_every
        self.stop_grace = stop_grace
        self._stop = asyncio.Event()

    def _current_publisher(self) -> Publisher:
        if self._publisher is None:
            assert self._factory is not None
            self._publisher = self._factory()
        return self._publisher

    async def _drop_publisher(self) -> None:
        """Close a failed publisher (bounded: a producer without a broker may hang in its flush)."""
        if self._factory is None or self._publisher is None:
            return
        publisher, self._publisher = self._publisher, None
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(10):
                await publisher.close()

    async def relay_once(self) -> int:
        """Claim one batch, publish what may go out, confirm it. Returns how many were published.

        An entry the broker refuses (PublishRejected: too large, no such topic) is counted as failed
        in the store (dead after its attempts) while the rest of the batch goes on. Other publish
        failures raise; the entries not published are released and nothing is lost.
        """
        async with self.store.claim(self.batch_size) as claim:
            self._held, self._blocked = claim.held, claim.held - len(claim.entries)
            if self._blocked:
                self.stats.blocked_rounds += 1
            if not claim.entries:
                return 0
            publisher = self._current_publisher()
            # topics are independent partitions: publish them concurrently; inside a topic the
            # publisher keeps the given order per key
            groups = by_topic_entries(claim.entries)
            sends = [publisher.publish(topic, *(e.message for e in entries))
                     for topic, entries in groups.items()]
            results = await self._await_publish(
                claim, asyncio.ensure_future(asyncio.gather(*sends, return_exceptions=True)))
            published: list[Entry] = []
            refused: list[tuple[Entry, PublishRejected]] = []
            error: BaseException | None = None
            for entries, result in zip(groups.values(), results, strict=True):
                if result is None:
                    published += entries
                elif isinstance(result, PublishRejected) and hasattr(claim, "failed"):
                    # those before the refused one went out; those after it are released (tried
                    # again next round, unless they share its key: then they wait behind it)
                    published += entries[:result.sent]
                    end = len(entries) if result.all_refused else result.sent + 1
                    refused += [(e, result) for e in entries[result.sent:end]]
                elif isinstance(result, BaseException):
                    error = error or result
            if published:
                await claim.done(published)
            for entry, exc in refused:
                await self._refused(claim, entry, exc)  # type: ignore[arg-type]
        self.stats.published += len(published)
        self.stats.batches += 1
        PUBLISHED.labels(self.store.describe).inc(len(published))
        if refused:
            await self._update_gauges()
        if error is not None:
            raise error
        return len(published)

    async def _update_gauges(self) -> None:
        """Pending and dead entries into the metrics (stores that count them)."""
        counts = getattr(self.store, "counts", None)
        if counts is None:
            return
        with contextlib.suppress(Exception):
            found = await counts()
            PENDING.labels(self.store.describe).set(found["pending"])
            DEAD.labels(self.store.describe).set(found["dead"])

    async def _refused(self, claim: FailingClaim, entry: Entry, exc: PublishRejected) -> None:
        dead, attempts = await claim.failed(entry, str(exc))
        self.stats.refused += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        REFUSED.labels(self.store.describe).inc()
        if dead:
            self.stats.dead += 1
            self._report(f"relay: entry {entry.ref} (topic {entry.topic}, key {entry.key}) is dead after "
                         f"{attempts} refused publishes: {exc}; later entries of its key wait "
                         "(see `culture events outbox status`)")
        else:
            self._report(f"relay: Kafka refused entry {entry.ref} (attempt {attempts}): {exc}; "
                         "retried after a backoff")

    async def _await_publish(self, claim: Claim, publishing: asyncio.Future[list[object]]) -> list[object]:
        """Wait for a publish, however long the broker is away, keeping the claim alive."""
        started = last_keep = time.monotonic()
        stopper = asyncio.ensure_future(self._stop.wait())
        stalled = False
        try:
            while True:
                done, _ = await asyncio.wait({publishing, stopper}, timeout=1.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                if publishing in done:
                    results = publishing.result()
                    if stalled:
                        self._report(f"relay: publishing works again ({len(claim.entries)} entries went out "
                                     f"after {time.monotonic() - started:.0f}s)")
                    return results
                if stopper in done:
                    done, _ = await asyncio.wait({publishing}, timeout=self.stop_grace)
                    if not done:
                        publishing.cancel()
                        raise _Stopped
                    continue
                now = time.monotonic()
                if not stalled and now - started >= self.stall_warning:
                    stalled = True
                    self.stats.stalls += 1
                    self._report(f"relay: publishing stalled: {len(claim.entries)} entries waiting "
                                 f"{now - started:.0f}s for the broker; they stay claimed and are retried")
                if now - last_keep >= self.keep_alive_every:
                    await claim.keep_alive()
                    last_keep = now
        finally:
            stopper.cancel()
            if not publishing.done():
                publishing.cancel()
            await asyncio.gather(publishing, stopper, return_exceptions=True)

    async def _rounds(self, stop: asyncio.Event) -> AsyncIterator[int]:
        backoff = 0.2
        failing = False
        while not stop.is_set():
            try:
                n = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except _Stopped:
                self._report("relay: stopped while publishing waited for the broker; "
                             "those entries stay in the outbox")
                await self._drop_publisher()
                return
            except Exception as exc:  # noqa: BLE001 - a relay outlives any broker or store failure
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if not failing:
                    self._report(f"relay: publishing failed, entries kept, retrying: {self.stats.last_error}")
                log.warning("outbox relay: %s (retry in %.1fs)", self.stats.last_error, backoff)
                failing = True
                await self._drop_publisher()
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if failing:
                self._report("relay: publishing works again")
                failing, backoff = False, 0.2
            yield n

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    async def _wait(self, stop: asyncio.Event, at_most: float) -> None:
        """Wait for new entries, or stop, or the poll interval (the fallback if a wake-up is lost)."""
        waiter = asyncio.ensure_future(self.store.wait_for_new(at_most))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stopper):
                task.cancel()
            await asyncio.gather(waiter, stopper, return_exceptions=True)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until `stop` is set (or the task is cancelled); closes the store and publisher."""
        stop = self._stop = stop or asyncio.Event()
        await self.store.open()
        self._report(f"relay: watching {self.store.describe} ({await self.store.pending()} pending)")
        last_report, reported = time.monotonic(), 0
        last_gauges = 0.0
        try:
            async for n in self._rounds(stop):
                if time.monotonic() - last_gauges >= self._report_every:
                    await self._update_gauges()
                    last_gauges = time.monotonic()
                if time.monotonic() - last_report >= self._report_every and self.stats.published > reported:
                    pending = await self.store.pending()
                    self._report(f"relay: {self.stats.published} published "
                                 f"(+{self.stats.published - reported}), {pending} pending")
                    last_report, reported = time.monotonic(), self.stats.published
                if self._blocked and not n:  # all of it waits behind another relay's batch: a moment
                    await self._sleep(stop, 0.01)
                elif not self._blocked and self._held < self.batch_size:  # drained: wait for a commit
                    await self._wait(stop, self.poll_interval)
        finally:
            await self._drop_publisher()
            await self.store.close()
            self._report(f"relay: stopped after publishing {self.stats.published}")

    async def close(self) -> None:
        """Close the publisher the relay made (a publisher passed in is the caller's to close)."""
        await self._drop_publisher()
