"""The node's processes, as stack servers (so they share the stack's pid files, logs and health
waits): the local registry, containerd, the pod gateway, kubelet, kube-scheduler and kube-proxy.
Cluster DNS runs on the node as a pod (`culture_stack.cluster.coredns`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from culture_stack import debian, process, tools
from culture_stack.cluster import config
from culture_stack.pki import build_kubeconfig, cert_fresh, make_cert, write_private
from culture_stack.ports import HOST
from culture_stack.server import Context, Launch, Server, StackError
from culture_stack.servers import kube

#: node binaries built from the same module directory and version as the API server
NODE_PACKAGES = {
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
}

#: what the pod gateway forwards: the API server and every server of the local stack a pod may use
GATEWAY_PORTS = (kube.KUBE_APISERVER, *config.STACK_PORTS)
assert config.APISERVER_GATEWAY_PORT == kube.KUBE_APISERVER

CONTAINERD_SOCKET = Path("/run/culture-platform/containerd/containerd.sock")


def install_node_binaries(ctx: Context) -> Path:
    """Build kubelet, kube-scheduler and kube-proxy next to kube-apiserver (same module, same stamp).

    Cold on 2 cores this adds about 15 minutes to the control plane's build (shared build cache).
    """
    with kube._build_lock(ctx):  # the same lock: one Go build of the module at a time
        out = kube.bin_dir(ctx)
        stamp = out / ".node-build-key"
        key = kube._build_key()
        if (stamp.read_text().strip() if stamp.exists() else "") != key:
            for b in NODE_PACKAGES:
                (out / b).unlink(missing_ok=True)
        elif all((out / b).exists() for b in NODE_PACKAGES):
            return out
        env = {"GOFLAGS": f"-mod=mod '-ldflags={kube.version_ldflags()}'"}
        tools.go_build(ctx, "kube", kube.BUILD_DIR, NODE_PACKAGES, env=env)
        stamp.write_text(key + "\n")
        return out


# -- credentials -----------------------------------------------------------------------------------

#: client and serving certificates of the node components, signed by the control plane's CA
NODE_CERTS: dict[str, dict[str, Any]] = {
    "kubelet-client": {"common_name": f"system:node:{config.NODE_NAME}", "organizations": ("system:nodes",),
                       "client": True},
    "kubelet-serving": {"common_name": config.NODE_NAME, "server": True,
                        "dns_names": (config.NODE_NAME, "localhost"), "ips": (config.GATEWAY, HOST)},
    # the bootstrap RBAC policy binds these user names to their components' roles
    "scheduler": {"common_name": "system:kube-scheduler", "client": True},
    # without one the scheduler serves a self-signed certificate that nothing here can verify
    "scheduler-serving": {"common_name": "kube-scheduler", "server": True, "dns_names": ("localhost",),
                          "ips": (HOST,)},
    "kube-proxy": {"common_name": "system:kube-proxy", "client": True},
}


def pki_dir(ctx: Context) -> Path:
    return ctx.data("cluster") / "pki"


def kubeconfig_for(ctx: Context, who: str) -> Path:
    return ctx.data("cluster") / f"{who}.kubeconfig"


def ensure_credentials(ctx: Context) -> None:
    """Issue the node's certificates (once) and write one kubeconfig per component."""
    cpki = kube.ensure_pki(ctx)
    ca, ca_key = (cpki / "ca.crt").read_bytes(), (cpki / "ca.key").read_bytes()
    pki = pki_dir(ctx)
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    for stem, spec in NODE_CERTS.items():
        crt, key = pki / f"{stem}.crt", pki / f"{stem}.key"
        if not (key.exists() and cert_fresh(crt)):
            cert_pem, key_pem = make_cert(ca, ca_key, **spec)
            write_private(key, key_pem)
            crt.write_bytes(cert_pem)
    for who, stem, user in (("kubelet", "kubelet-client", f"system:node:{config.NODE_NAME}"),
                            ("scheduler", "scheduler", "system:kube-scheduler"),
                            ("kube-proxy", "kube-proxy", "system:kube-proxy")):
        cfg = build_kubeconfig(server=kube.SERVER_URL, ca_pem=ca,
                               cert_pem=(pki / f"{stem}.crt").read_bytes(),
                               key_pem=(pki / f"{stem}.key").read_bytes(), user=user)
        write_private(kubeconfig_for(ctx, who), yaml.safe_dump(cfg, sort_keys=False).encode())


