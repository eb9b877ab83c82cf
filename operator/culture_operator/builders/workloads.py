"""The services' workloads: one Deployment per role (`culture serve SERVICE --role ROLE`), a Service in
front of each api role, a PodDisruptionBudget for multi-replica roles."""

from __future__ import annotations

from typing import Any

from culture_operator.builders.environment import HTTP_PORT, METRICS_PORT, WIRING_HASH, service_env_vars
from culture_operator.builders.names import (
    Owner,
    _meta,
    deployment_name,
    labels,
    selector_labels,
    wiring_name,
)
from culture_operator.builders.pods import APP_UID, _container_security, _placement, _pod_security, _resources
from culture_operator.spec import CulturePlatformSpec


def _grpc_probe(port: int, period: int, delay: int) -> dict[str, Any]:
    return {
        "grpc": {"port": port},
        "periodSeconds": period,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _http_probe(path: str, period: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def build_deployment(
    owner: Owner, spec: CulturePlatformSpec, service: str, role: str, wiring_digest: str
) -> dict[str, Any]:
    """The Deployment of one role: `culture serve SERVICE --role ROLE`, hardened, with probes.

    gRPC roles are probed through the standard gRPC health service; the gateway (HTTP) through
    `/healthz` (ready only while its upstreams are SERVING) and, for liveness, its open port.
    """
    rs = spec.role(service, role)
    name = deployment_name(owner, service, role)
    lbl = labels(owner, service, role)
    selector = selector_labels(owner, service, role)
    if service == "gateway":
        ports = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
        readiness = _http_probe("/healthz", period=5, delay=2)
        liveness = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "initialDelaySeconds": 0,
                    "timeoutSeconds": 2, "failureThreshold": 3}
    else:
        ports = [{"name": "grpc", "containerPort": spec.grpcPort, "protocol": "TCP"}]
        readiness = _grpc_probe(spec.grpcPort, period=5, delay=2)
        liveness = _grpc_probe(spec.grpcPort, period=10, delay=0)
    ports.append({"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})
    env: list[dict[str, Any]] = [
        # uid 10001 has no passwd entry: HOME would be /, on the read-only root filesystem
        {"name": "HOME", "value": "/tmp"},
        *service_env_vars(owner, spec, service, role),
    ]
    container: dict[str, Any] = {
        "name": service,
        "image": spec.image,
        "imagePullPolicy": spec.imagePullPolicy,
        "args": ["serve", service, "--role", role],
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": wiring_name(owner)}}],
        "env": env,
        # a cold Python start on a busy node can take a while: the startup probe covers it, so the
        # liveness probe does not restart a pod that is merely slow to import
        "startupProbe": {**liveness, "initialDelaySeconds": 2, "periodSeconds": 2, "failureThreshold": 90},
        "readinessProbe": readiness,
        "livenessProbe": liveness,
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    resources = _resources(rs.resources)
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(owner, name, service, role),
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": lbl, "annotations": {
                    WIRING_HASH: wiring_digest,
                    # the common scrape convention (Prometheus' kubernetes_sd example relabelling)
                    "prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                    "prometheus.io/path": "/metrics"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(APP_UID),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    **_placement(spec),
                },
            },
        },
    }


def build_service(owner: Owner, spec: CulturePlatformSpec, service: str, role: str) -> dict[str, Any]:
    """The ClusterIP Service in front of an api role."""
    if service == "gateway":
        ports = [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]
    else:
        ports = [
            {
                "name": "grpc",
                "port": spec.grpcPort,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, deployment_name(owner, service, role), service, role),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner, service, role),
            "ports": ports,
        },
    }


def build_pdb(owner: Owner, service: str, role: str) -> dict[str, Any]:
    """A PodDisruptionBudget: at most one pod of a multi-replica role down at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(owner, deployment_name(owner, service, role), service, role),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(owner, service, role)},
        },
    }
