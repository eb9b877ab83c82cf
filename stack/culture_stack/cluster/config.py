"""The node's addresses, ports and configuration files: pure builders, no I/O.

Network design (why these addresses): pods live on the bridge `culture0` with the pod CIDR below.
The bridge's own address, GATEWAY, is a host-local, non-routable address that exists only while
the cluster is up; it is the node's InternalIP, the cluster DNS server's address, and where pods
reach the API server and the local stack's servers (the gateway forwarder listens there and
forwards to 127.0.0.1). Inside each pod, 127.0.0.1:<stack port> is redirected there too, so pods
use the same addresses as host processes (Kafka advertises 127.0.0.1:19092 to every client).
Nothing here listens on a LAN or public interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from culture_stack.ports import CASSANDRA, HOST, KAFKA, MONGO, NEO4J_BOLT, POSTGRES, REDIS, SMTP
from culture_stack.servers.kube import KUBE_VERSION, SERVICE_CIDR

#: the bridge every pod is plugged into, and the node's only non-loopback address
BRIDGE = "culture0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
#: pods reach the cluster DNS server on the gateway address (no extra Service needed)
CLUSTER_DNS = GATEWAY
CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "culture-node"

#: the local image registry (plain HTTP, loopback only: only containerd and buildah talk to it)
REGISTRY_PORT = 5000
REGISTRY = f"{HOST}:{REGISTRY_PORT}"
PAUSE_IMAGE = f"{REGISTRY}/culture/pause:3.10"
BASE_IMAGE = f"{REGISTRY}/culture/python-base:3.11-bookworm"

# the node components' own ports (health, metrics); all on 127.0.0.1 except the kubelet API,
# which the API server reaches at the node's InternalIP
KUBELET_PORT = 10250
KUBELET_HEALTHZ = 10248
SCHEDULER_PORT = 10259
PROXY_HEALTHZ = 10256
PROXY_METRICS = 10249
DNS_PORT = 53

#: the `kubernetes` Service's endpoint: the gateway forwarder's port for the API server
APISERVER_GATEWAY_PORT = 16443

#: the local stack's ports a pod reaches at 127.0.0.1 (the `culture-stack-ports` CNI plugin) and at
#: GATEWAY (the pod gateway): Kafka, PostgreSQL, Redis, MongoDB, Cassandra, Neo4j Bolt, SMTP
STACK_PORTS = (KAFKA, POSTGRES, REDIS, MONGO, CASSANDRA, NEO4J_BOLT, SMTP)

__all__ = ["KUBE_VERSION", "SERVICE_CIDR"]


def containerd_config(*, root: Path, state: Path, socket: Path, cni_conf_dir: Path,
                      cni_bin_dir: Path, runc: str) -> str:
    """containerd 1.6 config (version 2): cgroupfs, runc, the bridge CNI, the local registry.

    `restrict_oom_score_adj`: this machine lacks CAP_SYS_RESOURCE, so lowering a process's
    oom_score_adj fails and every sandbox would die with "can't get final child's PID from pipe".
    """
    return f"""version = 2
root = "{root}"
state = "{state}"
oom_score = 0

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  # pods' network namespaces under our state dir, so `down` finds (and unmounts) exactly ours
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{REGISTRY}"]
    endpoint = ["http://{REGISTRY}"]
"""


def cni_conflist() -> dict[str, Any]:
    """Bridge + host-local IPAM on the pod CIDR, portmap for hostPort, the stack's ports on the pod's
    loopback; containerd adds the loopback interface itself."""
    return {
        "cniVersion": "1.0.0",
        "name": "culture-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,  # a pod reaching its own Service's ClusterIP comes back to itself
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            # 127.0.0.1:<stack port> inside a pod reaches the host's server (see cni_stack_ports.py)
            {"type": "culture-stack-ports", "gateway": GATEWAY, "ports": list(STACK_PORTS)},
        ],
    }


def kubelet_config(*, ca_file: Path, cert: Path, key: Path, resolv_conf: str) -> dict[str, Any]:
    """KubeletConfiguration for a cgroup v1 host without swap accounting or kernel modules."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 is in maintenance; recent kubelets refuse it unless told otherwise
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "address": GATEWAY,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": HOST,
        "healthzPort": KUBELET_HEALTHZ,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "authentication": {
            # the API server calls the kubelet (logs, exec) with the admin client certificate
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [CLUSTER_DNS],
        "resolvConf": resolv_conf,
        "podCIDR": POD_CIDR,
        # a /24 pod CIDR holds 253 pods; other tests on a shared dev machine may create many
        "maxPods": 250,
        "failSwapOn": False,
        "containerRuntimeEndpoint": "",  # set on the command line with the socket path
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        # a developer disk is rarely empty; do not evict pods for what the host itself uses
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                         "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
        "evictionPressureTransitionPeriod": "30s",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": True,
        "localStorageCapacityIsolation": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
        "registerNode": True,
        "nodeStatusReportFrequency": "10s",
        "nodeStatusUpdateFrequency": "10s",
        "syncFrequency": "10s",
    }


def kube_proxy_config(*, kubeconfig: Path, mode: str = "iptables") -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode (IPVS is absent), no conntrack sysctl writes."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": mode,
        "clusterCIDR": POD_CIDR,
        "bindAddress": HOST,
        "healthzBindAddress": f"{HOST}:{PROXY_HEALTHZ}",
        "metricsBindAddress": f"{HOST}:{PROXY_METRICS}",
        "hostnameOverride": NODE_NAME,
        # conntrack limits are kernel defaults here; writing them needs privileges we lack
        "conntrack": {"maxPerCore": 0, "min": 0},
        # reach NodePorts on the gateway address only, never on LAN interfaces
        "nodePortAddresses": [f"{GATEWAY}/32"],
    }


def scheduler_config(*, kubeconfig: Path) -> dict[str, Any]:
    """KubeSchedulerConfiguration: one scheduler, no leader election."""
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "leaderElection": {"leaderElect": False},
    }


def apiserver_endpoint_slice() -> dict[str, Any]:
    """The `kubernetes` Service's endpoints (the API server runs with the endpoint reconciler off,
    because it advertises 127.0.0.1, which pods cannot reach): the gateway forwarder."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes",
                       "endpointslice.kubernetes.io/managed-by": "culture-cluster"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [GATEWAY], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": APISERVER_GATEWAY_PORT, "protocol": "TCP"}],
    }


def apiserver_endpoints() -> dict[str, Any]:
    """The legacy Endpoints twin of `apiserver_endpoint_slice` (some clients still read these)."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": GATEWAY}],
                     "ports": [{"name": "https", "port": APISERVER_GATEWAY_PORT, "protocol": "TCP"}]}],
    }
