"""Benchmark of the CulturePlatform operator against the local control plane.

For each N in --counts (default 1,10,50): N CulturePlatforms in N fresh namespaces, one operator
watching them. Reports
  * time from creating the platforms to every child of every platform existing (polled in-process with
    metadata-only lists: no kubectl process per poll competing for the 2 cores),
  * per platform, from the operator's log: when its first reconcile started after the create (kopf's
    latency: watch event, finalizer, batching) and how long that reconcile took (list, apply, status),
  * API writes per no-op reconcile (from the operator's own per-reconcile counters; target 0),
  * reads per no-op reconcile,
and first, in this same process, a bare-client baseline on the same API server: one GET's latency, and
the server-side apply of one platform's children sequentially and with 8 / 16 threads (the floor the
operator's own apply sits on). Run: `.venv/bin/python bench/operator_scale.py --help`.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from culture_operator import builders as b
from culture_operator.compare import stamp
from culture_operator.kube import CHILD_KINDS, PLATFORM_KIND, Kube, KubeError
from culture_operator.spec import parse_spec
from culture_stack import registry, stack
from culture_stack.cluster import strimzi_crds
from culture_stack.server import Context, say

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"reconciled (\S+): phase \w+, (\d+) API writes, (\d+) reads(?:, started ([\d.]+), took ([\d.]+) s)?"
)
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

#: strimzi mode (Strimzi's real CRDs, no Strimzi running), every service, managed databases
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


def one_platform_children(namespace: str = "ns", name: str = "x", uid: str = "uid") -> list[dict[str, Any]]:
    spec = parse_spec(SPEC)
    owner = b.Owner(name, namespace, uid)
    key = b.SigningKey.from_seed(bytes(32))
    return b.build_children(owner, spec, dict.fromkeys(b.managed_databases(spec), "pw"), key, "address-key")


def children_per_platform() -> int:
    return len(one_platform_children())


def list_metadata(kube: Kube, path: str, selector: str) -> list[dict[str, Any]]:
    """Metadata-only list (PartialObjectMetadataList) from the API server's watch cache (resourceVersion=0):
    cheap for the server and the poller."""
    ser = kube.api.param_serialize(method="GET", resource_path=path,
                                   query_params=[("labelSelector", selector), ("resourceVersion", "0")],
                                   header_params={"Accept": METADATA_ONLY}, auth_settings=["BearerToken"])
    resp = kube.api.call_api(*ser, _request_timeout=60)
    data = resp.read()
    if resp.status == 404:
        return []
    return json.loads(data).get("items") or []


def count_children(kube: Kube, run: str) -> int:
    """Children of this run's platforms (namespaces bench-<run>-*), across every child kind."""
    selector = f"{b.LABEL_MANAGED_BY}={b.MANAGER}"
    total = 0
    for kind in CHILD_KINDS:
        base = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
        items = list_metadata(kube, f"{base}/{kind.plural}", selector)
        total += sum(1 for i in items if i["metadata"]["namespace"].startswith(f"bench-{run}-"))
    return total


def baseline(kube: Kube) -> dict[str, Any]:
    """The API server's own cost, measured with a bare client in this process (no operator, no kopf)."""
    ns = f"bench-base-{uuid.uuid4().hex[:6]}"
    kube._request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}})
    try:
        gets = []
        for _ in range(30):
            t = time.perf_counter()
            kube._request("GET", f"/api/v1/namespaces/{ns}")
            gets.append(time.perf_counter() - t)
        out: dict[str, Any] = {"get_p50_ms": round(statistics.median(gets) * 1000, 1)}

        def manifests(tag: str) -> list[dict[str, Any]]:
            items = [stamp(m) for m in one_platform_children(ns, f"b{tag}")]
            for m in items:
                m["metadata"].pop("ownerReferences", None)  # no owner: the garbage collector leaves them
            return items

        rounds = (("apply_sequential_s", 1), ("apply_8_threads_s", 8), ("apply_16_threads_s", 16))
        for label, workers in rounds:
            items = manifests(str(workers))
            t = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(kube.apply, items))
            out[label] = round(time.perf_counter() - t, 3)
        items = manifests("1")  # the same again: server-side apply of unchanged objects (no write in etcd)
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(kube.apply, items))
        out["reapply_unchanged_8_threads_s"] = round(time.perf_counter() - t, 3)
        out["children"] = len(items)
        return out
    finally:
        kube._request("DELETE", f"/api/v1/namespaces/{ns}")


