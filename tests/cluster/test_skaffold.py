"""`skaffold run -p local` on the real node: buildah builds, the local registry, the operator chart.

skaffold is v2 built from the Go module proxy; `culture cluster skaffold` runs it as a user would
(stack kubeconfig, helm and kubectl) from the repository root. The profile deploys the operator
release `culture-operator` into `culture-system` exactly as a user gets it, so the test first
removes whatever an interrupted earlier run left there, and removes its own release at the end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cluster_kube import Kube, describe, ready

from culture_events.testing import wait_until_sync
from culture_stack.cluster import skaffold
from culture_stack.server import Context

pytestmark = pytest.mark.e2e

NAMESPACE = "culture-system"
RELEASE = "culture-operator"
CULTURE = str(Path(sys.executable).parent / "culture")


def _skaffold(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CULTURE, "cluster", "skaffold", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def skaffold_binary(cluster: Kube, base_image: str, cluster_ctx: Context) -> Path:
    return skaffold.install(cluster_ctx)


def test_skaffold_local_profile_builds_pushes_and_deploys_the_operator(
        cluster: Kube, skaffold_binary: Path) -> None:
    version = subprocess.run([str(skaffold_binary), "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == skaffold.SKAFFOLD_VERSION
    _skaffold("delete", "-p", "local", timeout=300)  # an interrupted earlier run's release, if any
    try:
        run = _skaffold("run", "-p", "local", timeout=1800)
        assert run.returncode == 0, f"skaffold run failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        # the build went through the profile's custom command and the local registry
        out = run.stdout + run.stderr
        assert "127.0.0.1:5000/culture/operator:" in out, out[-4000:]
        assert "127.0.0.1:5000/culture/services:" in out, out[-4000:]

        def operator_pods() -> list[dict]:
            pods = cluster.pods(NAMESPACE, f"app.kubernetes.io/instance={RELEASE}")
            return [p for p in pods if ready(p)]

        pods = wait_until_sync(operator_pods, 300, "the operator pod skaffold deployed to be Ready",
                               diagnose=lambda: describe(cluster, NAMESPACE), interval=1.0)
        image = pods[0]["spec"]["containers"][0]["image"]
        assert image.startswith("127.0.0.1:5000/culture/operator:"), image
        # skaffold tagged it by input digest and pinned the pushed digest
        assert "@sha256:" in image or len(image.rpartition(":")[2]) >= 12, image
        releases = cluster.helm_run("list", "-n", NAMESPACE, "-o", "json").stdout
        assert f'"name":"{RELEASE}"' in releases.replace(" ", ""), releases
    finally:
        gone = _skaffold("delete", "-p", "local", timeout=300)
    assert gone.returncode == 0, gone.stderr[-4000:]
    wait_until_sync(lambda: cluster.get("deployment", RELEASE, "-n", NAMESPACE) is None, 120,
                    "the operator Deployment to be removed by skaffold delete", interval=1.0)
