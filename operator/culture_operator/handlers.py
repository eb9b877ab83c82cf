"""Thin kopf handlers: one reconcile for create, update and resume; a timer that corrects drift.

Everything else lives in the pure modules and in `reconcile`; this module only wires kopf.
kopf's own bookkeeping goes into annotations under platform.culture.dev (the CRD's status schema
keeps no unknown fields).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from culture_operator import reconcile as rc
from culture_operator.kube import REQUEST_COUNTS, Kube
from culture_operator.spec import GROUP, PLURAL, VERSION

#: seconds between drift checks of each CulturePlatform (CULTURE_OPERATOR_DRIFT_SECONDS)
DRIFT_SECONDS = float(os.environ.get("CULTURE_OPERATOR_DRIFT_SECONDS", "30"))

#: seconds a replica counts as alive after its last peering keep-alive (`--peering-lifetime`)
PEERING_LIFETIME = 30

_kube: Kube | None = None
_locks: dict[str, asyncio.Lock] = {}


def kube() -> Kube:
    """The process-wide API access (created on first use, after kopf has logged in)."""
    global _kube
    if _kube is None:
        _kube = Kube()
    return _kube


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's progress in our annotations, post only warnings as Events, name the finalizer."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # our own Events say what happened; kopf's per-handler "succeeded" ones would be noise
    settings.posting.level = logging.WARNING
    # a deleted object's timer must stop quickly, or kopf's finalizer holds the deletion (default: 60 s polls)
    settings.background.instant_exit_timeout = 5.0
    settings.background.cancellation_polling = 2.0
    # a standby resumes at most this long after the active replica stopped renewing its peering entry
    settings.peering.lifetime = PEERING_LIFETIME
    # kopf waits this long for more events of an object before handling it (default 0.1 s), twice on a
    # create (the finalizer, then the handler); the reconcile is level-based, so a short wait is enough
    settings.batching.batch_window = 0.02
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


#: threads of the event loop's default executor (asyncio.to_thread): each platform's reconcile holds one
#: while it waits for its API requests (bounded by the shared pool in `reconcile`), so the default of
#: cores + 4 (6 here) made the status and Events of a finished platform queue behind the syncs of others
LOOP_THREADS = 64


@kopf.on.startup()
async def widen_loop_executor(**_: Any) -> None:
    """Give asyncio.to_thread enough threads that waiting reconciles never block short calls."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=LOOP_THREADS, thread_name_prefix="culture-operator")
    )


async def _reconcile(body: kopf.Body, logger: logging.Logger) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return  # being deleted: the garbage collector owns the children now
    uid = body["metadata"]["uid"]
    lock = _locks.setdefault(uid, asyncio.Lock())
    async with lock:  # the timer and a change handler never reconcile the same object at once
        started, t0 = time.time(), time.monotonic()
        counts = {"reads": 0, "writes": 0}
        token = REQUEST_COUNTS.set(counts)
        try:
            status = await rc.reconcile(kube(), body)
        except rc.RetryLater as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        finally:
            REQUEST_COUNTS.reset(token)
    # the benchmark reads this line: a no-op reconcile must show 0 writes
    meta = body["metadata"]
    logger.info(
        "reconciled %s/%s: phase %s, %d API writes, %d reads, started %.3f, took %.3f s",
        meta["namespace"],
        meta["name"],
        status.get("phase"),
        counts["writes"],
        counts["reads"],
        started,
        time.monotonic() - t0,
    )


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile(body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
    """Level-based: whatever changed, make the children match the spec and recompute the status."""
    await _reconcile(body, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_SECONDS, initial_delay=DRIFT_SECONDS)
async def correct_drift(body: kopf.Body, logger: logging.Logger, **_: Any) -> None:
    """Re-run the reconcile: recreate deleted children, undo hand edits, follow the children's status."""
    await _reconcile(body, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(body: kopf.Body, **_: Any) -> None:
    """The garbage collector deletes the children (ownerReferences); only forget in-memory state."""
    uid = body["metadata"]["uid"]
    _locks.pop(uid, None)
    rc.forget(uid)
