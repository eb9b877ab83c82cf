"""Pure status arithmetic: from the children's own status to the CulturePlatform's conditions.

Conditions follow Strimzi's shape: positive types, status "True"/"False"/"Unknown", a one-word
CamelCase reason, a message, and a lastTransitionTime that changes only when the status flips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

READY = "Ready"
KAFKA_READY = "KafkaReady"
DATABASES_READY = "DatabasesReady"
SERVICES_READY = "ServicesReady"
CONDITION_ORDER = (READY, KAFKA_READY, DATABASES_READY, SERVICES_READY)

#: reasons that need a human: the phase becomes Failed instead of Progressing
FAILURE_REASONS = frozenset(
    {
        "PartitionShrinkRefused",
        "KafkaUnreachable",
        "StrimziNotInstalled",
        "ApplyFailed",
        "SecretMissing",
        "KafkaFailed",
        "InvalidSpec",
    }
)


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one aspect: ok or not, with a reason and a message."""

    ok: bool
    reason: str
    message: str
    unknown: bool = False

    @property
    def status(self) -> str:
        """The condition status string."""
        if self.unknown:
            return "Unknown"
        return "True" if self.ok else "False"


def _conditions_of(obj: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in conds}


def _names(items: Iterable[str], limit: int = 5) -> str:
    items = sorted(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# -- Kafka ---------------------------------------------------------------------------------------------


def check_strimzi(
    kafka: Mapping[str, Any] | None,
    topics: Mapping[str, Mapping[str, Any] | None],
    strimzi_installed: bool = True,
) -> Check:
    """KafkaReady in strimzi mode: the Kafka's Ready condition, then every KafkaTopic's."""
    if not strimzi_installed:
        return Check(
            False,
            "StrimziNotInstalled",
            "the kafka.strimzi.io/v1 CRDs are not served: install Strimzi 1.2 or use kafka.mode external",
        )
    if kafka is None:
        return Check(False, "KafkaPending", "the Kafka resource does not exist yet")
    ready = _conditions_of(kafka).get("Ready")
    if ready is None:
        return Check(False, "KafkaPending", "Strimzi has not reported on the Kafka yet")
    if ready.get("status") != "True":
        return Check(
            False, "KafkaNotReady", f"Kafka: {ready.get('message') or ready.get('reason') or 'not ready'}"
        )
    waiting = [
        name for name, t in topics.items() if _conditions_of(t).get("Ready", {}).get("status") != "True"
    ]
    if waiting:
        return Check(False, "TopicsNotReady", f"{len(waiting)} KafkaTopic(s) not ready: {_names(waiting)}")
    return Check(True, "KafkaReady", f"Kafka and {len(topics)} topics are ready")


@dataclasses.dataclass(frozen=True)
class ExternalKafkaOutcome:
    """What the admin-API sync against an external Kafka did."""

    reachable: bool
    error: str = ""
    created: tuple[str, ...] = ()
    grown: Mapping[str, int] = dataclasses.field(default_factory=dict)
    refused: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    topics: int = 0


def check_external(outcome: ExternalKafkaOutcome) -> Check:
    """KafkaReady in external mode."""
    if not outcome.reachable:
        return Check(False, "KafkaUnreachable", f"cannot reach the external Kafka: {outcome.error}")
    if outcome.refused:
        detail = "; ".join(
            f"{t} has {have} partitions, spec asks {want}"
            for t, (have, want) in sorted(outcome.refused.items())
        )
        return Check(
            False,
            "PartitionShrinkRefused",
            f"Kafka cannot reduce a topic's partitions; raise the spec back or recreate the topic: {detail}",
        )
    if outcome.error:
        return Check(False, "TopicsFailed", outcome.error)
    return Check(True, "TopicsReady", f"{outcome.topics} topics exist with the requested partitions")


# -- databases and services ------------------------------------------------------------------------------


def check_databases(
    managed: Mapping[str, Mapping[str, Any] | None],
    external_secrets: Mapping[str, bool],
) -> Check:
    """DatabasesReady: every managed StatefulSet ready, every external connection Secret present.

    `managed` maps database -> its live StatefulSet (None if missing); `external_secrets` maps
    database -> whether its Secret exists.
    """
    missing = [db for db, present in external_secrets.items() if not present]
    if missing:
        return Check(
            False, "SecretMissing", f"connection Secret missing for external database(s): {_names(missing)}"
        )
    waiting = [db for db, sts in managed.items() if not statefulset_ready(sts)]
    if waiting:
        return Check(False, "DatabasesNotReady", f"waiting for database(s): {_names(waiting)}")
    n = len(managed) + len(external_secrets)
    return Check(True, "DatabasesReady", f"{n} database(s) ready" if n else "no database in use")


def statefulset_ready(sts: Mapping[str, Any] | None) -> bool:
    """A StatefulSet's controller has seen its spec and every replica is ready."""
    if sts is None:
        return False
    want = (sts.get("spec") or {}).get("replicas", 1)
    st = sts.get("status") or {}
    return (
        st.get("observedGeneration", 0) >= sts["metadata"].get("generation", 0)
        and st.get("readyReplicas", 0) >= want
    )


def deployment_ready(dep: Mapping[str, Any] | None) -> bool:
    """A Deployment's controller has seen its spec and all wanted replicas are updated and ready."""
    if dep is None:
        return False
    want = (dep.get("spec") or {}).get("replicas", 1)
    st = dep.get("status") or {}
    if st.get("observedGeneration", 0) < dep["metadata"].get("generation", 0):
        return False
    return st.get("readyReplicas", 0) >= want and st.get("updatedReplicas", 0) >= want


def check_services(deployments: Mapping[str, Mapping[str, Any] | None]) -> Check:
    """ServicesReady: every wanted Deployment (name -> live object or None) ready."""
    waiting = [name for name, dep in deployments.items() if not deployment_ready(dep)]
    if waiting:
        return Check(
            False,
            "DeploymentsNotReady",
            f"{len(waiting)} of {len(deployments)} Deployments not ready: {_names(waiting)}",
        )
    return Check(True, "DeploymentsReady", f"{len(deployments)} Deployments ready")


# -- the whole status ------------------------------------------------------------------------------------


def overall(checks: Mapping[str, Check], apply_errors: Sequence[str] = ()) -> Check:
    """Ready: True when every child was applied and every other condition is True; else why not
    (children the API server refused first: what runs is then not what the spec asks for)."""
    if apply_errors:
        return Check(False, "ApplyFailed", ("; ".join(apply_errors))[:1000])
    for ctype in (KAFKA_READY, DATABASES_READY, SERVICES_READY):
        c = checks[ctype]
        if not c.ok:
            return Check(False, c.reason, f"{ctype}: {c.message}", unknown=c.unknown)
    return Check(True, "AllReady", "Kafka, databases and services are ready")


def phase(checks: Mapping[str, Check]) -> str:
    """Ready, Failed (a human must act), or Progressing."""
    if checks[READY].ok:
        return "Ready"
    if any(c.reason in FAILURE_REASONS for c in checks.values()):
        return "Failed"
    return "Progressing"


def merge_condition(
    previous: Mapping[str, Any] | None, ctype: str, check: Check, now: str, generation: int
) -> dict[str, Any]:
    """The new condition; lastTransitionTime is kept unless the status flipped."""
    ltt = now
    if previous and previous.get("status") == check.status and previous.get("lastTransitionTime"):
        ltt = previous["lastTransitionTime"]
    return {
        "type": ctype,
        "status": check.status,
        "reason": check.reason,
        "message": check.message,
        "lastTransitionTime": ltt,
        "observedGeneration": generation,
    }


def compute_status(
    previous: Mapping[str, Any] | None,
    generation: int,
    kafka: Check,
    databases: Check,
    services: Check,
    now: str,
    extra: Mapping[str, Any] | None = None,
    apply_errors: Sequence[str] = (),
) -> dict[str, Any]:
    """The complete new status of a CulturePlatform.

    `apply_errors`: children the API server refused. Ready is then False (ApplyFailed, with the
    server's messages) and `observedGeneration` stays where it was: it advances only once a
    generation was applied in full."""
    checks = {KAFKA_READY: kafka, DATABASES_READY: databases, SERVICES_READY: services}
    checks[READY] = overall(checks, apply_errors)
    prev_conds = {c.get("type"): c for c in ((previous or {}).get("conditions") or [])}
    if apply_errors:
        generation = int((previous or {}).get("observedGeneration") or 0)
    return {
        "observedGeneration": generation,
        "phase": phase(checks),
        **(extra or {}),
        "conditions": [
            merge_condition(prev_conds.get(t), t, checks[t], now, generation) for t in CONDITION_ORDER
        ],
    }


def status_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level status fields that differ (empty: nothing to write)."""
    old = old or {}
    return {k: v for k, v in new.items() if old.get(k) != v}


def flipped(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conditions whose status or reason changed: worth a Kubernetes Event each."""
    before = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}
    out = []
    for c in new.get("conditions", []):
        b = before.get(c["type"])
        if b is None or b.get("status") != c["status"] or b.get("reason") != c["reason"]:
            out.append(c)
    return out
