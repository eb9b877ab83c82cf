"""The operator's scope on the REAL local control plane: the chart's RBAC with `watchNamespaces` lets it
reconcile there and nowhere else, each identity role's Deployment carries only its keys, and two peered
operators share the work as one (only one acts; kill -9 of it and the other takes over)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import KAFKA_BOOTSTRAP, REPO, Kubectl, Operator

from culture_events.testing import wait_until_sync
from culture_operator.spec import SERVICE_ROLES

pytestmark = pytest.mark.e2e

CHART = REPO / "charts" / "culture-operator"
PEERING_CRDS = CHART / "crds" / "kopf-peering.yaml"
RECONCILED = "reconciled "


class ScopedOperator(Operator):
    """`python -m culture_operator` with peering (not standalone), optionally as another user."""

    def __init__(self, k: Kubectl, namespaces: list[str], log: Path, *, peering: str,
                 lifetime: int = 10, kubeconfig: str | None = None) -> None:
        super().__init__(k, namespaces, log)
        self.peering, self.lifetime, self.kubeconfig = peering, lifetime, kubeconfig

    def start(self) -> ScopedOperator:
        args = [sys.executable, "-m", "culture_operator", "--verbose", "--peering", self.peering,
                "--peering-lifetime", str(self.lifetime)]
        for ns in self.namespaces:
            args += ["-n", ns]
        env = {**self.k.env, "CULTURE_OPERATOR_DRIFT_SECONDS": str(self.drift)}
        if self.kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=env)
        return self

    def reconciles(self) -> int:
        """How many reconciles this operator has logged."""
        return self.log.read_text(errors="replace").count(RECONCILED) if self.log.exists() else 0


def spec(prefix: str, services: tuple[str, ...]) -> dict[str, Any]:
    """External Kafka and databases (nothing managed to wait for), a few services, pods off any node."""
    return {
        "kafka": {"mode": "external", "bootstrapServers": [KAFKA_BOOTSTRAP], "topicPrefix": f"{prefix}.",
                  "topics": {"partitions": 1}},
        "databases": {db: {"mode": "external", "secretRef": {"name": f"{db}-conn"}}
                      for db in ("postgres", "redis", "cassandra")},
        "services": {s: {"enabled": s in services} for s in SERVICE_ROLES},
        "nodeSelector": {"culture.dev/e2e-no-node": "true"},
    }


def platform(name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "platform.culture.dev/v1alpha1", "kind": "CulturePlatform",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def can_i(k: Kubectl, sa: str, *args: str) -> str:
    return k.run("auth", "can-i", *args, f"--as={sa}", check=False).stdout.strip()


def service_account_kubeconfig(k: Kubectl, namespace: str, name: str, path: Path) -> str:
    """A kubeconfig that authenticates as the ServiceAccount (a short-lived token): the operator run with
    it has exactly the chart's RBAC, as in its pod."""
    token = k.run("create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(k.env["KUBECONFIG"]).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
              "users": [{"name": name, "user": {"token": token}}],
              "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name,
                                                       "namespace": namespace}}],
              "current-context": name}
    path.write_text(yaml.safe_dump(config))
    return str(path)


def secret_refs(dep: dict[str, Any]) -> set[tuple[str, str]]:
    """(Secret, key) of every env value a Deployment takes from a Secret."""
    env = dep["spec"]["template"]["spec"]["containers"][0].get("env", [])
    return {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in env if "secretKeyRef" in e.get("valueFrom", {})}


