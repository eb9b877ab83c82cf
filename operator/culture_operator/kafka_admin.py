"""External Kafka mode: create topics and raise partition counts through the Kafka admin API.

Partitions are never lowered (Kafka cannot do it without losing data and key ordering); a lower
count in the spec is reported back as refused, and the status says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError

from culture_operator.builders import TopicWanted, plan_topics
from culture_operator.status import ExternalKafkaOutcome

CLIENT_ID = "culture-operator"


def _error_codes(response: object) -> list[tuple[str, int, str]]:
    """(topic, error_code, message) of a CreateTopics/CreatePartitions response, errors only."""
    out = []
    for entry in getattr(response, "topic_errors", None) or getattr(response, "topic_errors", []) or []:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 and isinstance(entry[2], str) else ""
        if code:
            out.append((name, code, message or ""))
    return out


async def existing_partitions(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    """topic -> partition count, for those of `names` that exist."""
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return {}
    described = await admin.describe_topics(sorted(present))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


async def sync_topics(
    bootstrap: Sequence[str], wanted: list[TopicWanted], request_seconds: float = 15.0
) -> ExternalKafkaOutcome:
    """Create missing topics, grow those with fewer partitions; report, never raise, for the status."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=list(bootstrap), client_id=CLIENT_ID, request_timeout_ms=int(request_seconds * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), request_seconds)
    except (KafkaError, TimeoutError, OSError) as exc:
        await admin.close()
        return ExternalKafkaOutcome(reachable=False, error=f"{type(exc).__name__}: {exc}")
    try:
        existing = await existing_partitions(admin, [t.name for t in wanted])
        plan = plan_topics(wanted, existing)
        errors: list[str] = []
        if plan.create:
            resp = await admin.create_topics(
                [
                    NewTopic(t.name, t.partitions, t.replicas, topic_configs=dict(t.config))
                    for t in plan.create
                ],
                timeout_ms=int(request_seconds * 1000),
            )
            # 36 = TOPIC_ALREADY_EXISTS: a concurrent reconcile won the race, which is fine
            errors += [f"create {n}: error {c} {m}".strip() for n, c, m in _error_codes(resp) if c != 36]
        if plan.grow:
            resp = await admin.create_partitions(
                {name: NewPartitions(total_count=n) for name, n in plan.grow.items()},
                timeout_ms=int(request_seconds * 1000),
            )
            errors += [f"grow {n}: error {c} {m}".strip() for n, c, m in _error_codes(resp)]
        return ExternalKafkaOutcome(
            reachable=True,
            error="; ".join(errors),
            created=tuple(t.name for t in plan.create),
            grown=dict(plan.grow),
            refused=dict(plan.refused),
            topics=len(wanted),
        )
    except (KafkaError, TimeoutError, OSError) as exc:
        return ExternalKafkaOutcome(reachable=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        await admin.close()
