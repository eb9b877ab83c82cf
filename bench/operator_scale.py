"""Benchmark of the CulturePlatform operator against the local control plane.

For each N in --counts (default 1,10,50): N CulturePlatforms in N fresh namespaces, one operator
watching them. Reports
  * time from `kubectl apply` to every child of every platform existing,
  * API writes per no-op reconcile (from the operator's own per-reconcile counters; target 0),
  * reads per no-op reconcile,
so the growth with N is visible. Run: `.venv/bin/python bench/operator_scale.py --help`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from culture_operator import builders as b
from culture_operator.spec import parse_spec
from culture_stack import registry, stack
from culture_stack.server import Context, say

REPO = Path(__file__).resolve().parents[1]
STRIMZI_FIXTURE = REPO / "tests" / "operator" / "fixtures" / "strimzi-crds.yaml"
LINE = re.compile(r"reconciled (\S+): phase \w+, (\d+) API writes, (\d+) reads")

#: strimzi mode (CRDs from the test fixture, no Strimzi needed), every service, managed databases
# nodeSelector: this measures the operator, not pods starting on a local node (if one exists)
SPEC: dict[str, Any] = {"kafka": {"mode": "strimzi"}, "services": {"feed": {"api-read": {"replicas": 2}}},
                        "nodeSelector": {"culture.dev/bench-no-node": "true"}}


def kubectl(settings: dict[str, Any], *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": settings["kubeconfig"]}
    proc = subprocess.run(
        [settings["kubectl"], *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
    )
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def children_per_platform() -> int:
    spec = parse_spec(SPEC)
    owner = b.Owner("x", "ns", "uid")
    return len(b.build_children(owner, spec, dict.fromkeys(b.managed_databases(spec), "pw")))


def count_children(settings: dict[str, Any], run: str) -> int:
    """Children of this run's platforms (namespaces bench-<run>-*), across every child kind."""
    kinds = (
        "configmaps,secrets,services,statefulsets,deployments,poddisruptionbudgets,"
        "kafkas.kafka.strimzi.io,kafkanodepools.kafka.strimzi.io,kafkatopics.kafka.strimzi.io"
    )
    out = kubectl(
        settings,
        "get",
        kinds,
        "-A",
        "-l",
        f"{b.LABEL_MANAGED_BY}={b.MANAGER}",
        "-o",
        "custom-columns=NS:.metadata.namespace",
        "--no-headers",
    )
    return sum(1 for line in out.splitlines() if line.startswith(f"bench-{run}-"))


def count_platforms(settings: dict[str, Any], run: str) -> int:
    """CulturePlatforms still present in this run's namespaces."""
    out = kubectl(settings, "get", "cultureplatforms.platform.culture.dev", "-A", "-o",
                  "custom-columns=NS:.metadata.namespace", "--no-headers")
    return sum(1 for line in out.splitlines() if line.startswith(f"bench-{run}-"))


def one_round(settings: dict[str, Any], n: int, drift: float, noop_passes: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    namespaces = [f"bench-{run}-{i}" for i in range(n)]
    say(f"== {n} platform(s): creating namespaces {namespaces[0]}..")
    kubectl(
        settings,
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces
                ],
            }
        ),
    )
    log = Path(tempfile.mkstemp(prefix=f"operator-bench-{n}-", suffix=".log")[1])
    env = {**os.environ, "KUBECONFIG": settings["kubeconfig"], "CULTURE_OPERATOR_DRIFT_SECONDS": str(drift)}
    args = [sys.executable, "-m", "culture_operator", "--standalone"]
    for ns in namespaces:
        args += ["-n", ns]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            time.sleep(2)  # let kopf start watching; not part of the measurement
            platforms = {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "platform.culture.dev/v1alpha1",
                        "kind": "CulturePlatform",
                        "metadata": {"name": "bench", "namespace": ns},
                        "spec": SPEC,
                    }
                    for ns in namespaces
                ],
            }
            want = n * children_per_platform()
            t0 = time.monotonic()
            kubectl(settings, "apply", "-f", "-", stdin=json.dumps(platforms))
            while count_children(settings, run) < want:
                if time.monotonic() - t0 > 600:
                    raise SystemExit(f"not all children after 600 s; operator log: {log}")
                time.sleep(0.2)
            created = time.monotonic() - t0
            say(f"   all {n * children_per_platform()} children exist after {created:.2f} s")
            # wait for the no-op passes: the drift timer fires every `drift` seconds per platform
            target = n * (noop_passes + 2)
            deadline = time.monotonic() + 600
            while len(LINE.findall(log.read_text(errors="replace"))) < target and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            # delete the platforms while the operator runs: its finalizer must release them, or
            # the namespaces below would hang in Terminating and keep the API server busy
            for ns in namespaces:
                kubectl(settings, "delete", "cultureplatforms.platform.culture.dev", "bench", "-n", ns,
                        "--ignore-not-found", "--wait=false")
            deadline = time.monotonic() + 300
            while count_platforms(settings, run) and time.monotonic() < deadline:
                time.sleep(0.5)
            proc.terminate()
            proc.wait(timeout=30)
            for ns in namespaces:  # whatever the operator did not release (bench interrupted, timeout)
                for name in kubectl(settings, "get", "cultureplatforms", "-n", ns, "-o", "name").split():
                    kubectl(settings, "patch", name, "-n", ns, "--type=merge",
                            "-p", '{"metadata":{"finalizers":null}}')
    by_platform: dict[str, list[tuple[int, int]]] = {}
    for who, w, r in LINE.findall(log.read_text(errors="replace")):
        by_platform.setdefault(who, []).append((int(w), int(r)))
    # the first pass of each platform creates its children; the steady state is its last noop_passes
    steady = [p for passes in by_platform.values() if len(passes) > 1 for p in passes[1:][-noop_passes:]]
    kubectl(settings, "delete", "namespace", *namespaces, "--wait=false")
    return {
        "platforms": n,
        "children": n * children_per_platform(),
        "apply_to_all_children_s": round(created, 2),
        "noop_reconciles": len(steady),
        "writes_per_noop_reconcile": round(statistics.mean(w for w, _ in steady), 3) if steady else None,
        "max_writes_noop": max((w for w, _ in steady), default=None),
        "reads_per_noop_reconcile": round(statistics.mean(r for _, r in steady), 1) if steady else None,
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1,10,50", help="comma-separated numbers of platforms")
    parser.add_argument("--drift", type=float, default=5.0, help="drift-timer interval in seconds")
    parser.add_argument("--noop-passes", type=int, default=2, help="no-op reconciles measured per platform")
    args = parser.parse_args(argv)
    ctx = Context.default()
    servers = registry.select(["kube-apiserver", "kube-controller-manager"])
    stack.up(ctx, servers)
    settings = next(s for s in servers if s.name == "kube-apiserver").settings()
    kubectl(settings, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl(settings, "apply", "--server-side", "--force-conflicts", "-f", str(STRIMZI_FIXTURE))
    results = [one_round(settings, int(n), args.drift, args.noop_passes) for n in args.counts.split(",")]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
