"""Fixtures of the operator e2e tests: the control plane, kubectl, a namespace, a running operator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from culture_events.testing import wait_until_sync
from culture_stack import registry, stack
from culture_stack.cluster import strimzi_crds
from culture_stack.server import Context

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "cultureplatforms.yaml"
KAFKA_BOOTSTRAP = "127.0.0.1:19092"


class Kubectl:
    """kubectl (and helm) against the local control plane, as a user would run them."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.kubectl = settings["kubectl"]
        self.helm = settings["helm"]
        self.env = {**os.environ, "KUBECONFIG": settings["kubeconfig"]}

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; raise with its stderr when it fails and `check` is set."""
        proc = subprocess.run(
            [self.kubectl, *args], input=stdin, capture_output=True, text=True, env=self.env, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        """`kubectl get ... -o json` parsed; None when not found."""
        proc = self.run("get", *args, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(f"kubectl get {' '.join(args)}: {proc.stderr}")
        return json.loads(proc.stdout)

    def apply(self, manifest: dict[str, Any] | str, *extra: str) -> subprocess.CompletedProcess[str]:
        """`kubectl apply --validate=strict -f -` of a manifest (dict or YAML/JSON text): the API server
        refuses unknown or duplicate fields instead of dropping them."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "--validate=strict", "-f", "-", *extra, stdin=text)

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run helm with the same kubeconfig."""
        proc = subprocess.run([self.helm, *args], capture_output=True, text=True, env=self.env, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def kube_settings() -> dict[str, Any]:
    """The control plane (kube-apiserver + controller-manager), brought up if it is not yet."""
    ctx = Context.default()
    servers = registry.select(["kube-apiserver", "kube-controller-manager"])
    if not all(s.healthy(ctx) for s in servers):  # up() also re-checks the build: skip it when running
        stack.up(ctx, servers)
    return next(s for s in servers if s.name == "kube-apiserver").settings()


@pytest.fixture(scope="session")
def strimzi_crd_files() -> list[Path]:
    """Strimzi 1.2.0's real CRD files, generated from its API model on Maven Central by its own CRD
    generator (`culture cluster up --images`, the `e2e builds` phase, made them; cached, so instant)."""
    return strimzi_crds.generate(Context.default())


@pytest.fixture(scope="session")
def k(kube_settings: dict[str, Any], strimzi_crd_files: list[Path]) -> Kubectl:
    """kubectl with the CulturePlatform CRD and Strimzi's real CRDs installed and established."""
    kc = Kubectl(kube_settings)
    install_crds(kc, strimzi_crd_files)
    return kc


def install_crds(kc: Kubectl, strimzi_crd_files: list[Path]) -> None:
    """Apply this checkout's CulturePlatform CRD and Strimzi's real CRDs; wait until established.

    The control plane is shared: another checkout's tests may have applied other versions since."""
    kc.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    for path in strimzi_crd_files:
        kc.run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    kc.run(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/cultureplatforms.platform.culture.dev",
        *(f"crd/{name}" for name in strimzi_crds.CRD_NAMES),
    )


@pytest.fixture
def namespace(k: Kubectl, unique: str) -> Iterator[str]:
    """A fresh namespace for one test (deleted afterwards, without waiting)."""
    ns = f"op-{unique}"
    k.run("create", "namespace", ns)
    # pods need the namespace's default ServiceAccount (made by the controller-manager)
    wait_until_sync(lambda: k.json("serviceaccount", "default", "-n", ns), 30, "default ServiceAccount")
    yield ns
    # The operator of the test is stopped by now: a CulturePlatform still carrying its finalizer
    # would hold the namespace in Terminating for ever (and keep the API server busy retrying).
    names = k.run("get", "cultureplatforms", "-n", ns, "-o", "name", check=False).stdout.split()
    for name in names:
        k.run("patch", name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False)
    k.run("delete", "namespace", ns, "--wait=false", check=False)


class Operator:
    """`python -m culture_operator --standalone -n NS` as a subprocess, logging to a file."""

    def __init__(self, k: Kubectl, namespaces: list[str], log: Path, drift_seconds: float = 2.0) -> None:
        self.k, self.namespaces, self.log, self.drift = k, namespaces, log, drift_seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        """Start the operator (returns at once; tests poll for its effects)."""
        args = [sys.executable, "-m", "culture_operator", "--standalone", "--verbose"]
        for ns in self.namespaces:
            args += ["-n", ns]
        env = {**self.k.env, "CULTURE_OPERATOR_DRIFT_SECONDS": str(self.drift)}
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=env)
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop it (SIGKILL with kill=True: no clean shutdown, like a crashed pod)."""
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._out.close()
        self.proc = None

    def tail(self, lines: int = 60) -> str:
        """The end of the operator's log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def operator(k: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    """The operator watching only this test's namespace, drift timer every 2 s."""
    op = Operator(k, [namespace], tmp_path / "operator.log").start()
    yield op
    op.stop()
    print("---- operator log (tail) ----\n" + op.tail())
