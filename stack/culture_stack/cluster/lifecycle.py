"""`up`, `down`, `status` of the single-node cluster, on top of the stack's control plane."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from culture_stack import debian, process, registry, stack
from culture_stack.cluster import components, config, coredns, network, storage
from culture_stack.server import Context, StackError, Status, say
from culture_stack.servers import kube

CONTROL_PLANE = ["kube-controller-manager"]  # and what it depends on: etcd, kube-apiserver

def _require_root() -> None:
    if os.geteuid() != 0:
        raise StackError("the cluster needs root (bridges, iptables, containerd); run it as root")


def commands() -> list[str]:
    """Every external program the cluster runs (its host network, its components, what they run)."""
    return [*network.COMMANDS, *(c for s in components.node_components() for c in s.commands)]


def up(ctx: Context) -> float:
    """Bring the control plane and the node up; return the seconds it took until the node was Ready."""
    _require_root()
    t0 = time.monotonic()
    # every package of the node in one apt-get run, before the first step runs any of its programs
    debian.need_all(commands())
    stack.up(ctx, registry.select(CONTROL_PLANE))
    with stack.state_lock(ctx):  # not while another process's `cluster down` takes it apart
        network.up(ctx)
    # the API server runs with the endpoint reconciler off (it advertises 127.0.0.1); pods reach it
    # through the gateway forwarder, so the `kubernetes` Service points there
    components.apply(ctx, [config.apiserver_endpoints(), config.apiserver_endpoint_slice()])
    _stop_retired(ctx)
    components.Containerd().cni_bin_dir(ctx)  # this version's CNI plugin, also under a running node
    stack.up(ctx, components.node_components())
    coredns.up(ctx)  # cluster DNS: a pod, once the node runs pods
    storage.up(ctx)  # the default StorageClass
    elapsed = time.monotonic() - t0
    say(f"cluster: node {config.NODE_NAME} Ready, cluster DNS answering, storage served ({elapsed:.0f}s); "
        f"kubectl --kubeconfig {kube.kubeconfig_path(ctx)} get nodes")
    return elapsed


def down(ctx: Context, *, clean: bool = False) -> None:
    """Stop what `up` started (not the control plane), remove pods' containers, mounts, interfaces
    and iptables rules. With clean, also wipe the node's data (kubelet, containerd)."""
    _require_root()
    with stack.state_lock(ctx):
        _down(ctx, clean=clean)


def _down(ctx: Context, *, clean: bool = False) -> None:
    comps = components.node_components()
    kubelet = [c for c in comps if c.name == "kubelet"]
    stack.down(ctx, kubelet)
    _remove_containers(ctx)
    stack.down(ctx, [c for c in comps if c.name != "kubelet"])
    _stop_retired(ctx)
    _kill_leftover_shims(ctx)
    _unmount_under([ctx.data("kubelet"), ctx.data("containerd"), components.CONTAINERD_SOCKET.parent])
    proxy = kube.bin_dir(ctx) / "kube-proxy"
    if proxy.exists():  # removes the KUBE-* chains kube-proxy made
        subprocess.run([str(proxy), "--cleanup"], capture_output=True, timeout=60)
    _remove_kubelet_chains()
    network.down(ctx)
    shutil.rmtree("/var/lib/cni/networks/culture-pods", ignore_errors=True)  # host-local IPAM leases
    if kube.KubeApiServer().pid(ctx) is not None:
        components.kubectl(ctx, "delete", "node", config.NODE_NAME, "--ignore-not-found", check=False)
    if clean:
        for name in ("kubelet", "containerd", "cluster", "local-path"):
            shutil.rmtree(ctx.data(name), ignore_errors=True)
    say("cluster: down")


#: node processes earlier versions ran that this one does not (cluster DNS is a CoreDNS pod now)
RETIRED = ("cluster-dns",)


def _stop_retired(ctx: Context) -> None:
    """Stop what an earlier version of `cluster up` started and this one no longer knows."""
    for name in RETIRED:
        pidfile = ctx.pidfile(name)
        pid = process.read_pid(pidfile)
        if pid is not None and process.pid_alive(pid):
            say(f"  cluster: stopping {name} (pid {pid}), which this version no longer runs")
            process.stop(pid, timeout=10)
        pidfile.unlink(missing_ok=True)


def status(ctx: Context) -> list[Status]:
    """The node components' status rows (as `culture stack status` prints them), and cluster DNS's."""
    return [*stack.status(ctx, components.node_components()), coredns.status(ctx), storage.status(ctx)]


def _remove_containers(ctx: Context) -> None:
    """Kill and delete every container and sandbox in containerd's Kubernetes namespace."""
    sock = components.CONTAINERD_SOCKET
    if not sock.exists():
        return
    ctr = [debian.need("ctr"), "--address", str(sock), "--namespace", "k8s.io"]

    def ids(*args: str) -> list[str]:
        out = subprocess.run([*ctr, *args, "-q"], capture_output=True, text=True, timeout=30).stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    tasks = ids("tasks", "ls")
    if tasks:
        say(f"  cluster: removing {len(tasks)} running containers")
    for task in tasks:
        subprocess.run([*ctr, "tasks", "kill", "-s", "SIGKILL", task], capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    for task in tasks:
        while time.monotonic() < deadline:
            done = subprocess.run([*ctr, "tasks", "delete", task], capture_output=True, timeout=30)
            if done.returncode == 0:
                break
            time.sleep(0.3)
    for container in ids("containers", "ls"):
        subprocess.run([*ctr, "containers", "delete", container], capture_output=True, timeout=30)


def _kill_leftover_shims(ctx: Context) -> None:
    """containerd's shims outlive containerd by design; stop those of OUR containerd (their command
    line names our socket), not any other containerd's on the machine."""
    sock = str(components.CONTAINERD_SOCKET)
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and sock.encode() in b" ".join(cmd):
                pid = int(proc.name)
                say(f"  cluster: stopping leftover shim {pid}")
                process.stop(pid, timeout=10)


def _unmount_under(roots: list[Path]) -> None:
    """Unmount (deepest first) whatever the kubelet and containerd left mounted under roots."""
    bases = [str(r.resolve()) for r in roots]
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    # the kubelet bind-mounts its root dir onto itself (to make it shared): the root counts too
    for point in sorted({p for p in points if any(p == b or p.startswith(b + "/") for b in bases)},
                        key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)  # base system (mount)


def _remove_kubelet_chains() -> None:
    """The kubelet's own iptables chains (its canary and firewall chains)."""
    iptables, save_cmd = debian.which("iptables"), debian.which("iptables-save")
    if not (iptables and save_cmd):
        return  # no iptables, no chains (and `down` installs nothing)
    for table in ("filter", "nat", "mangle"):
        save = subprocess.run([save_cmd, "-t", table], capture_output=True, text=True).stdout
        chains = [line[1:].split()[0] for line in save.splitlines()
                  if line.startswith(":KUBE-") and any(w in line for w in ("KUBELET", "FIREWALL", "HINT"))]
        for line in save.splitlines():
            if line.startswith("-A ") and any(f"-j {c}" in line for c in chains):
                subprocess.run([iptables, "-w", "-t", table, *shlex.split("-D " + line[3:])],
                               capture_output=True)
        for chain in chains:
            subprocess.run([iptables, "-w", "-t", table, "-F", chain], capture_output=True)
            subprocess.run([iptables, "-w", "-t", table, "-X", chain], capture_output=True)
