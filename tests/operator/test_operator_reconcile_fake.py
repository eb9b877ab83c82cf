"""The reconcile loop against an in-memory API (an extra to the e2e tests: fast, no server)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from culture_operator import builders as b
from culture_operator import reconcile as rc
from culture_operator.builders import child_key
from culture_operator.kube import KindInfo

pytestmark = pytest.mark.unit


class FakeKube:
    """Stores applied objects; counts writes like kube.Kube; no Strimzi CRDs unless asked."""

    def __init__(self, strimzi: bool = False) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.strimzi = strimzi
        self.writes = 0
        self.events: list[tuple[str, str, str]] = []
        self.status: dict[str, Any] = {}
        self._rv = itertools.count(1)

    def list_children(self, kind: KindInfo, namespace: str, platform: str) -> list[dict[str, Any]] | None:
        if kind.api_version.startswith("kafka.strimzi.io") and not self.strimzi:
            return None
        return [
            copy.deepcopy(o)
            for (v, k, _), o in self.objects.items()
            if (v, k) == (kind.api_version, kind.kind)
        ]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        obj = copy.deepcopy(manifest)
        old = self.objects.get(child_key(manifest))
        obj["metadata"]["uid"] = (old or {}).get("metadata", {}).get("uid") or f"u{next(self._rv)}"
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[child_key(manifest)] = obj
        return copy.deepcopy(obj)

    def delete(self, manifest: dict[str, Any]) -> None:
        self.writes += 1
        self.objects.pop(child_key(manifest))

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        stored = self.objects.get(("v1", "Secret", name))
        return copy.deepcopy(stored["data"]) if stored else ({"url": "x"} if name == "pg" else None)

    def collect_garbage(self, owner_uid: str) -> None:
        """What the API server's garbage collector does when the owner is deleted."""
        for key in [k for k, o in self.objects.items()
                    if any(r["uid"] == owner_uid for r in o["metadata"].get("ownerReferences") or [])]:
            del self.objects[key]

    def post_event(self, owner: Any, event_type: str, reason: str, message: str) -> None:
        self.writes += 1
        self.events.append((event_type, reason, message))

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes += 1
        self.status.update(status)


def body(spec: dict[str, Any], generation: int = 1, status: dict | None = None, uid: str = "cp-uid"
         ) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo", "namespace": "ns", "uid": uid, "generation": generation},
        "spec": spec,
        "status": status or {},
    }


async def test_second_reconcile_writes_nothing_and_passwords_are_kept() -> None:
    kube = FakeKube(strimzi=True)
    spec = {"kafka": {"mode": "strimzi"}}
    status = await rc.reconcile(kube, body(spec))  # type: ignore[arg-type]
    assert status["phase"] == "Progressing" and kube.objects
    secret = copy.deepcopy(kube.objects[("v1", "Secret", "demo-postgres-credentials")])
    signing = copy.deepcopy(kube.objects[("v1", "Secret", "demo-identity-signing-key")])
    first_writes = kube.writes
    await rc.reconcile(kube, body(spec, status=kube.status))  # type: ignore[arg-type]
    assert kube.writes == first_writes, "a no-op reconcile wrote"
    assert kube.objects[("v1", "Secret", "demo-postgres-credentials")]["data"] == secret["data"]
    # identity's generated signing key is kept too (tokens stay valid across reconciles)
    assert kube.objects[("v1", "Secret", "demo-identity-signing-key")]["data"] == signing["data"]
    key = b.SigningKey.from_secret_data(signing["data"])
    assert key is not None and key.key_id.startswith("op-")


async def test_spec_change_applies_one_child_and_prunes_disabled_service() -> None:
    kube = FakeKube(strimzi=True)
    await rc.reconcile(kube, body({}))  # type: ignore[arg-type]
    rvs = {k: o["metadata"]["resourceVersion"] for k, o in kube.objects.items()}
    await rc.reconcile(
        kube,
        body(
            {
                "services": {
                    "feed": {"api-read": {"replicas": 1, "resources": {}}},
                    "chat": {"enabled": False},
                    "notifier": {"enabled": False},
                }
            },
            2,
            kube.status,
        ),
    )  # type: ignore[arg-type]
    assert not [k for k in kube.objects if "-chat-" in k[2] or "-notifier-" in k[2]]
    changed = {k for k, o in kube.objects.items() if o["metadata"]["resourceVersion"] != rvs.get(k)}
    # the only pod that reads anything about the notifier is the gateway (its upstream): it alone rolls;
    # the databases chat and the notifier used no longer admit their pods
    assert changed == {("apps/v1", "Deployment", "demo-gateway-api"),
                       ("networking.k8s.io/v1", "NetworkPolicy", "demo-redis"),
                       ("networking.k8s.io/v1", "NetworkPolicy", "demo-cassandra")}
    assert any(r == "Pruned" for _, r, _ in kube.events)


async def test_strimzi_missing_and_topic_shrink() -> None:
    kube = FakeKube(strimzi=False)
    status = await rc.reconcile(kube, body({"kafka": {"mode": "strimzi"}}))  # type: ignore[arg-type]
    kafka = {c["type"]: c for c in status["conditions"]}["KafkaReady"]
    assert kafka["reason"] == "StrimziNotInstalled" and status["phase"] == "Failed"
    kube = FakeKube(strimzi=True)
    await rc.reconcile(kube, body({"kafka": {"topics": {"partitions": 6}}}))  # type: ignore[arg-type]
    status = await rc.reconcile(kube, body({"kafka": {"topics": {"partitions": 2}}}, 2, kube.status))  # type: ignore[arg-type]
    kafka = {c["type"]: c for c in status["conditions"]}["KafkaReady"]
    assert kafka["reason"] == "PartitionShrinkRefused"
    topic = kube.objects[("kafka.strimzi.io/v1", "KafkaTopic", "demo-feed.feed-created")]
    assert topic["spec"]["partitions"] == 6


@pytest.mark.parametrize("delete_claim", [False, True])
async def test_a_recreated_platform_finds_the_credentials_its_kept_volumes_need(delete_claim: bool) -> None:
    """Delete a CulturePlatform (the garbage collector takes what it owns) and create it again under
    the same name: with deleteClaim false the credentials stayed with the data volume, and the new
    platform adopts them and keeps the password; with deleteClaim true they went and a new one is made."""
    kube = FakeKube()
    spec = {"databases": {"postgres": {"mode": "managed", "deleteClaim": delete_claim}}}
    await rc.reconcile(kube, body(spec))  # type: ignore[arg-type]
    key = ("v1", "Secret", "demo-postgres-credentials")
    before = copy.deepcopy(kube.objects[key]["data"])
    kube.collect_garbage("cp-uid")
    assert (key in kube.objects) is not delete_claim
    await rc.reconcile(kube, body(spec, uid="cp-uid-2"))  # type: ignore[arg-type]
    assert (kube.objects[key]["data"]["password"] == before["password"]) is not delete_claim
    assert ("apps/v1", "StatefulSet", "demo-postgres") in kube.objects
    writes = kube.writes
    await rc.reconcile(kube, body(spec, status=kube.status, uid="cp-uid-2"))  # type: ignore[arg-type]
    assert kube.writes == writes, "the adopted credentials are rewritten on every reconcile"
