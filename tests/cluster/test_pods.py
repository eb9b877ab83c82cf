"""Pods on the real node: a locally built image starts, gets Ready, serves a ClusterIP Service that
another pod reaches by DNS name, and is restarted after its process is killed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cluster_kube import Kube, describe, ready

from culture_events.testing import wait_until_sync
from culture_stack.cluster import components, config, storage
from culture_stack.server import Context

pytestmark = pytest.mark.e2e

#: what the operator's pod specs demand; every test pod here runs the same way
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}
LIMITS = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "96Mi"}}


def web_pod(namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "securityContext": POD_SECURITY,
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "web", "image": image,
                "command": ["python3", "-m", "http.server", "8080", "--directory", "/etc"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/hostname", "port": "http"}, "periodSeconds": 2},
                "securityContext": CONTAINER_SECURITY, "resources": LIMITS,
            }],
        },
    }


def web_service(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}


def client_job(namespace: str, image: str) -> dict[str, Any]:
    # both the short name (resolv.conf search path) and the full name must resolve
    script = (
        "import urllib.request\n"
        f"for url in ('http://web/hostname', 'http://web.{namespace}.svc.{config.CLUSTER_DOMAIN}/hostname'):\n"
        "    body = urllib.request.urlopen(url, timeout=5).read().decode().strip()\n"
        "    assert body == 'web', body\n"
        "    print(url, '->', body)\n"
    )
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "client", "namespace": namespace},
        "spec": {"backoffLimit": 4, "template": {"spec": {
            "restartPolicy": "Never", "securityContext": POD_SECURITY,
            "containers": [{"name": "client", "image": image, "command": ["python3", "-c", script],
                            "securityContext": CONTAINER_SECURITY, "resources": LIMITS}],
        }}},
    }


def test_node_is_ready(cluster: Kube) -> None:
    node = cluster.get("node", config.NODE_NAME)
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    assert node["status"]["nodeInfo"]["kubeletVersion"] == config.KUBE_VERSION
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_pod_serves_a_service_by_dns_name_and_restarts(cluster: Kube, namespace: str,
                                                       base_image: str) -> None:
    cluster.apply(web_pod(namespace, base_image), web_service(namespace))

    def web() -> dict[str, Any]:
        return cluster.get("pod", "web", "-n", namespace)

    wait_until_sync(lambda: ready(web()), 180, "pod web Ready",
                    diagnose=lambda: describe(cluster, namespace), interval=1.0)

    cluster.apply(client_job(namespace, base_image))
    def job() -> dict[str, Any] | None:
        j = cluster.get("job", "client", "-n", namespace)
        return j if j and j["status"].get("succeeded") else None

    wait_until_sync(job, 180, "job client to succeed", diagnose=lambda: describe(cluster, namespace),
                    interval=1.0)

    # kill the container's process from the host, as an OOM kill or a crash would
    status = web()["status"]["containerStatuses"][0]
    container_id = status["containerID"].removeprefix("containerd://")
    subprocess.run(["ctr", "--address", str(components.CONTAINERD_SOCKET), "--namespace", "k8s.io",
                    "tasks", "kill", "--signal", "SIGKILL", container_id], check=True, capture_output=True)
    wait_until_sync(lambda: (p := web())["status"]["containerStatuses"][0]["restartCount"] >= 1 and ready(p),
                    120, "web restarted and Ready again", diagnose=lambda: describe(cluster, namespace),
                    interval=1.0)

    # and the API server reaches the kubelet: `kubectl logs` shows what the client printed
    logs = cluster.run("logs", "-n", namespace, "job/client").stdout
    assert f"web.{namespace}.svc" in logs


def test_a_claim_without_a_class_gets_a_local_volume_that_outlives_its_pod(
        cluster: Kube, namespace: str, base_image: str, cluster_ctx: Context) -> None:
    """The default StorageClass (local-path-provisioner, as on kind): a claim that names no class is
    bound once a pod uses it, the pod's writes land in a directory on the node and are there for the
    next pod, and deleting the claim removes the volume and its directory."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data", "namespace": namespace},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}}

    def writer(name: str, script: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
                "spec": {"restartPolicy": "Never", "securityContext": POD_SECURITY,
                         "containers": [{"name": name, "image": base_image,
                                         "command": ["python3", "-c", script],
                                         "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                         "securityContext": CONTAINER_SECURITY, "resources": LIMITS}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}

    def succeeded(name: str) -> bool:
        pod = cluster.get("pod", name, "-n", namespace)
        assert pod["status"].get("phase") != "Failed", cluster.run("logs", "-n", namespace, name).stdout
        return pod["status"].get("phase") == "Succeeded"

    cluster.apply(claim, writer("first", "open('/data/kept', 'w').write('written by first')"))
    wait_until_sync(lambda: succeeded("first"), 180, "pod first to write",
                    diagnose=lambda: describe(cluster, namespace), interval=1.0)
    pvc = cluster.get("pvc", "data", "-n", namespace)
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == config.STORAGE_CLASS
    pv = cluster.get("pv", pvc["spec"]["volumeName"])
    host_dir = Path(pv["spec"]["hostPath"]["path"])
    assert host_dir.is_relative_to(storage.volumes_dir(cluster_ctx))
    assert (host_dir / "kept").read_text() == "written by first"

    cluster.apply(writer("second", "print(open('/data/kept').read())"))
    wait_until_sync(lambda: succeeded("second"), 180, "pod second to read",
                    diagnose=lambda: describe(cluster, namespace), interval=1.0)
    assert cluster.run("logs", "-n", namespace, "second").stdout.strip() == "written by first"

    cluster.run("delete", "pod", "first", "second", "-n", namespace, "--wait=true")
    cluster.run("delete", "pvc", "data", "-n", namespace, "--wait=true")
    wait_until_sync(lambda: cluster.get("pv", pv["metadata"]["name"]) is None and not host_dir.exists(),
                    180, "the volume and its directory to be removed", interval=1.0)
