"""Pure parts of the local cluster: the node's configuration files, cluster DNS's manifests."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import pytest
import yaml

from culture_stack.cluster import config
from culture_stack.cluster.cni_stack_ports import pod_commands

pytestmark = pytest.mark.unit


def test_cluster_dns_is_coredns_behind_kube_dns_as_kind_deploys_it() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in config.coredns_manifests("img:1")}
    assert set(docs) == {("ServiceAccount", "coredns"), ("ClusterRole", "system:coredns"),
                         ("ClusterRoleBinding", "system:coredns"), ("ConfigMap", "coredns"),
                         ("Deployment", "coredns"), ("Service", "kube-dns")}
    assert all(d["metadata"].get("namespace", "kube-system") == "kube-system" for d in docs.values())
    svc = docs[("Service", "kube-dns")]["spec"]
    assert svc["clusterIP"] == config.CLUSTER_DNS
    assert ipaddress.ip_address(config.CLUSTER_DNS) in ipaddress.ip_network(config.SERVICE_CIDR)
    assert {(p["port"], p["protocol"]) for p in svc["ports"]} >= {(53, "UDP"), (53, "TCP")}
    pod = docs[("Deployment", "coredns")]["spec"]["template"]
    assert svc["selector"] == pod["metadata"]["labels"] == {"k8s-app": "kube-dns"}
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "img:1" and container["args"] == ["-conf", "/etc/coredns/Corefile"]
    # its upstream is the node's resolver (dnsPolicy ClusterFirst would make it ask itself: a loop)
    assert pod["spec"]["dnsPolicy"] == "Default"
    corefile = docs[("ConfigMap", "coredns")]["data"]["Corefile"]
    assert f"kubernetes {config.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa" in corefile
    assert "forward . /etc/resolv.conf" in corefile and "\n    ready\n" in corefile
    rules = docs[("ClusterRole", "system:coredns")]["rules"]
    assert {r for rule in rules for r in rule["resources"]} >= {"services", "endpointslices"}
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in rules)  # reads only


def test_storage_is_local_path_provisioner_serving_the_default_class_as_on_kind() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d
            for d in config.local_path_manifests("lpp:1", "base:1", "/var/x/local-path")}
    (cls,) = [d for (kind, _), d in docs.items() if kind == "StorageClass"]
    assert cls["metadata"]["name"] == config.STORAGE_CLASS == "standard"
    assert cls["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (cls["provisioner"], cls["volumeBindingMode"], cls["reclaimPolicy"]) == \
        ("rancher.io/local-path", "WaitForFirstConsumer", "Delete")
    dep = docs[("Deployment", "local-path-provisioner")]["spec"]["template"]["spec"]
    assert dep["containers"][0]["image"] == "lpp:1"
    data = docs[("ConfigMap", "local-path-config")]["data"]
    assert json.loads(data["config.json"])["nodePathMap"][0]["paths"] == ["/var/x/local-path"]
    helper = yaml.safe_load(data["helperPod.yaml"])
    assert helper["spec"]["containers"][0]["image"] == "base:1"
    assert 'mkdir -m 0777 -p "$VOL_DIR"' in data["setup"] and 'rm -rf "$VOL_DIR"' in data["teardown"]


def test_addresses_are_host_local() -> None:
    net = ipaddress.ip_network(config.POD_CIDR)
    assert ipaddress.ip_address(config.GATEWAY) in net
    assert net.is_private and not ipaddress.ip_network(config.SERVICE_CIDR).overlaps(net)


def test_containerd_config_restricts_oom_score_adj() -> None:
    text = config.containerd_config(root=Path("/r"), state=Path("/s"), socket=Path("/s/c.sock"),
                                    cni_conf_dir=Path("/c"), cni_bin_dir=Path("/usr/lib/cni"),
                                    runc="/usr/bin/runc")
    cri = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == config.PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["registry"]["mirrors"][config.REGISTRY]["endpoint"] == [f"http://{config.REGISTRY}"]


def test_kubelet_config_allows_cgroup_v1_and_uses_cluster_dns() -> None:
    cfg = config.kubelet_config(ca_file=Path("/ca"), cert=Path("/c"), key=Path("/k"),
                                resolv_conf="/etc/resolv.conf")
    assert cfg["failCgroupV1"] is False
    assert cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["clusterDNS"] == [config.CLUSTER_DNS]
    assert cfg["authentication"]["anonymous"]["enabled"] is False


def test_pods_reach_the_stack_on_their_loopback() -> None:
    plugins = config.cni_conflist()["plugins"]
    ours = next(p for p in plugins if p["type"] == "culture-stack-ports")
    assert 19092 in ours["ports"] and 15432 in ours["ports"]
    cmds = pod_commands("eth0", config.GATEWAY, [19092])
    assert cmds[0][-1] == "net.ipv4.conf.eth0.route_localnet=1"
    assert [*cmds[1][-4:]] == ["-j", "DNAT", "--to-destination", f"{config.GATEWAY}:19092"]
    assert cmds[-1][-2:] == ["-j", "MASQUERADE"]


def test_the_example_for_this_cluster_runs_exactly_the_roles_this_build_has() -> None:
    """examples/cultureplatform-here.yaml (what the e2e platform test applies) keeps up with the build:
    a service is enabled iff it has built roles, and a role the build lacks runs 0 replicas."""
    import yaml

    from culture_operator.spec import SERVICE_ROLES, parse_spec
    from culture_runtime.serve import roles_of
    from culture_stack import paths

    doc = yaml.safe_load((paths.repo_root() / "examples" / "cultureplatform-here.yaml").read_text())
    parse_spec(doc["spec"])  # what the operator accepts
    services = doc["spec"]["services"]
    assert set(services) == set(SERVICE_ROLES)
    for service, roles in SERVICE_ROLES.items():
        built = set(roles_of(service)) & set(roles)
        assert services[service]["enabled"] is bool(built), service
        if built:
            lacking = {r for r in roles if r not in built}
            zero = {r for r, v in services[service].items() if isinstance(v, dict) and v.get("replicas") == 0}
            assert zero == lacking, (service, zero, lacking)


def test_the_cni_plugin_is_a_copy_that_outlives_the_checkout(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """The node runs on after the clone that started it is gone: our CNI plugin is installed as a
    self-contained copy (standard library only), not a wrapper naming a file of this checkout."""
    from culture_stack.cluster import cni_stack_ports, components
    from culture_stack.server import Context

    system = tmp_path / "usr-lib-cni"
    system.mkdir()
    (system / "bridge").write_text("#!/bin/sh\n")
    monkeypatch.setattr(components.debian, "need", lambda name: str(system / name))
    out = components.Containerd().cni_bin_dir(Context(state=tmp_path / "state", cache=tmp_path / "cache"))
    plugin = out / "culture-stack-ports"
    assert plugin.read_bytes() == Path(cni_stack_ports.__file__).read_bytes()
    assert plugin.stat().st_mode & 0o111 and plugin.read_text().startswith("#!/usr/bin/python3 -I")
    assert (out / "bridge").resolve() == system / "bridge"


def test_the_databases_image_runs_the_stacks_recipes_at_the_images_paths() -> None:
    """The managed-database image's Cassandra and Neo4j: the local stack's JVM options and config, with
    the pod's address filled in at start (no heap: that comes from the pod's MAX_HEAP_SIZE), and its
    entrypoint explains itself without any database installed."""
    import subprocess
    import sys

    from culture_stack.cluster import images

    recipe = images.databases_recipe(["jamm-0.4.0.jar", "cassandra-all-5.0.9.jar"])
    cass = recipe["cassandra"]
    assert "-javaagent:/opt/cassandra/lib/jamm-0.4.0.jar" in cass["jvm"]
    assert not [o for o in cass["jvm"] if o.startswith(("-Xmx", "-Xms"))]
    assert "-Dcassandra.config=file:///tmp/cassandra-conf/cassandra.yaml" in cass["jvm"]
    conf = cass["config"]
    assert (conf["listen_address"], conf["rpc_address"], conf["broadcast_rpc_address"]) == (
        "@POD_IP@", "0.0.0.0", "@POD_IP@")
    assert conf["seed_provider"][0]["parameters"] == [{"seeds": "@POD_IP@:7000"}]
    assert conf["data_file_directories"] == ["/var/lib/cassandra/data"]
    assert conf["native_transport_port"] == 9042
    assert recipe["neo4j"]["classpath"] == "/opt/neo4j/launcher:/opt/neo4j/lib/*"
    json.dumps(recipe)  # baked into the image as recipe.json
    script = images.DATABASES_DIR / "culture_db.py"
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True)
    assert "CULTURE_DATABASE" in out.stdout and "culture-db ready" in out.stdout
    missing = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "CULTURE_DATABASE": "nope"})
    assert missing.returncode != 0


def test_make_up_runs_every_role_of_every_built_service() -> None:
    """`make up` (`culture dev up`) runs dev.SLICE: exactly the roles `culture serve` has, of every
    service the operator knows (the same set the cluster's platform deploys)."""
    from culture_operator.spec import SERVICE_ROLES
    from culture_runtime.serve import roles_of
    from culture_stack.dev import DEV_PORTS, SLICE

    built = {(service, role) for service in SERVICE_ROLES for role in roles_of(service)}
    assert set(SLICE) == built and len(SLICE) == len(built)
    assert set(DEV_PORTS) == built  # each a port of its own
    assert SLICE[-1] == ("gateway", "api")  # the edge last, once its upstreams serve


def test_fixed_listen_ports_lie_below_the_ephemeral_range() -> None:
    """The stack's servers and `make up`'s roles listen on fixed ports. One inside the range the
    kernel hands to outgoing connections is taken whenever a client socket of a server already
    running got it (kube-apiserver -> etcd held 50094 once, and `make up` failed on graph api-read
    every time until the stack restarted)."""
    from pathlib import Path

    from culture_stack import ports
    from culture_stack.dev import DEV_PORTS

    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = min(int(range_file.read_text().split()[0]) if range_file.exists() else 32768, 32768)
    stack = {name: value for name, value in vars(ports).items() if name.isupper() and isinstance(value, int)}
    fixed = {**{" ".join(role): port for role, port in DEV_PORTS.items()}, **stack}
    assert len(fixed) > len(DEV_PORTS) + 10  # the stack's ports were found
    inside = {name: port for name, port in fixed.items() if port >= low}
    assert not inside, f"ports in the ephemeral range ({low}-): {inside}"


def test_free_ports_are_distinct_below_the_ephemeral_range_and_clear_of_make_up() -> None:
    """Tests start each role on free_port(): bind(0) gave two roles of one run the same port once."""
    import socket

    from culture_stack.dev import DEV_PORTS, free_port

    picked = [free_port() for _ in range(300)]
    assert len(set(picked)) == len(picked)
    assert all(20000 <= port < 30000 and port not in DEV_PORTS.values() for port in picked)
    with socket.socket() as sock:  # and free: a server can bind it
        sock.bind(("127.0.0.1", picked[-1]))
