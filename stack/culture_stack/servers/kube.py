"""The Kubernetes control plane of the local stack: etcd, kube-apiserver and kube-controller-manager.

etcd comes from the Debian package. kube-apiserver, kube-controller-manager and kubectl are built
from the published `k8s.io/kubernetes` Go module (the build-only module in `../kube_build/`), helm 3
from `helm.sh/helm/v3` (its own build module in `../kube_build/helm/`); all binaries land in
`<cache>/kube/bin`. A local PKI (CA, serving and client certificates, the service-account key pair)
is made once under `<state>/data/kube/pki` (culture_stack.pki) and kept across down/up, so kubeconfigs
stay valid.

Other code finds the tools through `kubectl_path()`, `helm_path()` and `kubeconfig_path()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from culture_stack import debian, locks, tools
from culture_stack import pki as pki_files
from culture_stack.pki import FRONT_PROXY_CLIENT, build_kubeconfig, write_private
from culture_stack.ports import ETCD, ETCD_PEER, HOST, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER
from culture_stack.server import Context, Launch, Server, StackError, say

#: the Kubernetes release everything is built from; its staging modules are pinned to v0.<minor>.<patch>
KUBE_VERSION = "v1.34.4"
#: helm 3 release; its go.mod is in kube_build/helm (v3.19.x is the line built on Kubernetes 1.34)
HELM_VERSION = "v3.19.5"
#: the in-cluster service range (only allocated from; no traffic goes there without nodes)
SERVICE_CIDR = "10.96.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: how long a process waits for another's Kubernetes build (cold on a busy 2-core machine: about an hour)
BUILD_TIMEOUT = 2 * 3600.0
BUILD_DIR = Path(__file__).resolve().parent.parent / "kube_build"
HELM_BUILD_DIR = BUILD_DIR / "helm"

SERVER_URL = f"https://{HOST}:{KUBE_APISERVER}"

# binary name -> Go package, built from BUILD_DIR
_KUBE_PACKAGES = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}
_HELM_PACKAGES = {"helm": "helm.sh/helm/v3/cmd/helm"}


# -- where things are ---------------------------------------------------------------------------------


def bin_dir(ctx: Context | None = None) -> Path:
    """Where the built Kubernetes binaries (and helm) live."""
    return (ctx or Context.default()).tool("kube", "bin")


def kubectl_path(ctx: Context | None = None) -> Path:
    """The kubectl built from the same Kubernetes release as the API server."""
    return bin_dir(ctx) / "kubectl"


def helm_path(ctx: Context | None = None) -> Path:
    """The helm 3 binary."""
    return bin_dir(ctx) / "helm"


def kubeconfig_path(ctx: Context | None = None) -> Path:
    """The admin kubeconfig (user `admin`, group system:masters) for the local API server."""
    return (ctx or Context.default()).state / "kubeconfig"


def pki_dir(ctx: Context) -> Path:
    return ctx.data("kube") / "pki"


def controller_manager_kubeconfig_path(ctx: Context | None = None) -> Path:
    return (ctx or Context.default()).data("kube") / "controller-manager.kubeconfig"


# -- building the binaries ----------------------------------------------------------------------------


def version_ldflags(kube_version: str = KUBE_VERSION, helm_version: str = HELM_VERSION) -> str:
    """Linker flags that stamp the release into the binaries, as the upstream build scripts do.

    Without them `GET /version` says v0.0.0-master and `kubectl version` warns about skew.
    """
    major, minor = kube_version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={kube_version}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    # helm: its own version and the Kubernetes version its templates assume (`.Capabilities`)
    flags.append(f"-X helm.sh/helm/v3/internal/version.version={helm_version}")
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {pkg}.k8sVersionMajor={major}", f"-X {pkg}.k8sVersionMinor={minor}"]
    return " ".join(flags)


def _build_key() -> str:
    """Changes whenever the binaries would come out different (module files or version stamps)."""
    h = hashlib.sha256(version_ldflags().encode())
    for d in (BUILD_DIR, HELM_BUILD_DIR):
        for name in ("go.mod", "go.sum"):
            f = d / name
            h.update(f.read_bytes() if f.exists() else b"-")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _build_lock(ctx: Context) -> Iterator[None]:
    """One build at a time: the stack installs servers in parallel threads, and two recipes here
    need the same binaries."""
    with locks.held(ctx.tool("kube", ".build.lock"),
                    f"the Kubernetes build lock ({ctx.tool('kube', 'build.log')})", timeout=BUILD_TIMEOUT):
        yield


def install_binaries(ctx: Context) -> Path:
    """Build kube-apiserver, kube-controller-manager, kubectl and helm into `<cache>/kube/bin`.

    Idempotent; a stamp keyed by the build modules makes a second call instant and a version
    change rebuild. Measured cold on 2 busy cores: kube-apiserver about 20 min (module download
    and most compiling), then kube-controller-manager 3.5 min, kubectl 2.5 min, helm about 7 min.
    """
    with _build_lock(ctx):
        out = bin_dir(ctx)
        stamp = out / ".build-key"
        key = _build_key()
        wanted = [*_KUBE_PACKAGES, *_HELM_PACKAGES]
        current = stamp.read_text().strip() if stamp.exists() else ""
        if current != key:
            if any((out / b).exists() for b in wanted):
                say("  kube: build modules changed, rebuilding the binaries")
            for b in wanted:  # go_build skips existing binaries; stale ones must go
                (out / b).unlink(missing_ok=True)
        elif all((out / b).exists() for b in wanted):
            return out
        env = {"GOFLAGS": f"-mod=mod '-ldflags={version_ldflags()}'"}
        say(f"  kube: building Kubernetes {KUBE_VERSION} (kube-apiserver, kube-controller-manager, "
            f"kubectl) and helm {HELM_VERSION} with Go; log in {ctx.tool('kube', 'build.log')}")
        tools.go_build(ctx, "kube", BUILD_DIR, _KUBE_PACKAGES, env=env)
        tools.go_build(ctx, "kube", HELM_BUILD_DIR, _HELM_PACKAGES, env=env)
        stamp.write_text(key + "\n")
        return out


# -- the PKI (culture_stack.pki) and the kubeconfigs ---------------------------------------------------


def ensure_pki(ctx: Context) -> Path:
    """The control plane's certificates and keys in <state>/data/kube/pki (created once, renewed when due)."""
    return pki_files.ensure_pki(pki_dir(ctx))


