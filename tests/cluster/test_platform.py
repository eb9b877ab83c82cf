"""The operator as a pod on the real node, reconciling a CulturePlatform into pods that get Ready.

Kafka and PostgreSQL are the local stack's (mode `external`); pods use the same addresses as host
processes (127.0.0.1:19092, 127.0.0.1:15432), redirected to the host by the node's pod network.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from cluster_kube import Kube, describe, ready, wait_for

from culture_stack import paths
from culture_stack.cluster import images
from culture_stack.ports import HOST, KAFKA, POSTGRES
from culture_stack.server import Context

pytestmark = pytest.mark.e2e

SERVICE = "identity"
ROLES = ("api-write", "api-read", "relay")
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"


@pytest.fixture(scope="session")
def project_images(cluster: Kube, cluster_ctx: Context) -> dict[str, str]:
    """The operator and services images, built by buildah from their Dockerfiles (cached by tag)."""
    tag = images.image_tag()
    return {name: images.build_project_image(cluster_ctx, name, tag=tag) for name in images.PROJECT_IMAGES}


async def _create_database(name: str) -> None:
    conn = await asyncpg.connect(f"postgresql://culture:culture@{HOST}:{POSTGRES}/culture")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def platform(name: str, namespace: str, image: str, prefix: str) -> dict[str, Any]:
    services: dict[str, Any] = {s: {"enabled": False} for s in
                                ("catalog", "feed", "graph", "chat", "notifier", "mailer", "gateway")}
    services[SERVICE] = {"enabled": True}
    return {
        "apiVersion": "platform.culture.dev/v1alpha1", "kind": "CulturePlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": image,
            "kafka": {"mode": "external", "bootstrapServers": [f"{HOST}:{KAFKA}"],
                      "topicPrefix": prefix, "topics": {"partitions": 1}},
            "databases": {"postgres": {"mode": "external", "secretRef": {"name": "postgres"}}},
            "services": services,
        },
    }


def _role_pods(cluster: Kube, namespace: str, name: str, role: str) -> list[dict[str, Any]]:
    return cluster.pods(namespace, f"{INSTANCE}={name},{NAME}={SERVICE},{COMPONENT}={role}")


def test_operator_pod_reconciles_a_platform_into_ready_pods(
        cluster: Kube, namespace: str, unique: str, project_images: dict[str, str]) -> None:
    operator_ref = project_images["culture/operator"]
    repo, _, tag = operator_ref.rpartition(":")
    release = f"op-{unique}"
    chart = str(paths.repo_root() / "charts" / "culture-operator")
    cluster.helm_run("install", release, chart, "--namespace", namespace,
                     "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
                     "--set", f"watchNamespaces={{{namespace}}}", "--set", f"peeringName={release}",
                     "--set", "driftSeconds=10", "--wait", "--timeout", "5m")
    try:
        # kopf, watching only some namespaces, coordinates through a namespaced KopfPeering; the chart
        # makes only the ClusterKopfPeering (for --all-namespaces), so make the namespaced one here
        cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                       "metadata": {"name": release, "namespace": namespace}})
        op = cluster.pods(namespace, "app.kubernetes.io/name=culture-operator")
        assert op and all(ready(p) for p in op), describe(cluster, namespace)

        # an external PostgreSQL database of its own, at the address host processes use too
        asyncio.run(_create_database(unique))
        url = f"postgresql://culture:culture@{HOST}:{POSTGRES}/{unique}"
        cluster.run("create", "secret", "generic", "postgres", "-n", namespace, f"--from-literal=url={url}")

        name = "cp"
        cluster.apply(platform(name, namespace, project_images["culture/services"], f"{unique}."))

        def all_ready() -> bool:
            pods = cluster.pods(namespace, f"{INSTANCE}={name}")
            return len(pods) == len(ROLES) and all(ready(p) for p in pods)

        wait_for("every role's pod Ready", all_ready, 600, diagnose=lambda: describe(cluster, namespace))

        def cp_ready() -> bool:
            cp = cluster.get("cp", name, "-n", namespace)
            conds = cp.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        wait_for("kubectl get cp: Ready=True", cp_ready, 120, diagnose=lambda: describe(cluster, namespace))
        printed = cluster.run("get", "cp", name, "-n", namespace).stdout
        assert "True" in printed.splitlines()[1], printed

        # scaling the read side changes that role's pods only
        before = {r: {p["metadata"]["uid"] for p in _role_pods(cluster, namespace, name, r)} for r in ROLES}
        cluster.run("patch", "cp", name, "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"services":{"identity":{"api-read":{"replicas":2}}}}}')
        wait_for("two Ready api-read pods",
                 lambda: len(pods := _role_pods(cluster, namespace, name, "api-read")) == 2
                 and all(ready(p) for p in pods), 300, diagnose=lambda: describe(cluster, namespace))
        for role in ("api-write", "relay"):
            after = {p["metadata"]["uid"] for p in _role_pods(cluster, namespace, name, role)}
            assert after == before[role], f"{role} pods changed when only api-read was scaled"

        # deleting the platform removes its pods
        cluster.run("delete", "cp", name, "-n", namespace, "--wait=false")
        wait_for("the platform's pods to go", lambda: not cluster.pods(namespace, f"{INSTANCE}={name}"),
                 180, diagnose=lambda: describe(cluster, namespace))
    finally:
        cluster.helm_run("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")