def _http_ok(url: str, ctx: Context | None = None, timeout: float = 2.0) -> bytes:
    """GET a loopback health/metrics URL (HTTPS verified against the local CA, no client certificate)."""
    return kube._get(url, ctx, client_cert=False, timeout=timeout)


def _build_info(metrics: str, name: str) -> str:
    for line in metrics.splitlines():
        if line.startswith("kubernetes_build_info{"):
            for part in line[line.index("{") + 1:line.rindex("}")].split(","):
                key, _, value = part.partition("=")
                if key == "git_version":
                    return f"{name} {value.strip(chr(34))}"
    raise StackError(f"{name} /metrics has no kubernetes_build_info")


# -- the servers -----------------------------------------------------------------------------------


class Registry(Server):
    """The image registry (Debian's docker-registry, i.e. distribution v2), HTTP on 127.0.0.1:5000."""

    name = "registry"
    port = config.REGISTRY_PORT
    # after_start builds the pause image with buildah
    commands = ("docker-registry", "buildah", "fuse-overlayfs", "newuidmap")  # = images.BUILDAH

    def init_data(self, ctx: Context) -> None:
        conf = ctx.conf(self.name) / "config.yml"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(yaml.safe_dump({
            "version": 0.1,
            "log": {"level": "warn"},
            # images are build artefacts: they live in the cache and survive `cluster down`
            "storage": {"filesystem": {"rootdirectory": str(ctx.tool("cluster", "registry"))},
                        "delete": {"enabled": True}},
            "http": {"addr": f"{HOST}:{config.REGISTRY_PORT}", "debug": {"addr": ""}},
        }))

    def launch(self, ctx: Context) -> Launch:
        exe = debian.need("docker-registry")
        return Launch([exe, "serve", str(ctx.conf(self.name) / "config.yml")])

    def healthy(self, ctx: Context) -> bool:
        return _http_ok(f"http://{config.REGISTRY}/v2/") is not None

    def after_start(self, ctx: Context) -> None:
        # containerd pulls the sandbox image from here on the first pod; there is no other source
        from culture_stack.cluster import images

        images.build_pause(ctx)

    def version(self, ctx: Context) -> str:
        with urllib.request.urlopen(f"http://{config.REGISTRY}/v2/", timeout=2) as resp:
            return "registry API " + resp.headers.get("Docker-Distribution-Api-Version", "?")

    def settings(self) -> dict[str, Any]:
        return {"registry": config.REGISTRY}


class Containerd(Server):
    """containerd (Debian) with its own config, root and socket; the CRI plugin uses runc and the
    bridge CNI plugins."""

    name = "containerd"
    port = 0  # a unix socket, no TCP port
    stop_timeout = 30.0
    # containerd runs runc and the CNI plugins; the bridge plugin runs iptables (masquerade), and our
    # culture-stack-ports plugin runs sysctl and iptables inside each pod's network namespace
    commands = ("containerd", "ctr", "runc", "bridge", "host-local", "loopback", "portmap",
                "iptables", "ip6tables", "iptables-save", "sysctl")

    def cni_conf_dir(self, ctx: Context) -> Path:
        return ctx.conf("cni")

    def cni_bin_dir(self, ctx: Context) -> Path:
        """Debian's CNI plugins plus ours, in one directory (containerd 1.6 takes a single one)."""
        system = Path(debian.need("bridge")).parent
        out = ctx.conf("cni-bin")
        out.mkdir(parents=True, exist_ok=True)
        for plugin in system.iterdir():
            link = out / plugin.name
            if not link.is_symlink():
                link.unlink(missing_ok=True)
                link.symlink_to(plugin)
        # a copy, not a pointer into this checkout: the node outlives the clone that started it (a CI
        # clone deleted while its node ran made every new pod's sandbox fail with "can't open file")
        ours = out / "culture-stack-ports"
        script = Path(__file__).resolve().parent / "cni_stack_ports.py"
        ours.unlink(missing_ok=True)
        ours.write_bytes(script.read_bytes())  # `#!/usr/bin/python3 -I`, standard library only
        ours.chmod(0o755)
        return out

    def init_data(self, ctx: Context) -> None:
        conf_dir = self.cni_conf_dir(ctx)
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "10-culture.conflist").write_text(json.dumps(config.cni_conflist(), indent=2) + "\n")
        cni_bin = self.cni_bin_dir(ctx)
        conf = ctx.conf(self.name) / "config.toml"
        conf.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERD_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(config.containerd_config(
            root=ctx.data(self.name), state=CONTAINERD_SOCKET.parent / "state", socket=CONTAINERD_SOCKET,
            cni_conf_dir=conf_dir, cni_bin_dir=cni_bin, runc=debian.need("runc")))

    def launch(self, ctx: Context) -> Launch:
        return Launch([debian.need("containerd"), "--config",
                       str(ctx.conf(self.name) / "config.toml")])

    def _ctr(self, *args: str) -> str:
        return subprocess.run([debian.need("ctr"), "--address", str(CONTAINERD_SOCKET), *args],
                              capture_output=True, text=True, timeout=10, check=True).stdout

    def healthy(self, ctx: Context) -> bool:
        return "Server:" in self._ctr("version")

    def version(self, ctx: Context) -> str:
        out = self._ctr("version").split("Server:", 1)[1]
        for line in out.splitlines():
            if line.strip().startswith("Version:"):
                return "containerd " + line.split(":", 1)[1].strip()
        return "containerd"

    def settings(self) -> dict[str, Any]:
        return {"socket": str(CONTAINERD_SOCKET)}


