"""`skaffold run -p local` on the real node: buildah builds, the local registry, the platform chart.

skaffold is v2 built from the Go module proxy; `culture cluster skaffold` runs it as a user would
(stack kubeconfig, helm and kubectl) from the repository root. The profile deploys the platform chart
(release `culture` in `culture-system`: the operator and a CulturePlatform with the local stack's
servers as its databases, charts/culture-platform/values-local.yaml) with the images it built wired
in, exactly as a user gets it; so the test first removes whatever an interrupted earlier run left
there, and removes its own release at the end. `skaffold render -p kind` (the laptop's profile) is
checked too: the built tags reach the operator and the platform, and the API server accepts it all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_kube import Kube, describe, ready

from culture_events.testing import wait_until_sync
from culture_stack import paths
from culture_stack.cluster import skaffold
from culture_stack.server import Context, say

pytestmark = pytest.mark.e2e

NAMESPACE = "culture-system"
RELEASE = "culture"
PLATFORM = "local"  # values-local.yaml's platform.name
OPERATOR = f"{RELEASE}-culture-operator"
CULTURE = str(Path(sys.executable).parent / "culture")
REGISTRY = "127.0.0.1:5000/culture"


def _skaffold(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CULTURE, "cluster", "skaffold", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def skaffold_binary(cluster: Kube, base_image: str, cluster_ctx: Context) -> Path:
    return skaffold.install(cluster_ctx)


def _remove_platform(cluster: Kube) -> None:
    """Delete a CulturePlatform an interrupted earlier run left (while its operator still runs: it
    lets go of its finalizer)."""
    if cluster.get("namespace", NAMESPACE) is None or \
            cluster.get("crd", "cultureplatforms.platform.culture.dev") is None:
        return
    cluster.run("delete", "cp", "--all", "-n", NAMESPACE, "--wait=false", check=False)
    wait_until_sync(lambda: not cluster.get("cp", "-n", NAMESPACE)["items"], 180,
                    "the CulturePlatform skaffold deployed to be deleted",
                    diagnose=lambda: describe(cluster, NAMESPACE), interval=1.0)


def _cp_ready(cluster: Kube) -> bool:
    cp = cluster.get("cp", PLATFORM, "-n", NAMESPACE) or {}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in cp.get("status", {}).get("conditions", []))


def test_skaffold_local_profile_builds_pushes_and_deploys_a_ready_platform(
        cluster: Kube, skaffold_binary: Path) -> None:
    version = subprocess.run([str(skaffold_binary), "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == skaffold.SKAFFOLD_VERSION
    _remove_platform(cluster)  # an interrupted earlier run's platform and release, if any
    _skaffold("delete", "-p", "local", timeout=300)
    try:
        run = _skaffold("run", "-p", "local", timeout=1800)
        assert run.returncode == 0, f"skaffold run failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        # the build went through the profile's custom command and the local registry
        out = run.stdout + run.stderr
        assert f"{REGISTRY}/operator:" in out, out[-4000:]
        assert f"{REGISTRY}/services:" in out, out[-4000:]

        def operator_pods() -> list[dict]:
            pods = cluster.pods(NAMESPACE, f"app.kubernetes.io/instance={RELEASE},"
                                           "app.kubernetes.io/name=culture-operator")
            return [p for p in pods if ready(p)]

        pods = wait_until_sync(operator_pods, 300, "the operator pod skaffold deployed to be Ready",
                               diagnose=lambda: describe(cluster, NAMESPACE), interval=1.0)
        image = pods[0]["spec"]["containers"][0]["image"]
        assert image.startswith(f"{REGISTRY}/operator:"), image
        # skaffold tagged it by input digest and pinned the pushed digest
        assert "@sha256:" in image or len(image.rpartition(":")[2]) >= 12, image

        # the platform of the same release runs the services image skaffold just built and pushed
        cp = cluster.get("cp", PLATFORM, "-n", NAMESPACE)
        services_image = cp["spec"]["image"]
        assert services_image.startswith(f"{REGISTRY}/services:") and "@sha256:" in services_image, \
            services_image
        wait_until_sync(lambda: _cp_ready(cluster), 600, f"cp/{PLATFORM} Ready=True",
                        diagnose=lambda: describe(cluster, NAMESPACE), interval=2.0)
        pods = cluster.pods(NAMESPACE, f"app.kubernetes.io/instance={PLATFORM}")
        assert pods and all(ready(p) for p in pods), describe(cluster, NAMESPACE)
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {services_image}
        say(f"  skaffold run -p local: {len(pods)} service pods Ready on {services_image}")
        releases = cluster.helm_run("list", "-n", NAMESPACE, "-o", "json").stdout
        assert f'"name":"{RELEASE}"' in releases.replace(" ", ""), releases
    finally:
        gone = _skaffold("delete", "-p", "local", timeout=600)
    assert gone.returncode == 0, gone.stderr[-4000:]
    # the chart's pre-delete hook deleted the platform while its operator still ran
    assert cluster.get("cp", PLATFORM, "-n", NAMESPACE) is None
    wait_until_sync(lambda: cluster.get("deployment", OPERATOR, "-n", NAMESPACE) is None, 120,
                    "the operator Deployment to be removed by skaffold delete", interval=1.0)


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_skaffold_render_of_the_kind_profile_wires_the_built_images_into_the_platform(
        cluster: Kube, skaffold_binary: Path, namespace: str, unique: str, tmp_path: Path) -> None:
    """The laptop's profile, rendered here without Docker from the tags a build would have made (the
    kind profile's input-digest tagger needs the Docker Hub base image, out of reach here): the
    operator and the CulturePlatform name exactly those images, the gateway has the NodePort
    kind-config.yaml maps, and the API server accepts every object."""
    built = {"culture-operator": f"culture-operator:{unique}", "culture": f"culture:{unique}"}
    artifacts = tmp_path / "build.json"
    artifacts.write_text(json.dumps({"builds": [{"imageName": n, "tag": t} for n, t in built.items()]}))
    proc = _skaffold("render", "-p", "kind", f"--build-artifacts={artifacts}", "--digest-source=tag",
                     "--offline=true", f"--namespace={namespace}", timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    docs = _documents(proc.stdout)
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    cp = kinds[("CulturePlatform", "culture")]
    operator = kinds[("Deployment", OPERATOR)]["spec"]["template"]["spec"]["containers"][0]
    assert operator["image"] == built["culture-operator"], operator["image"]
    assert cp["spec"]["image"] == built["culture"] and cp["spec"]["imagePullPolicy"] == "Never", cp
    hook = kinds[("Job", f"{RELEASE}-uninstall")]["spec"]["template"]["spec"]["containers"][0]
    assert hook["image"] == built["culture-operator"]  # the uninstall hook runs the operator's image
    kind_config = yaml.safe_load((paths.repo_root() / "kind-config.yaml").read_text())
    node_port = kind_config["nodes"][0]["extraPortMappings"][0]["containerPort"]
    assert kinds[("Service", "culture-gateway-nodeport")]["spec"]["ports"][0]["nodePort"] == node_port
    for doc in docs:  # rendered into this test's namespace (skaffold's --namespace)
        if doc["metadata"].get("namespace"):
            doc["metadata"]["namespace"] = namespace
    checked = cluster.run("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                          stdin=yaml.safe_dump_all(docs), check=False)
    assert checked.returncode == 0, checked.stderr
