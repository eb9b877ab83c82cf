"""The hot-metadata cache: works read through Redis.

- Keys: `<prefix>work:<id>` holds the serialized culture.catalog.v1.Work; TTL `ttl` seconds with
  +-15% jitter (so a batch of works filled together does not expire together).
- Single flight: in one process, concurrent misses of a key share one load (an asyncio future);
  across processes, the first miss takes a lease `<prefix>lease:work:<id>` (SET NX PX + random token),
  the others poll the value for up to `lease_wait` seconds, then read the database themselves.
- Invalidation (delete, never set, after the database write; "Scaling Memcache at Facebook"): a
  writer deletes the value AND the lease, so a reader that loaded the old document before the write
  cannot store it afterwards (its fill only succeeds while its lease token is still there, checked
  atomically by a Lua script). The api-write role deletes right after its commit; the worker deletes
  again when it handles the catalog's own event, so a stale entry never outlives that event.
- Metrics: culture_catalog_cache_requests_total{result="hit"|"miss"} and the hit ratio gauge.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis

from culture.catalog.v1 import catalog_pb2

_FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

Loader = Callable[[Sequence[str]], Awaitable[dict[str, catalog_pb2.Work]]]


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "culture_catalog_cache_requests", "Work cache lookups by result", ["result"], registry=registry
        )
        self.ratio = Gauge(
            "culture_catalog_cache_hit_ratio",
            "Hits / lookups of the work cache since start",
            registry=registry,
        )
        self.hits = self.misses = 0

    def record(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        if hits:
            self.requests.labels("hit").inc(hits)
        if misses:
            self.requests.labels("miss").inc(misses)
        total = self.hits + self.misses
        self.ratio.set(self.hits / total if total else 0.0)

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


_default_metrics: CacheMetrics | None = None


def default_metrics() -> CacheMetrics:
    global _default_metrics
    if _default_metrics is None:
        _default_metrics = CacheMetrics()
    return _default_metrics


class WorkCache:
    """Read-through cache of works (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "catalog:",
        ttl: float = 300.0,
        lease: float = 2.0,
        lease_wait: float = 1.0,
        metrics: CacheMetrics | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.lease = lease
        self.lease_wait = lease_wait
        self.metrics = metrics or default_metrics()
        self._flights: dict[str, asyncio.Future[catalog_pb2.Work | None]] = {}
        self._fill = redis.register_script(_FILL)

    def key(self, work_id: str) -> str:
        return f"{self.prefix}work:{work_id}"

    def lease_key(self, work_id: str) -> str:
        return f"{self.prefix}lease:work:{work_id}"

    async def invalidate(self, *work_ids: str) -> None:
        """Delete the entries and void any fill in progress (call after the database write)."""
        if work_ids:
            await self.redis.delete(*[k for w in work_ids for k in (self.key(w), self.lease_key(w))])

    async def get_many(self, work_ids: Sequence[str], load: Loader) -> dict[str, catalog_pb2.Work]:
        """The works found (from the cache, else through `load`, which reads the database)."""
        ids = list(dict.fromkeys(work_ids))
        if not ids:
            return {}
        raw = await self.redis.mget([self.key(w) for w in ids])
        found = {w: catalog_pb2.Work.FromString(v) for w, v in zip(ids, raw, strict=True) if v is not None}
        missing = [w for w in ids if w not in found]
        self.metrics.record(len(found), len(missing))
        if missing:
            results = await asyncio.gather(*(self._one(w, load) for w in missing))
            found.update({w: r for w, r in zip(missing, results, strict=True) if r is not None})
        return found

    async def _one(self, work_id: str, load: Loader) -> catalog_pb2.Work | None:
        flight = self._flights.get(work_id)
        if flight is not None:  # the same process already loads it
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._flights[work_id] = flight
        try:
            result = await self._load_shared(work_id, load)
            flight.set_result(result)
            return result
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._flights.pop(work_id, None)

    async def _load_shared(self, work_id: str, load: Loader) -> catalog_pb2.Work | None:
        token = uuid.uuid4().hex
        if not await self.redis.set(self.lease_key(work_id), token, nx=True, px=int(self.lease * 1000)):
            # another process loads it: wait for its fill, bounded
            deadline = time.monotonic() + self.lease_wait
            delay = 0.005
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                value = await self.redis.get(self.key(work_id))
                if value is not None:
                    return catalog_pb2.Work.FromString(value)
                delay = min(delay * 2, 0.05)
            token = ""
        work = (await load([work_id])).get(work_id)
        if work is not None and token:
            ttl_ms = int(self.ttl * random.uniform(0.85, 1.15) * 1000)
            await self._fill(
                keys=[self.key(work_id), self.lease_key(work_id)],
                args=[token, work.SerializeToString(), ttl_ms],
            )
        elif token:
            await self.redis.delete(self.lease_key(work_id))
        return work