class PodGateway(Server):
    """TCP forwarders on the gateway address to the API server and the stack's servers."""

    name = "pod-gateway"
    port = 0

    def launch(self, ctx: Context) -> Launch:
        return Launch([sys.executable, "-m", "culture_stack.cluster.gateway", "--listen", config.GATEWAY,
                       *map(str, GATEWAY_PORTS)])

    def healthy(self, ctx: Context) -> bool:
        return process.port_open(config.APISERVER_GATEWAY_PORT, config.GATEWAY, timeout=1.0)

    def version(self, ctx: Context) -> str:
        return f"forwarding {config.GATEWAY}:{{{','.join(map(str, GATEWAY_PORTS))}}} -> {HOST}"

    def settings(self) -> dict[str, Any]:
        return {"address": config.GATEWAY, "ports": list(GATEWAY_PORTS)}


class _NodeComponent(Server):
    """A node binary built from the API server's Kubernetes module, configured by one YAML file."""

    def install(self, ctx: Context) -> None:
        install_node_binaries(ctx)

    def config_path(self, ctx: Context) -> Path:
        return ctx.conf(self.name) / "config.yaml"

    def write_config(self, ctx: Context, cfg: dict[str, Any]) -> None:
        path = self.config_path(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))


class Kubelet(_NodeComponent):
    """The kubelet, registering the node `culture-node` with InternalIP = the gateway address."""

    name = "kubelet"
    port = config.KUBELET_HEALTHZ
    depends_on = ("containerd", "registry", "pod-gateway")
    start_timeout = 180.0
    # its canary chains, and mount/umount (base system) for volumes
    commands = ("iptables", "ip6tables", "iptables-save", "iptables-restore")

    def init_data(self, ctx: Context) -> None:
        ensure_credentials(ctx)
        pki = pki_dir(ctx)
        cfg = config.kubelet_config(ca_file=kube.pki_dir(ctx) / "ca.crt", cert=pki / "kubelet-serving.crt",
                                    key=pki / "kubelet-serving.key", resolv_conf="/etc/resolv.conf")
        cfg["containerRuntimeEndpoint"] = f"unix://{CONTAINERD_SOCKET}"
        self.write_config(ctx, cfg)

    def launch(self, ctx: Context) -> Launch:
        return Launch([
            str(kube.bin_dir(ctx) / "kubelet"),
            f"--config={self.config_path(ctx)}",
            f"--kubeconfig={kubeconfig_for(ctx, 'kubelet')}",
            f"--root-dir={ctx.data(self.name)}",
            f"--node-ip={config.GATEWAY}",
            f"--hostname-override={config.NODE_NAME}",
            "--v=1",
        ])

    def healthy(self, ctx: Context) -> bool:
        if _http_ok(f"http://{HOST}:{config.KUBELET_HEALTHZ}/healthz").strip() != b"ok":
            return False
        return node_ready(ctx)

    def version(self, ctx: Context) -> str:
        node = _kubectl_json(ctx, "get", "node", config.NODE_NAME)
        return "kubelet " + node["status"]["nodeInfo"]["kubeletVersion"]

    def settings(self) -> dict[str, Any]:
        return {"node": config.NODE_NAME, "internal_ip": config.GATEWAY, "pod_cidr": config.POD_CIDR,
                "containerd_socket": str(CONTAINERD_SOCKET)}