def ensure_kubeconfigs(ctx: Context) -> None:
    """Write the admin kubeconfig (`<state>/kubeconfig`) and the controller manager's (rewritten each
    start so they always carry the current certificates)."""
    pki = ensure_pki(ctx)
    ca = (pki / "ca.crt").read_bytes()
    for path, stem, user in ((kubeconfig_path(ctx), "admin", "admin"),
                             (controller_manager_kubeconfig_path(ctx), "controller-manager",
                              "system:kube-controller-manager")):
        config = build_kubeconfig(server=SERVER_URL, ca_pem=ca, cert_pem=(pki / f"{stem}.crt").read_bytes(),
                                  key_pem=(pki / f"{stem}.key").read_bytes(), user=user)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        write_private(tmp, yaml.safe_dump(config, sort_keys=False).encode())
        tmp.replace(path)


# -- talking to the servers -------------------------------------------------------------------------------


def _get(url: str, ctx: Context | None = None, *, client_cert: bool = True, timeout: float = 3.0) -> bytes:
    """GET over HTTP(S); HTTPS is verified against the local CA and presents the admin certificate."""
    context = None
    if url.startswith("https:"):
        pki = pki_dir(ctx or Context.default())
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if client_cert:
            context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
        return resp.read()


# -- the servers -------------------------------------------------------------------------------------------


class Etcd(Server):
    """etcd from Debian's etcd-server package: one member, plain HTTP on 127.0.0.1."""

    name = "etcd"
    port = ETCD
    start_timeout = 60.0
    commands = ("etcd",)

    def ports(self) -> tuple[int, ...]:
        return (ETCD, ETCD_PEER)

    def init_data(self, ctx: Context) -> None:
        data = ctx.data(self.name)
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)  # etcd refuses (or warns about) a data dir others can read

    def launch(self, ctx: Context) -> Launch:
        client, peer = f"http://{HOST}:{ETCD}", f"http://{HOST}:{ETCD_PEER}"
        return Launch([
            debian.need("etcd"),
            "--name=culture", f"--data-dir={ctx.data(self.name)}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=culture={peer}", "--initial-cluster-state=new",
            "--logger=zap", "--log-outputs=stderr",
            # the API server compacts on its own; this only bounds the db size in long-lived stacks
            "--auto-compaction-mode=periodic", "--auto-compaction-retention=1h",
            "--quota-backend-bytes=4294967296",
        ])

    def healthy(self, ctx: Context) -> bool:
        return json.loads(_get(f"http://{HOST}:{ETCD}/health")).get("health") == "true"

    def version(self, ctx: Context) -> str:
        return "etcd " + json.loads(_get(f"http://{HOST}:{ETCD}/version"))["etcdserver"]

    def settings(self) -> dict[str, Any]:
        return {"host": HOST, "port": ETCD, "endpoint": f"http://{HOST}:{ETCD}"}