def test_namespaced_install_reconciles_there_and_reads_no_secret_elsewhere(
    k: Kubectl, namespace: str, unique: str, tmp_path: Path
) -> None:
    if not Path(k.helm).exists():
        pytest.skip(f"helm is not built yet at {k.helm} (culture stack up kube-apiserver builds it)")
    other = f"{namespace}-x"
    k.run("create", "namespace", other)
    k.run("create", "secret", "generic", "not-yours", "-n", other, "--from-literal=password=s3cret")
    # no pod (replicaCount 0): the operator runs here, as the chart's ServiceAccount, with its RBAC
    k.helm_run("install", unique, str(CHART), "-n", namespace, "--set", "replicaCount=0",
               "--set", f"peeringName={unique}", "--set", f"watchNamespaces={{{namespace}}}", "--wait=false")
    sa_name = f"{unique}-culture-operator"
    sa = f"system:serviceaccount:{namespace}:{sa_name}"
    op = None
    try:
        assert can_i(k, sa, "get", "secrets", "-n", namespace) == "yes"
        for verb in ("get", "list", "watch", "delete"):
            assert can_i(k, sa, verb, "secrets", "-n", other) == "no", verb
        assert can_i(k, sa, "list", "secrets", "--all-namespaces") == "no"
        assert can_i(k, sa, "watch", "secrets", "-n", namespace) == "no"
        assert can_i(k, sa, "patch", "deployments", "-n", other) == "no"
        assert can_i(k, sa, "patch", "cultureplatforms.platform.culture.dev", "-n", other) == "no"
        assert can_i(k, sa, "list", "customresourcedefinitions.apiextensions.k8s.io") == "yes"
        assert can_i(k, sa, "create", "customresourcedefinitions.apiextensions.k8s.io") == "no"
        assert k.json("kopfpeering", unique, "-n", namespace)
        assert k.json("clusterkopfpeering", unique) is None  # watching one namespace: no cluster-wide peering

        kubeconfig = service_account_kubeconfig(k, namespace, sa_name, tmp_path / "sa.kubeconfig")
        op = ScopedOperator(k, [namespace], tmp_path / "operator.log", peering=unique,
                            kubeconfig=kubeconfig).start()
        k.apply(platform("demo", namespace, spec(unique, ("identity", "gateway"))))

        def reconciled() -> dict[str, Any] | None:
            cp = k.json("cultureplatform", "demo", "-n", namespace)
            return cp if cp and (cp.get("status") or {}).get("observedGeneration") else None

        try:
            wait_until_sync(reconciled, 90, "the status written by the operator as its ServiceAccount")
        except AssertionError:
            raise AssertionError(f"no status; operator log:\n{op.tail()}") from None
        deployments = {d["metadata"]["name"]: d for d in k.json("deployments", "-n", namespace)["items"]}
        assert {f"demo-identity-{r}" for r in SERVICE_ROLES["identity"]} <= set(deployments)
        log = op.log.read_text(errors="replace")
        assert "Forbidden" not in log and " 403" not in log, op.tail()
        # each identity role gets only the keys it uses: the private signing key goes to api-write alone
        key_secret = "demo-identity-signing-key"
        assert (key_secret, "signing-key") in secret_refs(deployments["demo-identity-api-write"])
        assert {key for s, key in secret_refs(deployments["demo-identity-api-read"]) if s == key_secret} == {
            "public-key", "signing-key-id", "verification-keys"}
        assert not [ref for ref in secret_refs(deployments["demo-identity-relay"]) if ref[0] == key_secret]
        assert not [n for n, d in deployments.items() if n != "demo-identity-api-write"
                    and (key_secret, "signing-key") in secret_refs(d)]
        # a platform in a namespace it does not watch is left alone (and it could not read its Secrets)
        k.apply(platform("demo", other, spec(f"{unique}x", ("gateway",))))
        assert k.json("cultureplatform", "demo", "-n", other).get("status") is None
    finally:
        if op:
            op.stop()
            print("---- operator log (tail) ----\n" + op.tail())
        k.run("patch", "cultureplatform", "demo", "-n", other, "--type=merge",
              "-p", '{"metadata":{"finalizers":null}}', check=False)
        k.helm_run("uninstall", unique, "-n", namespace, check=False)
        k.run("delete", "namespace", other, "--wait=false", check=False)


def test_two_peered_operators_only_one_acts_and_the_other_takes_over_after_kill_9(
    k: Kubectl, namespace: str, unique: str, tmp_path: Path
) -> None:
    k.run("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    k.run("wait", "--for=condition=Established", "--timeout=60s", "crd/kopfpeerings.kopf.dev")
    k.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
             "metadata": {"name": unique, "namespace": namespace}})
    lifetime = 10
    ops = [ScopedOperator(k, [namespace], tmp_path / f"operator-{i}.log", peering=unique, lifetime=lifetime)
           for i in range(2)]

    def peers(n: int) -> dict[str, Any] | None:
        obj = k.json("kopfpeering", unique, "-n", namespace) or {}
        return keep if len(keep := obj.get("status") or {}) >= n else None

    try:
        # one after the other (a rollout's order): both are registered in the peering object before
        # there is any work
        for i, op in enumerate(ops, 1):
            op.start()
            wait_until_sync(lambda i=i: peers(i), 60, f"{i} operator(s) in the KopfPeering")
        k.apply(platform("demo", namespace, spec(unique, ("gateway",))))
        # the drift timer reconciles every 2 s: wait for several reconciles of whichever is active
        wait_until_sync(lambda: max(op.reconciles() for op in ops) >= 4, 90,
                        "several reconciles by the active operator")
        counts = [op.reconciles() for op in ops]
        assert min(counts) == 0, f"both operators reconciled: {counts}"
        active, standby = (ops[0], ops[1]) if counts[0] else (ops[1], ops[0])
        assert active is ops[0], "the older operator (higher priority by start time) is the active one"

        killed_at = time.monotonic()
        active.stop(kill=True)  # SIGKILL: no clean shutdown, its peering entry stays until it expires
        k.run("patch", "cultureplatform", "demo", "-n", namespace, "--type=merge", "-p",
              json.dumps({"spec": {"services": {"gateway": {"api": {"replicas": 3}}}}}))

        def taken_over() -> bool:
            dep = k.json("deployment", "demo-gateway-api", "-n", namespace) or {}
            return (dep.get("spec") or {}).get("replicas") == 3

        try:
            wait_until_sync(taken_over, lifetime + 45, "the standby applying the new spec")
        except AssertionError:
            raise AssertionError(f"no takeover; standby log:\n{standby.tail()}") from None
        took = time.monotonic() - killed_at
        wait_until_sync(standby.reconciles, 30, "the standby's reconcile finished (status, log line)")
        print(f"takeover after kill -9: {took:.1f} s (peering lifetime {lifetime} s)")
    finally:
        k.run("delete", "cultureplatform", "demo", "-n", namespace, "--wait=false", check=False)
        for op in ops:
            op.stop()
            print(f"---- {op.log.name} (tail) ----\n" + op.tail(30))
