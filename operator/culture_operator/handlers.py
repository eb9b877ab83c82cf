"""Thin kopf handlers: one reconcile for create, update and resume; a timer that corrects drift.

Everything else lives in the pure modules and in `reconcile`; this module only wires kopf.
kopf's own bookkeeping goes into annotations under platform.culture.dev (the CRD's status schema
keeps no unknown fields).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from culture_operator import reconcile as rc
from culture_operator.kube import REQUEST_COUNTS, Kube
from culture_operator.spec import GROUP, PLURAL, VERSION

#: seconds between drift checks of each CulturePlatform (CULTURE_OPERATOR_DRIFT_SECONDS)
DRIFT_SECONDS = float(os.environ.get("CULTURE_OPERATOR_DRIFT_SECONDS", "30"))

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
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


async def _reconcile(body: kopf.Body, logger: logging.Logger) -> None:
    if body["metadata"].get("deletionTimestamp"):
        return  # being deleted: the garbage collector owns the children now
    uid = body["metadata"]["uid"]
    lock = _locks.setdefault(uid, asyncio.Lock())
    async with lock:  # the timer and a change handler never reconcile the same object at once
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
        "reconciled %s/%s: phase %s, %d API writes, %d reads",
        meta["namespace"],
        meta["name"],
        status.get("phase"),
        counts["writes"],
        counts["reads"],
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
