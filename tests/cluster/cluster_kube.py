"""kubectl/helm helpers of the real-node e2e tests (imported by the tests and their fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from culture_stack.server import Context
from culture_stack.servers import kube


class Kube:
    """kubectl and helm against the local cluster, as a user runs them."""

    def __init__(self, ctx: Context) -> None:
        self.kubectl = str(kube.kubectl_path(ctx))
        self.helm = str(kube.helm_path(ctx))
        self.env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig_path(ctx))}

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run kubectl; fail with its stderr when `check` and it fails."""
        proc = subprocess.run([self.kubectl, *args], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def get(self, *args: str) -> Any:
        """`kubectl get ... -o json`, parsed; None when not found."""
        proc = self.run("get", *args, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)}: {proc.stderr}")
        return json.loads(proc.stdout)

    def apply(self, *docs: dict[str, Any]) -> None:
        """`kubectl apply -f -` of manifests."""
        self.run("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in docs))

    def helm_run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run helm with the same kubeconfig; fail with its stderr."""
        proc = subprocess.run([self.helm, *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr}")
        return proc

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Pods matching a label selector (not those being deleted)."""
        items = self.get("pods", "-n", namespace, "-l", selector)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    """True when the pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def describe(cluster: Kube, namespace: str) -> str:
    """What a failing test shows: the namespace's pods and events."""
    pods = cluster.run("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
    events = cluster.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
    return f"--- pods ---\n{pods}\n--- events ---\n{events[-4000:]}"
