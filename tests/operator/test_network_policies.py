"""The operator's NetworkPolicies, judged on the built manifests: a small evaluator of the
NetworkPolicy semantics (pod selectors with matchLabels and matchExpressions, ports, default deny)
says which pod may open which port on which other pod. No servers: these are the builders' output.

Enforcement on a node needs a network plugin that implements NetworkPolicy; the local cluster's
node has none (see docs/operator.md, "Network isolation"), so there is no e2e test of it here."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from culture_operator import builders as b
from culture_operator.spec import parse_spec

pytestmark = pytest.mark.unit

OWNER = b.Owner(name="demo", namespace="ns1", uid="uid-1")
SPEC = parse_spec({"kafka": {"mode": "strimzi"}})
CHILDREN = b.build_children(OWNER, SPEC, {db: "pw" for db in b.managed_databases(SPEC)})
POLICIES = [c for c in CHILDREN if c["kind"] == "NetworkPolicy"]
GRPC, HTTP, METRICS = SPEC.grpcPort, b.HTTP_PORT, 9102


def _pods() -> dict[str, dict[str, str]]:
    """Pod labels of every Deployment and StatefulSet, by workload name."""
    return {c["metadata"]["name"]: c["spec"]["template"]["metadata"]["labels"]
            for c in CHILDREN if c["kind"] in ("Deployment", "StatefulSet")}


PODS = _pods()


def _selects(selector: dict[str, Any], pod: dict[str, str]) -> bool:
    if any(pod.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value = pod.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return True


def allowed(source: str, target: str, port: int) -> bool:
    """Whether pod `source` may connect to `port` of pod `target` (same namespace)."""
    src, dst = PODS[source], PODS[target]
    selecting = [p for p in POLICIES if _selects(p["spec"]["podSelector"], dst)]
    if not selecting:
        return True  # no policy selects the pod: everything is allowed
    for policy in selecting:
        for rule in policy["spec"]["ingress"]:
            peers = rule.get("from")
            if peers is not None and not any(_selects(peer["podSelector"], src) for peer in peers):
                continue
            if rule.get("ports") is None or any(p["port"] == port for p in rule["ports"]):
                return True
    return False


def test_the_manifests_are_valid_network_policies() -> None:
    assert POLICIES
    for policy in POLICIES:
        kubernetes_validate.validate(policy, "1.34.0", strict=True)
        assert policy["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


def test_every_pod_of_the_platform_is_denied_by_default() -> None:
    (deny,) = [p for p in POLICIES if p["metadata"]["name"] == "demo-default-deny"]
    assert deny["spec"]["ingress"] == [] and deny["spec"]["policyTypes"] == ["Ingress"]
    assert all(_selects(deny["spec"]["podSelector"], labels) for labels in PODS.values())


@pytest.mark.parametrize(("source", "target", "port", "ok"), [
    # the gateway reaches the API roles it calls over gRPC; nobody else does
    ("demo-gateway-api", "demo-identity-api-write", GRPC, True),
    ("demo-gateway-api", "demo-identity-api-read", GRPC, True),
    ("demo-gateway-api", "demo-catalog-api-write", GRPC, True),
    ("demo-gateway-api", "demo-notifier-api-read", GRPC, True),
    ("demo-catalog-worker", "demo-identity-api-write", GRPC, False),
    ("demo-mailer-worker", "demo-identity-api-read", GRPC, False),
    ("demo-identity-api-read", "demo-catalog-api-write", GRPC, False),
    ("demo-gateway-api", "demo-identity-relay", GRPC, False),  # not an upstream
    # the feed worker calls the graph's api-read (spec.SERVICE_UPSTREAMS); the feed's api-read does not
    ("demo-feed-worker", "demo-graph-api-read", GRPC, True),
    ("demo-gateway-api", "demo-graph-api-read", GRPC, True),
    ("demo-feed-api-read", "demo-graph-api-read", GRPC, False),
    ("demo-feed-worker", "demo-graph-api-write", GRPC, False),
    # each database admits the services that use it, on its port only
    ("demo-identity-relay", "demo-postgres", 5432, True),
    ("demo-identity-api-write", "demo-postgres", 5432, True),
    ("demo-chat-relay", "demo-cassandra", 9042, True),  # the chat relay reads the Cassandra outbox
    ("demo-catalog-worker", "demo-postgres", 5432, False),
    ("demo-gateway-api", "demo-postgres", 5432, False),
    ("demo-catalog-api-read", "demo-mongo", 27017, True),
    ("demo-notifier-worker", "demo-mongo", 27017, False),
    ("demo-notifier-worker", "demo-redis", 6379, True),
    ("demo-identity-api-write", "demo-postgres", 22, False),
    # the edge and the metrics are open
    ("demo-mailer-worker", "demo-gateway-api", HTTP, True),
    ("demo-mailer-worker", "demo-catalog-worker", METRICS, True),
    ("demo-mailer-worker", "demo-catalog-worker", GRPC, False),
])
def test_the_service_graph_is_what_may_connect(source: str, target: str, port: int, ok: bool) -> None:
    assert allowed(source, target, port) is ok


def test_only_workers_and_relays_reach_the_kafka_listeners() -> None:
    (kafka,) = [c for c in CHILDREN if c["kind"] == "Kafka"]
    for listener in kafka["spec"]["kafka"]["listeners"]:
        (peer,) = listener["networkPolicyPeers"]
        may = {name for name, labels in PODS.items() if _selects(peer["podSelector"], labels)}
        assert may == {name for name in PODS if name.endswith(("-worker", "-relay"))}, listener["name"]
        # chat publishes chat.message-sent through its own relay: its api-write needs no Kafka
        assert "demo-chat-relay" in may and "demo-chat-api-write" not in may


def test_a_called_role_admits_its_service_callers_without_the_gateway() -> None:
    spec = parse_spec({"services": {"gateway": {"enabled": False}}})
    policies = {c["metadata"]["name"]: c for c in b.build_network_policies(OWNER, spec)}
    assert "demo-identity-api-write" not in policies  # only the gateway calls it
    (rule,) = policies["demo-graph-api-read"]["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": b.selector_labels(OWNER, "feed", "worker")}}]


def test_a_disabled_service_loses_its_rules() -> None:
    spec = parse_spec({"services": {"catalog": {"enabled": False}}})
    policies = {c["metadata"]["name"]: c for c in b.build_network_policies(OWNER, spec)}
    assert "demo-catalog-api-write" not in policies and "demo-identity-api-write" in policies
    redis = str(policies["demo-redis"]["spec"]["ingress"])
    assert "catalog" not in redis and "identity" in redis