class KubeScheduler(_NodeComponent):
    """kube-scheduler from the same Kubernetes build."""

    name = "kube-scheduler"
    port = config.SCHEDULER_PORT

    def init_data(self, ctx: Context) -> None:
        ensure_credentials(ctx)
        self.write_config(ctx, config.scheduler_config(kubeconfig=kubeconfig_for(ctx, "scheduler")))

    def launch(self, ctx: Context) -> Launch:
        kc, pki = kubeconfig_for(ctx, "scheduler"), pki_dir(ctx)
        return Launch([str(kube.bin_dir(ctx) / "kube-scheduler"),
                       f"--config={self.config_path(ctx)}",
                       f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
                       f"--bind-address={HOST}", f"--secure-port={config.SCHEDULER_PORT}",
                       f"--tls-cert-file={pki / 'scheduler-serving.crt'}",
                       f"--tls-private-key-file={pki / 'scheduler-serving.key'}", "--v=1"])

    def healthy(self, ctx: Context) -> bool:
        return _http_ok(f"https://{HOST}:{config.SCHEDULER_PORT}/healthz", ctx) == b"ok"

    def version(self, ctx: Context) -> str:
        # /metrics needs an authorised user: ask with the admin certificate
        metrics = kube._get(f"https://{HOST}:{config.SCHEDULER_PORT}/metrics", ctx)
        return _build_info(metrics.decode(), "kube-scheduler")

    def settings(self) -> dict[str, Any]:
        return {"healthz": f"https://{HOST}:{config.SCHEDULER_PORT}/healthz"}


class KubeProxy(_NodeComponent):
    """kube-proxy in iptables mode (IPVS is not in this kernel)."""

    name = "kube-proxy"
    port = config.PROXY_HEALTHZ
    # it waits (up to 30s) for its Node object to learn the node's IP: start after the kubelet
    depends_on = ("kubelet",)
    # iptables mode: it reads and writes rules with these, and clears stale UDP flows with conntrack
    commands = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "conntrack")

    def ports(self) -> tuple[int, ...]:
        return (config.PROXY_HEALTHZ, config.PROXY_METRICS)

    def init_data(self, ctx: Context) -> None:
        ensure_credentials(ctx)
        self.write_config(ctx, config.kube_proxy_config(kubeconfig=kubeconfig_for(ctx, "kube-proxy")))

    def launch(self, ctx: Context) -> Launch:
        return Launch([str(kube.bin_dir(ctx) / "kube-proxy"),
                       f"--config={self.config_path(ctx)}", "--v=1"])

    def healthy(self, ctx: Context) -> bool:
        # /healthz answers 503 while the node is not registered yet ("nodeEligible": false); the
        # proxier's own health is the "healthy" field
        import urllib.error

        try:
            body = _http_ok(f"http://{HOST}:{config.PROXY_HEALTHZ}/healthz")
        except urllib.error.HTTPError as exc:
            body = exc.read()
        return json.loads(body).get("healthy") is True

    def version(self, ctx: Context) -> str:
        return _build_info(_http_ok(f"http://{HOST}:{config.PROXY_METRICS}/metrics").decode(), "kube-proxy")

    def settings(self) -> dict[str, Any]:
        return {"mode": "iptables", "healthz": f"http://{HOST}:{config.PROXY_HEALTHZ}/healthz"}


def node_components() -> list[Server]:
    """The cluster's own servers, in start order."""
    return [Registry(), Containerd(), PodGateway(), KubeScheduler(), KubeProxy(), Kubelet()]


# -- small API helpers -----------------------------------------------------------------------------


def kubectl(ctx: Context, *args: str, input_text: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the stack's kubectl with the admin kubeconfig."""
    result = subprocess.run([str(kube.kubectl_path(ctx)), f"--kubeconfig={kube.kubeconfig_path(ctx)}", *args],
                            input=input_text, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise StackError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def apply(ctx: Context, docs: list[dict[str, Any]]) -> None:
    """Server-side apply of the cluster's own objects (field manager culture-cluster)."""
    kubectl(ctx, "apply", "--server-side", "--force-conflicts", "--field-manager=culture-cluster",
            "-f", "-", input_text=yaml.safe_dump_all(docs))


def deployment(ctx: Context, namespace: str, name: str) -> dict[str, Any] | None:
    """A Deployment of the cluster's own (kube-system, local-path-storage), or None."""
    out = kubectl(ctx, "get", "deployment", name, "-n", namespace, "-o", "json", check=False).stdout
    return json.loads(out) if out else None


def _kubectl_json(ctx: Context, *args: str) -> dict[str, Any]:
    return json.loads(kubectl(ctx, *args, "-o", "json", timeout=10).stdout)


def node_ready(ctx: Context) -> bool:
    """True when the node is registered and its Ready condition is True."""
    try:
        node = _kubectl_json(ctx, "get", "node", config.NODE_NAME)
    except StackError:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


