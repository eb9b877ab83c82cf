"""Cluster DNS: CoreDNS, built from its Go module (`github.com/coredns/coredns`, build module
`stack/culture_stack/kube_build/coredns`), in an image made `FROM scratch` by buildah and pushed to the
local registry, deployed as kind deploys it (`config.coredns_manifests`: Deployment + `kube-dns`
Service at `config.CLUSTER_DNS` in kube-system). The kubelet gives every pod that address."""

from __future__ import annotations

import time

from culture_stack.cluster import components, config, images
from culture_stack.pki import SERVICE_IP
from culture_stack.server import Context, StackError, Status, say
from culture_stack.servers import kube

BUILD_DIR = kube.BUILD_DIR / "coredns"
PACKAGE = "github.com/coredns/coredns"
NAME = "coredns"
NAMESPACE = "kube-system"
#: what `status` reports for it (a pod of the cluster, not a process of the stack)
STATUS_NAME = "cluster-dns"


def build_image(ctx: Context, *, force: bool = False) -> str:
    """The CoreDNS image in the local registry: its static binary `FROM scratch`, as upstream's."""
    return images.build_go_image(ctx, NAME, BUILD_DIR, PACKAGE, config.COREDNS_VERSION, config.COREDNS_IMAGE,
                                 force=force)


def _available(dep: dict | None) -> bool:
    status = (dep or {}).get("status", {})
    return status.get("availableReplicas", 0) >= 1 and status.get("updatedReplicas", 0) >= 1


def _answer(name: str = f"kubernetes.default.svc.{config.CLUSTER_DOMAIN}") -> list[str]:
    """The A records CoreDNS gives `name`, asked at the kube-dns Service address (kube-proxy's rules
    send the host's own packets for a Service address to the pod too)."""
    import dns.message
    import dns.query

    resp = dns.query.udp(dns.message.make_query(name, "A"), config.CLUSTER_DNS, timeout=1.0)
    return [r.to_text() for rrset in resp.answer for r in rrset]


def up(ctx: Context, timeout: float = 300.0) -> None:
    """Build and push the image if missing, apply the manifests, wait until the Service answers."""
    components.apply(ctx, config.coredns_manifests(build_image(ctx)))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if _available(components.deployment(ctx, NAMESPACE, NAME)) and SERVICE_IP in _answer():
                say(f"  cluster: CoreDNS answers at {config.CLUSTER_DNS} (kube-dns)")
                return
        except Exception as exc:  # noqa: BLE001 - DNS timeouts, a pod not scheduled yet: try again
            last = f" (last: {exc})"
        time.sleep(1.0)
    pods = components.kubectl(ctx, "get", "pods", "-n", NAMESPACE, "-l", "k8s-app=kube-dns", "-o", "wide",
                              check=False).stdout
    raise StackError(f"CoreDNS did not answer at {config.CLUSTER_DNS} within {timeout:.0f}s{last}\n{pods}")


def status(ctx: Context) -> Status:
    """One status row: the Deployment's pod and whether kube-dns answers, with CoreDNS's version."""
    healthy, version, detail = False, "", ""
    try:
        dep = components.deployment(ctx, NAMESPACE, NAME)
        if dep:
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            version = f"CoreDNS {image.rpartition(':')[2]}"
            answers = _answer() if _available(dep) else []
            healthy = SERVICE_IP in answers
            detail = f"kube-dns {config.CLUSTER_DNS}: kubernetes.default -> {', '.join(answers) or '-'}"
    except Exception as exc:  # noqa: BLE001 - status reports, it never fails
        detail = str(exc)
    return Status(name=STATUS_NAME, port=config.DNS_PORT, pid=None, running=bool(version), healthy=healthy,
                  version=version, detail=detail)

