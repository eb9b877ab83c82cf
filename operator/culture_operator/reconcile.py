"""One level-based reconcile of a CulturePlatform: build, compare, apply, prune, report.

Glue between the pure parts (spec, builders, compare, status) and the I/O (kube, kafka_admin). No kopf
import: the handlers translate `RetryLater` into kopf's TemporaryError.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import dataclasses
import datetime
import logging
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pydantic

from culture_operator import builders as b
from culture_operator import status as st
from culture_operator.compare import needs_apply, stamp
from culture_operator.kafka_admin import sync_topics
from culture_operator.kube import APPLY_WORKERS, CHILD_KINDS, KINDS_BY_KEY, Kube, KubeError
from culture_operator.spec import CulturePlatformSpec, parse_spec

log = logging.getLogger("culture_operator")


class RetryLater(Exception):
    """The reconcile could not finish; try again after `delay` seconds."""

    def __init__(self, message: str, delay: float = 10.0) -> None:
        super().__init__(message)
        self.delay = delay


@dataclasses.dataclass
class ChildSync:
    """What syncing the children found and did."""

    live: dict[tuple[str, str, str], dict[str, Any]]
    desired: list[dict[str, Any]]
    applied: list[str] = dataclasses.field(default_factory=list)
    pruned: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    strimzi_served: bool = True
    shrink_refused: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)


#: uid -> the status this process last wrote: newer than a watch cache that has not caught up yet
#: (only the operator writes the status), so a timer tick right after a write does not write it again.
_written: dict[str, dict[str, Any]] = {}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(m: Mapping[str, Any]) -> str:
    return f"{m['kind']}/{m['metadata']['name']}"


def _credentials_keys(spec: CulturePlatformSpec, owner: b.Owner) -> set[tuple[str, str, str]]:
    """The credentials Secrets of this platform's managed databases (named by platform and database)."""
    return {("v1", "Secret", b.credentials_secret_name(owner, db)) for db in b.managed_databases(spec)}


def _kept_secret_data(kube: Kube, owner: b.Owner, live: Mapping[tuple[str, str, str], Any],
                      name: str) -> dict[str, str] | None:
    """The data of a Secret the operator keeps across reconciles: from the live listing, else read (the
    listing may carry a Secret without its data, or not list it: one left by a deleted platform)."""
    return (live.get(("v1", "Secret", name)) or {}).get("data") or kube.secret_data(owner.namespace, name)


def _passwords(
    kube: Kube, spec: CulturePlatformSpec, owner: b.Owner, live: Mapping[tuple[str, str, str], Any]
) -> dict[str, str]:
    """Keep each managed database's existing password (also one a deleted CulturePlatform of this name
    left behind with its data volume, see deleteClaim); generate one for a new database."""
    out = {}
    for db in b.managed_databases(spec):
        name = b.credentials_secret_name(owner, db)
        data = _kept_secret_data(kube, owner, live, name)
        encoded = (data or {}).get("password")
        out[db] = base64.b64decode(encoded).decode() if encoded else secrets.token_urlsafe(24)
    return out


def _signing_key(
    kube: Kube, spec: CulturePlatformSpec, owner: b.Owner, live: Mapping[tuple[str, str, str], Any]
) -> b.SigningKey | None:
    """Keep identity's signing key (ours, or a Secret of that name made before); generate one if absent."""
    if not spec.service_enabled("identity"):
        return None
    name = b.signing_key_secret_name(owner)
    # the live listing may carry a Secret without its data: then read it, never mint a new key
    # (a new key on every reconcile would rotate the signing key and rewrite the Secret each time)
    data = _kept_secret_data(kube, owner, live, name)
    return b.SigningKey.from_secret_data(data) or b.SigningKey.from_seed(secrets.token_bytes(32))


def _client_address_key(
    kube: Kube, spec: CulturePlatformSpec, owner: b.Owner, live: Mapping[tuple[str, str, str], Any]
) -> str | None:
    """Keep the client-address HMAC key (the gateway's and identity's); generate one if absent."""
    if not any(spec.service_enabled(s) for s in b.CLIENT_ADDRESS_SERVICES):
        return None
    name = b.client_address_secret_name(owner)
    data = _kept_secret_data(kube, owner, live, name)
    encoded = (data or {}).get(b.CLIENT_ADDRESS_KEY)
    return base64.b64decode(encoded).decode() if encoded else secrets.token_urlsafe(32)


