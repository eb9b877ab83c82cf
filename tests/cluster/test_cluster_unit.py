"""Pure parts of the local cluster: DNS answers, the node's configuration files."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest

from culture_stack.cluster import config
from culture_stack.cluster.cni_stack_ports import pod_commands
from culture_stack.cluster.dns import ServiceRecord, answer_addresses

pytestmark = pytest.mark.unit

RECORDS = {
    ("default", "kubernetes"): ServiceRecord("10.96.0.1"),
    ("shop", "web"): ServiceRecord("10.96.3.4", ("10.244.0.7",)),
    ("shop", "db"): ServiceRecord(None, ("10.244.0.8", "10.244.0.9")),
}


@pytest.mark.parametrize(("name", "expected"), [
    ("kubernetes.default.svc.cluster.local.", ["10.96.0.1"]),
    ("WEB.shop.svc.cluster.local", ["10.96.3.4"]),  # names are case-insensitive
    ("db.shop.svc.cluster.local.", ["10.244.0.8", "10.244.0.9"]),  # headless: the ready endpoints
    ("10-244-0-7.shop.pod.cluster.local.", ["10.244.0.7"]),
    ("nope.shop.svc.cluster.local.", None),
    ("web.other.svc.cluster.local.", None),
    ("pypi.org.", None),  # not ours: the server forwards it
])
def test_answer_addresses(name: str, expected: list[str] | None) -> None:
    assert answer_addresses(name, RECORDS) == expected


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
