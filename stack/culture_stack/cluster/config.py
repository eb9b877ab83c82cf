"""The node's addresses, ports and configuration files: pure builders, no I/O.

Network design (why these addresses): pods live on the bridge `culture0` with the pod CIDR below.
The bridge's own address, GATEWAY, is a host-local, non-routable address that exists only while
the cluster is up; it is the node's InternalIP and where pods reach the API server and the
local stack's servers (the gateway forwarder listens there and forwards to 127.0.0.1). Inside
each pod, 127.0.0.1:<stack port> is redirected there too, so pods use the same addresses as host
processes (Kafka advertises 127.0.0.1:19092 to every client). Cluster DNS is CoreDNS in a pod behind
the kube-dns Service (CLUSTER_DNS), as on kind.
Nothing here listens on a LAN or public interface.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from culture_stack.ports import CASSANDRA, HOST, KAFKA, MONGO, NEO4J_BOLT, POSTGRES, REDIS, SMTP
from culture_stack.servers.kube import KUBE_VERSION, SERVICE_CIDR

#: the bridge every pod is plugged into, and the node's only non-loopback address
BRIDGE = "culture0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
#: cluster DNS: CoreDNS pods behind the `kube-dns` Service, at the address kubeadm (and so kind) gives
#: it: the tenth of the Service CIDR
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
COREDNS_VERSION = "1.15.0"
LOCAL_PATH_VERSION = "0.0.30"
#: the default StorageClass, named as kind names it
STORAGE_CLASS = "standard"
NODE_NAME = "culture-node"

#: the local image registry (plain HTTP, loopback only: only containerd and buildah talk to it)
REGISTRY_PORT = 5000
REGISTRY = f"{HOST}:{REGISTRY_PORT}"
PAUSE_IMAGE = f"{REGISTRY}/culture/pause:3.10"
COREDNS_IMAGE = f"{REGISTRY}/culture/coredns:{COREDNS_VERSION}"
LOCAL_PATH_IMAGE = f"{REGISTRY}/culture/local-path-provisioner:v{LOCAL_PATH_VERSION}"
BASE_IMAGE = f"{REGISTRY}/culture/python-base:3.11-bookworm"

# the node components' own ports (health, metrics); all on 127.0.0.1 except the kubelet API,
# which the API server reaches at the node's InternalIP
KUBELET_PORT = 10250
KUBELET_HEALTHZ = 10248
SCHEDULER_PORT = 10259
PROXY_HEALTHZ = 10256
PROXY_METRICS = 10249
DNS_PORT = 53
COREDNS_HEALTH_PORT = 8080
COREDNS_READY_PORT = 8181
COREDNS_METRICS_PORT = 9153

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


#: CoreDNS's configuration, as kubeadm writes it for kind (the kubernetes plugin answers the cluster
#: domain from the API; other names go to the node's resolver)
COREFILE = f""".:{DNS_PORT} {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :{COREDNS_METRICS_PORT}
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success {CLUSTER_DOMAIN}
       disable denial {CLUSTER_DOMAIN}
    }}
    loop
    reload
    loadbalance
}}
"""


def coredns_manifests(image: str = COREDNS_IMAGE) -> list[dict[str, Any]]:
    """Cluster DNS as kind deploys it (kubeadm's CoreDNS addon): the `coredns` ServiceAccount, its
    ClusterRole `system:coredns` and binding, the `coredns` ConfigMap (Corefile), the Deployment (one
    replica: one node) and the `kube-dns` Service at CLUSTER_DNS, all in kube-system."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    rbac = "rbac.authorization.k8s.io"
    probe = {"timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": ns}},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"]},
                   {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": ns},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": ns, "labels": labels},
         "spec": {
             "replicas": 1,
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
             "selector": {"matchLabels": labels},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "priorityClassName": "system-cluster-critical",
                     "serviceAccountName": "coredns",
                     # its own upstream is the node's resolver, never itself
                     "dnsPolicy": "Default",
                     "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                     {"key": "node-role.kubernetes.io/control-plane",
                                      "effect": "NoSchedule"}],
                     "containers": [{
                         "name": "coredns",
                         "image": image,
                         "imagePullPolicy": "IfNotPresent",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "resources": {"limits": {"memory": "170Mi"},
                                       "requests": {"cpu": "100m", "memory": "70Mi"}},
                         "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns",
                                           "readOnly": True}],
                         "ports": [{"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                                   {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
                                   {"name": "metrics", "containerPort": COREDNS_METRICS_PORT,
                                    "protocol": "TCP"},
                                   {"name": "liveness-probe", "containerPort": COREDNS_HEALTH_PORT,
                                    "protocol": "TCP"},
                                   {"name": "readiness-probe", "containerPort": COREDNS_READY_PORT,
                                    "protocol": "TCP"}],
                         "livenessProbe": {"httpGet": {"path": "/health", "port": "liveness-probe"},
                                           "initialDelaySeconds": 60, **probe},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": "readiness-probe"},
                                            "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1,
                                            "failureThreshold": 3},
                         # port 53: root with every capability dropped but NET_BIND_SERVICE (upstream's
                         # image gives its non-root binary that capability by a file attribute instead)
                         "securityContext": {"allowPrivilegeEscalation": False,
                                             "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                             "readOnlyRootFilesystem": True},
                     }],
                     "volumes": [{"name": "config-volume", "configMap": {
                         "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": ns,
                      "labels": {**labels, "kubernetes.io/cluster-service": "true",
                                 "kubernetes.io/name": "CoreDNS"},
                      "annotations": {"prometheus.io/port": str(COREDNS_METRICS_PORT),
                                      "prometheus.io/scrape": "true"}},
         "spec": {"selector": labels, "clusterIP": CLUSTER_DNS,
                  "ports": [{"name": "dns", "port": DNS_PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP"},
                            {"name": "metrics", "port": COREDNS_METRICS_PORT, "protocol": "TCP"}]}},
    ]


def local_path_manifests(image: str, helper_image: str, path: str) -> list[dict[str, Any]]:
    """Storage as kind has it: local-path-provisioner (upstream's deploy/local-path-storage.yaml of
    the same version: namespace local-path-storage, its ServiceAccount, Role, ClusterRole, bindings,
    Deployment and ConfigMap) serving the default StorageClass `standard`. Volumes are directories
    under `path` on the node, made and removed by a helper pod running `helper_image` (any image with
    a POSIX shell, mkdir and rm: upstream uses busybox, here the local Python base image)."""
    ns = "local-path-storage"
    rbac = "rbac.authorization.k8s.io"
    sa = "local-path-provisioner-service-account"
    labels = {"app": "local-path-provisioner"}
    helper_pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
        "spec": {"priorityClassName": "system-node-critical",
                 "tolerations": [{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists",
                                  "effect": "NoSchedule"}],
                 "containers": [{"name": "helper-pod", "image": helper_image,
                                 "imagePullPolicy": "IfNotPresent"}]},
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}},
        {"apiVersion": f"{rbac}/v1", "kind": "Role",
         "metadata": {"name": "local-path-provisioner-role", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole",
         "metadata": {"name": "local-path-provisioner-role"},
         "rules": [{"apiGroups": [""], "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods",
                                                     "pods/log"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": [""], "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                   {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": {"name": "local-path-provisioner-bind", "namespace": ns},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "local-path-provisioner-role"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]},
        {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "local-path-provisioner-bind"},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "local-path-provisioner-role"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "local-path-provisioner", "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "serviceAccountName": sa,
                      "containers": [{
                          "name": "local-path-provisioner", "image": image, "imagePullPolicy": "IfNotPresent",
                          "command": ["/local-path-provisioner", "--debug", "start",
                                      "--config", "/etc/config/config.json"],
                          "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/config/"}],
                          "env": [{"name": "POD_NAMESPACE",
                                   "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                  {"name": "CONFIG_MOUNT_PATH", "value": "/etc/config/"}]}],
                      "volumes": [{"name": "config-volume", "configMap": {"name": "local-path-config"}}]}}}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS,
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
         "reclaimPolicy": "Delete"},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "local-path-config", "namespace": ns},
         "data": {
             "config.json": json.dumps({"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                                                         "paths": [path]}]}, indent=2),
             "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
             "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
             "helperPod.yaml": yaml.safe_dump(helper_pod, sort_keys=False),
         }},
    ]
