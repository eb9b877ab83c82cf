"""What the gateway builds on: job-progress snapshots for a user (pub/sub), and a job's status.

    async for update in subscribe(redis_url, user_id):   # every gateway replica may subscribe
        await websocket.send_json(update)                # see the package docstring for the shape

Pub/sub delivers only what is published while subscribed: read `job_status` after subscribing to
show the state so far (and keep the higher `version` of the two).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from culture_notifier.jobs import snapshot
from culture_notifier.store import job_key, user_channel

log = logging.getLogger("culture_notifier.push")


async def subscribe(redis_url: str, user_id: str) -> AsyncIterator[dict[str, Any]]:
    """Yield the job-progress snapshots of `user_id`'s jobs as they change, until the caller stops.

    Each is a dict with at least job_id, step, state, job_state, version and the full `steps` list.
    A snapshot older than one already yielded for the same job (lower version) is skipped.
    """
    client = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    latest: dict[str, int] = {}
    try:
        await pubsub.subscribe(user_channel(user_id))
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            try:
                update = json.loads(item["data"])
            except (TypeError, ValueError):
                log.warning("ignoring a malformed update on %s", user_channel(user_id))
                continue
            job_id, version = update.get("job_id", ""), int(update.get("version", 0))
            if version <= latest.get(job_id, 0):
                continue  # overtaken by a newer snapshot of the same job
            latest[job_id] = version
            yield update
    finally:
        try:
            await pubsub.aclose()
        finally:
            await client.aclose()


async def job_status(redis_url: str, job_id: str) -> dict[str, Any] | None:
    """The job's current snapshot (same shape as the pushed ones), or None when unknown."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        fields = await client.hgetall(job_key(job_id))
    finally:
        await client.aclose()
    return snapshot(fields) if fields else None