def apiserver_args(ctx: Context) -> list[str]:
    """kube-apiserver flags: loopback only, client-certificate auth, Node+RBAC, local etcd."""
    pki = pki_dir(ctx)
    return [
        f"--etcd-servers=http://{HOST}:{ETCD}",
        f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={KUBE_APISERVER}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--authorization-mode=Node,RBAC",
        # how the API server authenticates to kubelets (logs, exec, port-forward) when a node runs
        f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",  # the node's name is not in DNS
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # the aggregation layer (front proxy): request headers are trusted only from this client
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--enable-aggregator-routing=true",  # no kube-proxy needed to reach aggregated APIs
        "--allow-privileged=true",
        # the `kubernetes` Service's endpoints would name 127.0.0.1, which Endpoints validation
        # rejects; nothing in this node-less cluster needs them
        "--endpoint-reconciler-type=none",
        # on stop, close open watches after a short drain instead of holding them until the 60 s
        # request timeout (every controller and operator keeps some open)
        "--shutdown-watch-termination-grace-period=5s",
        "--profiling=false",
        "--v=1",
    ]


class KubeApiServer(Server):
    """kube-apiserver built from k8s.io/kubernetes, on https://127.0.0.1:16443."""

    name = "kube-apiserver"
    port = KUBE_APISERVER
    depends_on = ("etcd",)
    start_timeout = 240.0

    def install(self, ctx: Context) -> None:
        install_binaries(ctx)

    def init_data(self, ctx: Context) -> None:
        ensure_kubeconfigs(ctx)

    def launch(self, ctx: Context) -> Launch:
        return Launch([str(bin_dir(ctx) / "kube-apiserver"), *apiserver_args(ctx)])

    def healthy(self, ctx: Context) -> bool:
        # /readyz includes the RBAC bootstrap and CRD post-start hooks: ready means usable
        return _get(f"{SERVER_URL}/readyz", ctx).strip() == b"ok"

    def version(self, ctx: Context) -> str:
        return "Kubernetes " + json.loads(_get(f"{SERVER_URL}/version", ctx))["gitVersion"]

    def settings(self) -> dict[str, Any]:
        ctx = Context.default()
        return {"server": SERVER_URL, "kubeconfig": str(kubeconfig_path(ctx)),
                "kubectl": str(kubectl_path(ctx)), "helm": str(helm_path(ctx)),
                "version": KUBE_VERSION, "ca": str(pki_dir(ctx) / "ca.crt")}


def controller_manager_args(ctx: Context) -> list[str]:
    """kube-controller-manager flags: every default controller (the garbage collector included),
    one service account per controller, serving /healthz on 127.0.0.1."""
    pki = pki_dir(ctx)
    kubeconfig = controller_manager_kubeconfig_path(ctx)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--bind-address={HOST}", f"--secure-port={KUBE_CONTROLLER_MANAGER}",
        f"--tls-cert-file={pki / 'controller-manager-serving.crt'}",
        f"--tls-private-key-file={pki / 'controller-manager-serving.key'}",
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",  # a single instance: no lease to wait for at start
        "--profiling=false",
        "--v=1",
    ]


class KubeControllerManager(Server):
    """kube-controller-manager built from k8s.io/kubernetes (garbage collector, namespaces, ...)."""

    name = "kube-controller-manager"
    port = KUBE_CONTROLLER_MANAGER
    depends_on = ("kube-apiserver",)
    start_timeout = 120.0

    def install(self, ctx: Context) -> None:
        install_binaries(ctx)

    def init_data(self, ctx: Context) -> None:
        ensure_kubeconfigs(ctx)

    def launch(self, ctx: Context) -> Launch:
        return Launch([str(bin_dir(ctx) / "kube-controller-manager"), *controller_manager_args(ctx)])

    def healthy(self, ctx: Context) -> bool:
        return _get(f"https://{HOST}:{KUBE_CONTROLLER_MANAGER}/healthz", ctx).strip() == b"ok"

    def version(self, ctx: Context) -> str:
        # the controller manager has no /version; its build info is a metric
        metrics = _get(f"https://{HOST}:{KUBE_CONTROLLER_MANAGER}/metrics", ctx).decode()
        for line in metrics.splitlines():
            if line.startswith("kubernetes_build_info{"):
                for part in line[line.index("{") + 1:line.rindex("}")].split(","):
                    key, _, value = part.partition("=")
                    if key == "git_version":
                        return "kube-controller-manager " + value.strip('"')
        raise StackError("kube-controller-manager /metrics has no kubernetes_build_info")

    def settings(self) -> dict[str, Any]:
        ctx = Context.default()
        return {"server": SERVER_URL, "kubeconfig": str(controller_manager_kubeconfig_path(ctx)),
                "healthz": f"https://{HOST}:{KUBE_CONTROLLER_MANAGER}/healthz"}
