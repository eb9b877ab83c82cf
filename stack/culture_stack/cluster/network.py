"""The host side of the pod network: the bridge, forwarding sysctls, iptables rules, and undoing them.

What `up` changes is recorded in `<state>/data/cluster/network.json` (the sysctls' previous values),
and every iptables rule it adds carries the comment `culture-cluster`, so `down` removes exactly
what was added, plus the chains kube-proxy, the kubelet and the CNI bridge plugin made for pods.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
from pathlib import Path

from culture_stack import debian
from culture_stack.cluster import config
from culture_stack.server import Context, StackError, say

COMMENT = "culture-cluster"

#: the programs `up` and `down` run (culture_stack.debian installs them)
COMMANDS = ("ip", "iptables", "iptables-save")

#: sysctl -> value while the cluster is up (the previous values are restored by down)
SYSCTLS = {
    "net/ipv4/ip_forward": "1",  # pods' traffic is routed through the host
    "net/bridge/bridge-nf-call-iptables": "1",  # Service DNAT for pod-to-pod traffic on the bridge
}

#: (table, chain, rule args): accept the pod bridge's traffic whatever the FORWARD policy is
RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("filter", "FORWARD", ("-i", config.BRIDGE, "-j", "ACCEPT")),
    ("filter", "FORWARD", ("-o", config.BRIDGE, "-j", "ACCEPT")),
)


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise StackError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run([debian.need("ip"), *args], check=check)


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # -w: wait for the xtables lock (kube-proxy and the kubelet write rules concurrently)
    return _run([debian.need("iptables"), "-w", *args], check=check)


def _record(ctx: Context) -> Path:
    return ctx.data("cluster") / "network.json"


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key


def bridge_up() -> bool:
    """True when the bridge exists with the gateway address."""
    out = _ip("-4", "-o", "addr", "show", "dev", config.BRIDGE, check=False).stdout
    return f" {config.GATEWAY}/" in out


def up(ctx: Context) -> None:
    """Create the bridge with the gateway address, enable forwarding, add the FORWARD rules."""
    record = _record(ctx)
    record.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(record.read_text()) if record.exists() else {}
    for key, value in SYSCTLS.items():
        path = _sysctl_path(key)
        if not path.exists():
            raise StackError(f"/proc/sys/{key} is missing: the kernel lacks br_netfilter, which the "
                             "pod network needs (kube-proxy's Service rules must see bridged traffic)")
        saved.setdefault(key, path.read_text().strip())
        if path.read_text().strip() != value:
            path.write_text(value + "\n")
    record.write_text(json.dumps(saved, indent=2) + "\n")
    if not bridge_up():
        say(f"  cluster: bridge {config.BRIDGE} with {config.GATEWAY}/{config.POD_CIDR.split('/')[1]}")
        if _ip("link", "show", config.BRIDGE, check=False).returncode != 0:
            _ip("link", "add", config.BRIDGE, "type", "bridge")
        prefix = config.POD_CIDR.split("/")[1]
        _ip("addr", "replace", f"{config.GATEWAY}/{prefix}", "dev", config.BRIDGE)
    _ip("link", "set", config.BRIDGE, "up")
    for table, chain, rule in RULES:
        rule_args = [chain, *rule, "-m", "comment", "--comment", COMMENT]
        if _iptables("-t", table, "-C", *rule_args, check=False).returncode != 0:
            _iptables("-t", table, "-I", *rule_args)


def down(ctx: Context) -> None:
    """Undo `up` and what the node's components left: rules, chains, the bridge, the sysctls."""
    # without iptables there are no rules of ours to remove (and `down` installs nothing)
    if debian.which("iptables") and debian.which("iptables-save"):
        for table, chain, rule in RULES:
            rule_args = [chain, *rule, "-m", "comment", "--comment", COMMENT]
            while _iptables("-t", table, "-C", *rule_args, check=False).returncode == 0:
                _iptables("-t", table, "-D", *rule_args, check=False)
        _remove_pod_chains()
    if _ip("link", "show", config.BRIDGE, check=False).returncode == 0:
        say(f"  cluster: removing bridge {config.BRIDGE}")
        _ip("link", "delete", config.BRIDGE, check=False)
    record = _record(ctx)
    if record.exists():
        for key, value in json.loads(record.read_text()).items():
            with contextlib.suppress(OSError):
                _sysctl_path(key).write_text(value + "\n")
        record.unlink()


def _remove_pod_chains() -> None:
    """Remove the CNI bridge plugin's masquerade chains for our pod network (left behind when a
    sandbox was not torn down through CNI), matched by our network name in their comments."""
    save = _run([debian.need("iptables-save"), "-t", "nat"], check=False).stdout
    chains = set()
    for line in save.splitlines():
        if line.startswith("-A POSTROUTING") and "culture-pods" in line and " -j CNI-" in line:
            chain = line.split(" -j ")[1].split()[0]
            chains.add(chain)
            _iptables("-t", "nat", *shlex.split("-D " + line[3:]), check=False)
    for chain in chains:
        _iptables("-t", "nat", "-F", chain, check=False)
        _iptables("-t", "nat", "-X", chain, check=False)
