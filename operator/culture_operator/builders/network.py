"""NetworkPolicies: the platform's pods accept only the connections the service graph needs.

- `<platform>-default-deny`: every pod the operator runs for this platform (services and managed
  databases) refuses all ingress, unless a policy below allows it.
- `<platform>-gateway-api`: the gateway is the edge: its HTTP port is open to every source.
- `<platform>-<service>-<role>` for each API role the gateway calls (GATEWAY_UPSTREAMS) or another
  service calls (spec.SERVICE_UPSTREAMS: the feed worker calls the graph's api-read): its gRPC port
  from the gateway's pods and those calling roles' pods only.
- `<platform>-<db>`: a managed database's port from the pods of the services that use it
  (SERVICE_DATABASES) only.
- `<platform>-metrics`: every service pod's metrics port from anywhere (Prometheus runs elsewhere).
- Kafka (mode strimzi): Strimzi writes the NetworkPolicies of its listeners itself; the listeners'
  `networkPolicyPeers` (strimzi.py, from `kafka_client_selector`) admit only the roles that consume or
  publish events (workers and relays).

Kubelet probes need no rule: NetworkPolicy implementations always admit traffic from the node a pod
runs on (the probes' source). Only ingress is restricted; egress stays open (DNS, external databases).
Pure: manifests out, no I/O.
"""

from __future__ import annotations

from typing import Any

from culture_operator.builders.databases import DATABASE_IMAGES
from culture_operator.builders.environment import GATEWAY_UPSTREAMS, HTTP_PORT, METRICS_PORT
from culture_operator.builders.names import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    MANAGER,
    Owner,
    _meta,
    selector_labels,
)
from culture_operator.spec import SERVICE_DATABASES, SERVICE_UPSTREAMS, CulturePlatformSpec

NETWORK_POLICY_API_VERSION = "networking.k8s.io/v1"


def _platform_pods(owner: Owner) -> dict[str, Any]:
    return {"matchLabels": {LABEL_MANAGED_BY: MANAGER, LABEL_INSTANCE: owner.name}}


def _policy(owner: Owner, name: str, pods: dict[str, Any], ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": NETWORK_POLICY_API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": _meta(owner, name, "network-policy", "network-policy"),
        "spec": {"podSelector": pods, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _port(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def _pods_of(owner: Owner, services: list[str]) -> dict[str, Any]:
    """The pods of these services (any role) of this platform."""
    return {"podSelector": {"matchLabels": {LABEL_INSTANCE: owner.name, LABEL_MANAGED_BY: MANAGER},
                            "matchExpressions": [{"key": LABEL_NAME, "operator": "In",
                                                  "values": sorted(services)}]}}


def build_network_policies(owner: Owner, spec: CulturePlatformSpec) -> list[dict[str, Any]]:
    """Default deny for the platform's pods, then each allowed connection of the service graph."""
    policies = [_policy(owner, f"{owner.name}-default-deny", _platform_pods(owner), [])]
    services = [s for s in SERVICE_DATABASES if spec.service_enabled(s)]
    callers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if spec.service_enabled("gateway"):
        policies.append(_policy(owner, f"{owner.name}-gateway-api",
                                {"matchLabels": selector_labels(owner, "gateway", "api")},
                                [{"ports": [_port(HTTP_PORT)]}]))
        for target in GATEWAY_UPSTREAMS.values():
            callers.setdefault(target, []).append(
                {"podSelector": {"matchLabels": selector_labels(owner, "gateway", "api")}})
    for caller, upstreams in SERVICE_UPSTREAMS.items():
        if spec.service_enabled(caller):
            for up in upstreams:
                callers.setdefault((up.service, up.role), []).extend(
                    {"podSelector": {"matchLabels": selector_labels(owner, caller, role)}}
                    for role in up.callers)
    for (service, role), peers in sorted(callers.items()):
        if spec.service_enabled(service):
            policies.append(_policy(owner, f"{owner.name}-{service}-{role}",
                                    {"matchLabels": selector_labels(owner, service, role)},
                                    [{"from": peers, "ports": [_port(spec.grpcPort)]}]))
    for db in spec.databases_in_use():
        if spec.database(db).mode != "managed":
            continue
        users = [s for s in services if db in SERVICE_DATABASES[s]]
        allowed = {"from": [_pods_of(owner, users)], "ports": [_port(DATABASE_IMAGES[db].port)]}
        policies.append(_policy(owner, f"{owner.name}-{db}",
                                {"matchLabels": selector_labels(owner, db, "database")}, [allowed]))
    policies.append(_policy(owner, f"{owner.name}-metrics",
                            {"matchLabels": {LABEL_INSTANCE: owner.name, LABEL_MANAGED_BY: MANAGER},
                             "matchExpressions": [{"key": LABEL_COMPONENT, "operator": "NotIn",
                                                   "values": ["database"]}]},
                            [{"ports": [_port(METRICS_PORT)]}]))
    return policies