def one_round(settings: dict[str, Any], kube: Kube, n: int, drift: float, noop_passes: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    namespaces = [f"bench-{run}-{i}" for i in range(n)]
    say(f"== {n} platform(s): creating namespaces {namespaces[0]}..")
    for ns in namespaces:
        kube._request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": ns}})
    log = Path(tempfile.mkstemp(prefix=f"operator-bench-{n}-", suffix=".log")[1])
    env = {**os.environ, "KUBECONFIG": settings["kubeconfig"], "CULTURE_OPERATOR_DRIFT_SECONDS": str(drift)}
    args = [sys.executable, "-m", "culture_operator", "--standalone"]
    for ns in namespaces:
        args += ["-n", ns]
    per = children_per_platform()
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            # let kopf start (imports take seconds on a busy machine) and open its watches; not measured
            deadline = time.monotonic() + 120
            while "Initial authentication has finished" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the operator did not start; log: {log}")
                time.sleep(0.2)
            time.sleep(2)
            want = n * per
            created_at = time.time()
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:  # n creates as fast as kubectl apply of a List
                list(pool.map(lambda ns: kube._request("POST", PLATFORM_KIND.collection(ns), body={
                    "apiVersion": "platform.culture.dev/v1alpha1", "kind": "CulturePlatform",
                    "metadata": {"name": "bench", "namespace": ns}, "spec": SPEC}), namespaces))
            while count_children(kube, run) < want:
                if time.monotonic() - t0 > 900:
                    raise SystemExit(f"not all children after 900 s; operator log: {log}")
                time.sleep(0.05)
            created = time.monotonic() - t0
            say(f"   all {want} children exist after {created:.2f} s")
            # wait for the no-op passes: the drift timer fires every `drift` seconds per platform
            target = n * (noop_passes + 2)
            deadline = time.monotonic() + 600
            while len(LINE.findall(log.read_text(errors="replace"))) < target and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            # delete the platforms while the operator runs: its finalizer must release them, or
            # the namespaces below would hang in Terminating and keep the API server busy
            for ns in namespaces:
                try:
                    kube._request("DELETE", f"{PLATFORM_KIND.collection(ns)}/bench")
                except KubeError:
                    pass
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and any(
                    kube.get(PLATFORM_KIND, ns, "bench") for ns in namespaces):
                time.sleep(0.5)
            proc.terminate()
            proc.wait(timeout=30)
            for ns in namespaces:  # whatever the operator did not release (bench interrupted, timeout)
                for name in kubectl(settings, "get", "cultureplatforms", "-n", ns, "-o", "name").split():
                    kubectl(settings, "patch", name, "-n", ns, "--type=merge",
                            "-p", '{"metadata":{"finalizers":null}}')
    by_platform: dict[str, list[tuple[int, int, float, float]]] = {}
    for who, w, r, started, took in LINE.findall(log.read_text(errors="replace")):
        by_platform.setdefault(who, []).append((int(w), int(r), float(started or 0), float(took or 0)))
    # the first pass of each platform creates its children; the steady state is its last noop_passes
    steady = [p for passes in by_platform.values() if len(passes) > 1 for p in passes[1:][-noop_passes:]]
    firsts = [passes[0] for passes in by_platform.values()]
    kopf_latency = [p[2] - created_at for p in firsts if p[2]]
    first_took = [p[3] for p in firsts]
    done = [p[2] + p[3] - created_at for p in firsts if p[2]]
    for ns in namespaces:
        kube._request("DELETE", f"/api/v1/namespaces/{ns}")

    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        return f"median {statistics.median(values):.2f} / max {max(values):.2f}"

    return {
        "platforms": n,
        "children": n * per,
        "apply_to_all_children_s": round(created, 2),
        "per_platform_s": round(created / n, 3),
        "create_to_first_reconcile_start_s": spread(kopf_latency),
        "first_reconcile_took_s": spread(first_took),
        "create_to_first_reconcile_done_s": spread(done),
        "noop_reconciles": len(steady),
        "writes_per_noop_reconcile": round(statistics.mean(p[0] for p in steady), 3) if steady else None,
        "max_writes_noop": max((p[0] for p in steady), default=None),
        "reads_per_noop_reconcile": round(statistics.mean(p[1] for p in steady), 1) if steady else None,
        "noop_reconcile_took_s": spread([p[3] for p in steady]),
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1,10,50", help="comma-separated numbers of platforms")
    parser.add_argument("--drift", type=float, default=5.0, help="drift-timer interval in seconds")
    parser.add_argument("--noop-passes", type=int, default=2, help="no-op reconciles measured per platform")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-client baseline")
    args = parser.parse_args(argv)
    ctx = Context.default()
    servers = registry.select(["kube-apiserver", "kube-controller-manager"])
    if not all(s.healthy(ctx) for s in servers):
        stack.up(ctx, servers)
    settings = next(s for s in servers if s.name == "kube-apiserver").settings()
    os.environ["KUBECONFIG"] = settings["kubeconfig"]
    kubectl(settings, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for crd in strimzi_crds.generate(ctx):  # Strimzi's real CRDs (generated once, cached)
        kubectl(settings, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=settings["kubeconfig"], client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    kube = Kube(client.ApiClient(cfg))
    results: list[dict[str, Any]] = []
    if not args.no_baseline:
        say("== bare-client baseline (one platform's children, no operator)")
        results.append({"baseline": baseline(kube)})
        say(f"   {results[-1]}")
    for n in args.counts.split(","):
        results.append(one_round(settings, kube, int(n), args.drift, args.noop_passes))
        say(f"   {results[-1]}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
