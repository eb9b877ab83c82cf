"""`culture cluster status`: every node component healthy, each reporting its own version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_kube import Kube

from culture_stack.cluster import config
from culture_stack.servers.kube import KUBE_VERSION

pytestmark = pytest.mark.e2e


def test_status_shows_every_component_healthy_with_its_self_reported_version(cluster: Kube) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "culture"), "cluster", "status", "--json"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"registry", "containerd", "pod-gateway", "cluster-dns", "kubelet",
                         "kube-scheduler", "kube-proxy", "storage"}
    assert all(row["healthy"] for row in rows.values()), rows
    # the Kubernetes components answer from their own endpoints (/metrics build info, kubelet API)
    for name in ("kubelet", "kube-scheduler", "kube-proxy"):
        assert rows[name]["version"] == f"{name} {KUBE_VERSION}", rows[name]
    assert rows["containerd"]["version"].startswith("containerd 1.6"), rows["containerd"]
    # cluster DNS is CoreDNS in a pod; its row says which and what kube-dns answers
    assert rows["cluster-dns"]["version"] == f"CoreDNS {config.COREDNS_VERSION}", rows["cluster-dns"]
    storage = rows["storage"]
    assert storage["version"] == f"local-path-provisioner v{config.LOCAL_PATH_VERSION}", storage