def _keep_partitions(
    desired: list[dict[str, Any]], live: Mapping[tuple[str, str, str], Any]
) -> dict[str, tuple[int, int]]:
    """Never lower a KafkaTopic's partitions: keep the live count in the manifest, report the topic."""
    refused = {}
    for m in desired:
        if m["kind"] != "KafkaTopic":
            continue
        have = ((live.get(b.child_key(m)) or {}).get("spec") or {}).get("partitions")
        if isinstance(have, int) and have > m["spec"]["partitions"]:
            refused[m["spec"]["topicName"]] = (have, m["spec"]["partitions"])
            m["spec"]["partitions"] = have
    return refused


#: the process-wide pool the API requests of every reconcile run in: concurrent lists and applies, bounded
#: (APPLY_WORKERS) for all platforms together, so 50 platforms at once do not pile 50 x 8 requests on the
#: API server; created on first use
_pool: ThreadPoolExecutor | None = None


def _requests_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=APPLY_WORKERS, thread_name_prefix="culture-operator-api")
    return _pool


def sync_children(kube: Kube, owner: b.Owner, spec: CulturePlatformSpec) -> ChildSync:
    """List the children, apply those missing or drifted, delete those the spec no longer asks for."""
    live: dict[tuple[str, str, str], dict[str, Any]] = {}
    served: dict[tuple[str, str], bool] = {}
    pool = _requests_pool()
    # each task runs in a copy of this context, so the per-reconcile request counters see its requests
    context = contextvars.copy_context()
    # one list per kind, all at once (a no-op reconcile is these lists only)
    listed = pool.map(
        lambda kind: context.copy().run(kube.list_children, kind, owner.namespace, owner.name), CHILD_KINDS
    )
    # credentials kept without an owner (deleteClaim false) belong to whichever platform has their name
    credentials = _credentials_keys(spec, owner)
    for kind, items in zip(CHILD_KINDS, listed, strict=True):
        served[(kind.api_version, kind.kind)] = items is not None
        for item in items or []:
            refs = item["metadata"].get("ownerReferences") or []
            # labels can be copied; the owner uid cannot
            ours = any(r.get("uid") == owner.uid for r in refs)
            if ours or (not refs and b.child_key(item) in credentials):
                live[b.child_key(item)] = item
    desired = b.build_children(
        owner, spec, _passwords(kube, spec, owner, live), _signing_key(kube, spec, owner, live),
        _client_address_key(kube, spec, owner, live),
    )
    result = ChildSync(live=live, desired=desired)
    result.strimzi_served = served[(b.STRIMZI_API_VERSION, "Kafka")]
    result.shrink_refused = _keep_partitions(desired, live)
    desired = [stamp(m) for m in desired]
    result.desired = desired
    todo = [
        m
        for m in desired
        if served[(m["apiVersion"], m["kind"])] and needs_apply(m, live.get(b.child_key(m)))
    ]

    def apply_one(m: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
        try:
            return m, kube.apply(m), ""
        except KubeError as exc:
            return m, None, exc.message

    # children do not depend on each other at apply time (references resolve later), so apply in parallel
    for m, obj, error in pool.map(lambda m: context.copy().run(apply_one, m), todo):
        if obj is None:
            result.errors.append(f"{_label(m)}: {error}")
        else:
            live[b.child_key(m)] = obj
            result.applied.append(_label(m))
    wanted = {b.child_key(m) for m in desired}
    order = {(k.api_version, k.kind): i for i, k in enumerate(CHILD_KINDS)}
    stale = sorted((k for k in live if k not in wanted), key=lambda k: -order[(k[0], k[1])])
    for key in stale:
        try:
            kube.delete(live.pop(key))
            result.pruned.append(f"{key[1]}/{key[2]}")
        except KubeError as exc:
            result.errors.append(f"delete {key[1]}/{key[2]}: {exc.message}")
    return result


def _checks(
    kube: Kube,
    owner: b.Owner,
    spec: CulturePlatformSpec,
    sync: ChildSync,
    kafka_outcome: st.ExternalKafkaOutcome | None,
) -> tuple[st.Check, st.Check, st.Check]:
    live = sync.live
    by_kind: dict[str, dict[str, Any]] = {}
    for m in sync.desired:
        by_kind.setdefault(m["kind"], {})[m["metadata"]["name"]] = live.get(b.child_key(m))
    if spec.kafka.mode == "external":
        assert kafka_outcome is not None
        kafka = st.check_external(kafka_outcome)
    elif sync.shrink_refused:
        kafka = st.check_external(st.ExternalKafkaOutcome(reachable=True, refused=sync.shrink_refused))
    else:
        kafka_obj = next(iter(by_kind.get("Kafka", {}).values()), None)
        kafka = st.check_strimzi(kafka_obj, by_kind.get("KafkaTopic", {}), sync.strimzi_served)
    managed = {
        db: live.get(("apps/v1", "StatefulSet", b.database_name(owner, db)))
        for db in b.managed_databases(spec)
    }
    external = {
        db: kube.secret_data(owner.namespace, b.database_secret_name(owner, spec, db)) is not None
        for db in spec.databases_in_use()
        if spec.database(db).mode == "external"
    }
    databases = st.check_databases(managed, external)
    services = st.check_services(by_kind.get("Deployment", {}))
    return kafka, databases, services


async def reconcile(kube: Kube, body: Mapping[str, Any]) -> dict[str, Any]:
    """Bring one CulturePlatform's children in line with its spec and write its status.

    Returns the new status. Raises RetryLater when something must be tried again.
    """
    meta = body["metadata"]
    owner = b.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
    generation = int(meta.get("generation") or 0)
    old_status = _written.get(owner.uid) or body.get("status") or {}
    try:
        spec = parse_spec(body.get("spec"))
        b.check_name(owner, spec)
    except (pydantic.ValidationError, ValueError) as exc:
        # the CRD's schema should have refused it (an object stored before a rule existed may not
        # have been): say so instead of guessing
        bad = st.Check(False, "InvalidSpec", str(exc).replace("\n", " ")[:500])
        new = st.compute_status(old_status, generation, bad, bad, bad, _now())
        await _write_status(kube, body, old_status, new)
        return new

    try:
        sync = await asyncio.to_thread(sync_children, kube, owner, spec)
    except KubeError as exc:
        await _post_event(kube, body, "Warning", "ListFailed", str(exc))
        raise RetryLater(f"cannot read the children: {exc}", delay=5) from exc

    kafka_outcome = None
    if spec.kafka.mode == "external":
        kafka_outcome = await sync_topics(spec.kafka.bootstrapServers, b.wanted_topics(spec))

    checks = await asyncio.to_thread(_checks, kube, owner, spec, sync, kafka_outcome)
    extra = {"kafkaBootstrapServers": b.kafka_bootstrap(owner, spec), "children": len(sync.live)}
    new = st.compute_status(old_status, generation, *checks, now=_now(), extra=extra,
                            apply_errors=sync.errors)

    events: list[tuple[str, str, str]] = []
    if sync.applied:
        events.append(
            ("Normal", "Applied", f"applied {len(sync.applied)} child(ren): " + ", ".join(sync.applied))
        )
    if sync.pruned:
        events.append(
            ("Normal", "Pruned", "deleted children the spec no longer asks for: " + ", ".join(sync.pruned))
        )
    if kafka_outcome and kafka_outcome.created:
        events.append(("Normal", "TopicsCreated", "created topics: " + ", ".join(kafka_outcome.created)))
    if kafka_outcome and kafka_outcome.grown:
        events.append(
            (
                "Normal",
                "PartitionsIncreased",
                ", ".join(f"{t} -> {n}" for t, n in kafka_outcome.grown.items()),
            )
        )
    for c in st.flipped(old_status, new):
        if c["reason"] == "ApplyFailed":
            continue  # the ApplyFailed event below says it once, with every refusal
        kind = "Normal" if c["status"] == "True" else "Warning"
        events.append((kind, c["reason"], f"{c['type']}={c['status']}: {c['message']}"))
    if sync.errors:
        log.warning("%s/%s: %d child(ren) refused by the API server", owner.namespace, owner.name,
                    len(sync.errors))
        events.append(("Warning", "ApplyFailed", "; ".join(sync.errors)))
    await asyncio.gather(*(_post_event(kube, body, *event) for event in events))  # independent: at once
    await _write_status(kube, body, old_status, new)
    if sync.errors:
        raise RetryLater("some children could not be applied: " + "; ".join(sync.errors), delay=10)
    return new


async def _post_event(kube: Kube, body: Mapping[str, Any], event_type: str, reason: str,
                      message: str) -> None:
    """Post (or count) an Event; a failure to do so is logged and never aborts the reconcile."""
    try:
        await asyncio.to_thread(kube.post_event, body, event_type, reason, message)
    except Exception as exc:  # noqa: BLE001 - an Event is a courtesy; the status is what counts
        log.warning("could not post the %s event for %s: %s", reason, body["metadata"].get("name"), exc)


async def _write_status(
    kube: Kube, body: Mapping[str, Any], old: Mapping[str, Any], new: dict[str, Any]
) -> None:
    changes = st.status_changes(old, new)
    if changes:  # no write when nothing changed: a no-op reconcile costs reads only
        meta = body["metadata"]
        await asyncio.to_thread(kube.patch_status, meta["namespace"], meta["name"], changes)
        _written[meta["uid"]] = new


def forget(uid: str) -> None:
    """Drop what is remembered about a deleted CulturePlatform."""
    _written.pop(uid, None)


__all__ = ["KINDS_BY_KEY", "RetryLater", "reconcile", "sync_children"]
