"""Every external program the stack and the cluster run, and the Debian package each comes from.

One source of truth: `COMMANDS` maps each program that is not part of every Debian system to its
package; `need()` returns a program's path and installs its package first when it is missing, so
nothing runs a program before it is installed. `culture stack packages` prints the package set (the
fresh-machine check purges it), and tests/stack/test_commands_unit.py parses the source to prove
that every program the code runs is in `COMMANDS`, `BASE` or `PREREQUISITES`.

apt is used one process at a time: `install()` holds a machine-wide lock (`APT_LOCK`, which names
its holder's pid, see `culture_stack.locks`), waits for apt/dpkg's own locks when something else
(unattended-upgrades, a person's `apt-get`) holds them, and runs `apt-get update` at most once per
process.
"""

from __future__ import annotations

import collections
import dataclasses
import fcntl
import glob
import os
import re
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from culture_stack import locks
from culture_stack.server import StackError, say


@dataclasses.dataclass(frozen=True)
class Deb:
    """Where a program comes from: a Debian package, and how to find the program once installed."""

    package: str
    #: why the stack needs it (shown by `culture stack packages --verbose`)
    why: str
    #: a glob for programs not on PATH (PostgreSQL's server binaries, CNI plugins)
    probe: str | None = None
    #: False for packages the fresh-machine check keeps: the README's requirements (a JDK, Maven) and
    #: packages the base system itself depends on (iproute2, procps)
    purge: bool = True


_PG = "/usr/lib/postgresql/*/bin/"
_CNI = "/usr/lib/cni/"

#: program -> its Debian package. A program the stack runs, or makes a server it starts run, goes here.
COMMANDS: dict[str, Deb] = {
    # the local stack's servers
    "initdb": Deb("postgresql", "creates the PostgreSQL cluster", probe=_PG + "initdb"),
    "postgres": Deb("postgresql", "the PostgreSQL server", probe=_PG + "postgres"),
    "redis-server": Deb("redis-server", "the Redis server"),
    "etcd": Deb("etcd-server", "the Kubernetes control plane's store"),
    "mvn": Deb("maven", "resolves Kafka, Cassandra and Neo4j jars from Maven Central", purge=False),
    "javac": Deb("openjdk-17-jdk-headless", "compiles the Neo4j launcher", purge=False),
    # the cluster's host network (cluster/network.py, cluster/lifecycle.py)
    "ip": Deb("iproute2", "the pod bridge", purge=False),
    "ss": Deb("iproute2", "names the process on a taken port", purge=False),
    "iptables": Deb("iptables", "FORWARD rules; kube-proxy, the kubelet and the CNI bridge plugin run it"),
    "iptables-save": Deb("iptables", "finds the rules to remove; kube-proxy runs it"),
    "iptables-restore": Deb("iptables", "kube-proxy (iptables mode) writes its rules with it"),
    "ip6tables": Deb("iptables", "kube-proxy and the kubelet probe IPv6 with it"),
    "conntrack": Deb("conntrack", "kube-proxy clears stale UDP flows (cluster DNS) with it"),
    "sysctl": Deb("procps", "the culture-stack-ports CNI plugin sets route_localnet in pods",
                  purge=False),
    # the node
    "containerd": Deb("containerd", "the container runtime"),
    "ctr": Deb("containerd", "health checks and container clean-up"),
    "runc": Deb("runc", "containerd's OCI runtime"),
    "bridge": Deb("containernetworking-plugins", "containerd's pod network", probe=_CNI + "bridge"),
    "host-local": Deb("containernetworking-plugins", "pod IP addresses", probe=_CNI + "host-local"),
    "loopback": Deb("containernetworking-plugins", "pods' lo", probe=_CNI + "loopback"),
    "portmap": Deb("containernetworking-plugins", "hostPort", probe=_CNI + "portmap"),
    "docker-registry": Deb("docker-registry", "the local image registry"),
    # images without Docker (cluster/images.py)
    "buildah": Deb("buildah", "builds the images from the Dockerfiles"),
    "fuse-overlayfs": Deb("fuse-overlayfs", "buildah's overlay storage where the kernel's is refused"),
    "newuidmap": Deb("uidmap", "buildah's user namespaces"),
    "debootstrap": Deb("debootstrap", "makes the Python base image's Debian root file system"),
}

#: programs of the packages every Debian system has (priority `required`, installed by even the
#: minimal debootstrap variant, and not removable without breaking the system). Run as they are.
BASE: dict[str, str] = {
    "sh": "dash",
    "bash": "bash",  # the Makefile already runs under it (SHELL); phases.py runs make test's phases with it
    "true": "coreutils",
    "tail": "coreutils",
    "tar": "tar",
    "apt-get": "apt",
    "dpkg-query": "dpkg",
    "useradd": "passwd",
    "runuser": "util-linux",
    "nsenter": "util-linux",
    "prlimit": "util-linux",
    "setpriv": "util-linux",
    "mount": "mount",
    "umount": "mount",
}

#: what the README asks a machine to have before the first command (the project cannot fetch these:
#: Debian 12's Go is too old, and the JDK/Python run the set-up itself). Checked with a clear error.
PREREQUISITES: dict[str, str] = {
    "go": "Go >= 1.24 (builds Kubernetes, helm, skaffold and the pause image)",
    "java": "a JDK >= 17 (Kafka, Cassandra, Neo4j); a missing JDK 17 is installed from Debian; the e2e "
    "builds also need one >= 21 (Strimzi's CRD generator), e.g. under /usr/lib/jvm",
    "python3": "Python >= 3.11 (the venv, SecantusDB's venv, the CNI plugin script)",
}

#: machine-wide, not per state directory: apt is one per machine
APT_LOCK = Path(os.environ.get("CULTURE_APT_LOCK", "/run/lock/culture-platform-apt.lock"))
#: how long a process waits for the apt lock and for apt/dpkg's own locks, in seconds
APT_TIMEOUT = 1200.0
#: apt and dpkg's own locks (fcntl locks; we only look at them to name the holder and wait)
DPKG_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
              "/var/cache/apt/archives/lock")

_updated = False
_DPKG_PROGRESS = re.compile(r"^\(Reading database \.\.\. \d+%\s*$")
_found: dict[str, str] = {}
_found_guard = threading.Lock()


def packages(*, purgeable: bool = False) -> list[str]:
    """The Debian packages the stack and the cluster install (sorted); with purgeable, only those the
    fresh-machine check removes."""
    return sorted({d.package for d in COMMANDS.values() if d.purge or not purgeable})


def owners(*, purgeable: bool = False) -> list[str]:
    """The installed packages that hold the programs of COMMANDS (sorted): the real packages behind
    metapackages (postgresql-15 behind postgresql), which removing the metapackage alone would keep."""
    found = set()
    for command, deb in COMMANDS.items():
        if purgeable and not deb.purge:
            continue
        path = which(command)
        if path is None:
            continue
        out = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            pkg, sep, _ = line.partition(": ")
            if sep and not line.startswith("diversion"):
                found |= {p.strip().split(":")[0] for p in pkg.split(",")}
    return sorted(found)


def which(command: str) -> str | None:
    """The path of an installed program of COMMANDS (or BASE), without installing anything."""
    with _found_guard:
        if command in _found and os.path.exists(_found[command]):
            return _found[command]
    deb = COMMANDS.get(command)
    if deb is None and command not in BASE:
        raise StackError(f"`{command}` is not a known external program: add it to "
                         "culture_stack.debian.COMMANDS")
    found: str | None
    if deb is not None and deb.probe:
        matches = sorted(glob.glob(deb.probe), key=_version_order)
        found = matches[-1] if matches else None
    else:
        # apt puts admin tools in sbin, which a non-root PATH may lack
        found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found:
        with _found_guard:
            _found[command] = found
    return found


def _version_order(path: str) -> tuple[int, str]:
    """Sort /usr/lib/postgresql/15/bin/x after .../9/bin/x: by the first all-digit path part."""
    for part in Path(path).parts:
        if part.isdigit():
            return int(part), path
    return 0, path


def need(command: str) -> str:
    """The path of a program of COMMANDS, installing its Debian package first when it is missing."""
    found = which(command)
    if found:
        return found
    need_all([command])
    found = which(command)
    if not found:
        deb = COMMANDS[command]
        raise StackError(f"installed {deb.package} but `{command}` is still missing"
                         + (f" ({deb.probe})" if deb.probe else " on PATH"))
    return found


def need_all(commands: Iterable[str]) -> None:
    """Install, in one apt-get run, the packages of every missing program among commands."""
    missing = sorted({COMMANDS[c].package for c in dict.fromkeys(commands) if c not in BASE and not which(c)})
    if missing:
        install(missing)


def install(pkgs: list[str]) -> None:
    """apt-get install pkgs (those not installed yet), serialised across `culture` processes."""
    global _updated
    if os.geteuid() != 0:
        raise StackError("missing Debian packages; install them with: "
                         f"sudo apt-get install -y {' '.join(pkgs)}")
    with locks.held(APT_LOCK, "the apt lock (one `culture` process runs apt-get at a time)",
                    timeout=APT_TIMEOUT):
        todo = [p for p in pkgs if not installed(p)]  # the holder we waited for may have installed them
        if not todo:
            return
        say(f"  apt: installing {' '.join(todo)}")
        if not _updated:
            apt_get(["update", "-q"])
            _updated = True
        apt_get(["install", "-y", "-q", "--no-install-recommends", *todo])
    with _found_guard:
        _found.clear()


def installed(package: str) -> bool:
    """True when dpkg has the package fully installed."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package],
                         capture_output=True, text=True).stdout
    return out.startswith("ii")


def apt_get(args: list[str], *, timeout: float = APT_TIMEOUT) -> None:
    """Run apt-get, waiting (bounded, with progress) while another program holds apt/dpkg's locks.

    Call it holding APT_LOCK. apt-get itself waits for the dpkg lock (`DPkg::Lock::Timeout`) but not
    for the package lists' lock, so a run that fails on a held lock is retried once the lock is free.
    """
    deadline = time.monotonic() + timeout
    argv = ["apt-get", "-o", f"DPkg::Lock::Timeout={int(timeout)}", *args]
    say(f"  $ apt-get {' '.join(args)}")
    while True:
        wait_for_dpkg_locks(deadline)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        tail: collections.deque[str] = collections.deque(maxlen=30)
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            if not _DPKG_PROGRESS.match(line):  # dpkg's twenty "(Reading database ... 5%" lines
                say("    " + line.rstrip())
        if proc.wait() == 0:
            return
        text = "\n".join(tail)
        if "Could not get lock" in text or "Unable to lock" in text:
            if time.monotonic() < deadline:
                say("  apt: another program took apt's lock first; waiting for it, then trying again")
                time.sleep(1.0)
                continue
        raise StackError(f"apt-get {' '.join(args)} failed (exit {proc.returncode}):\n{text}")


def dpkg_lock_holder(path: str) -> int | None:
    """The pid holding apt/dpkg's fcntl lock on path, or None when it is free (or absent)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
        fmt = "hhqqi4x"
        res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        l_type, _, _, _, pid = struct.unpack(fmt, res)
        return pid if l_type != fcntl.F_UNLCK else None
    except OSError:
        return None
    finally:
        os.close(fd)


def wait_for_dpkg_locks(deadline: float) -> None:
    """Wait until no other program holds apt/dpkg's locks, saying who holds them; bounded."""
    start = time.monotonic()
    next_note = start
    while True:
        held = {p: pid for p in DPKG_LOCKS if (pid := dpkg_lock_holder(p))}
        if not held:
            if time.monotonic() - start >= 1:
                say(f"  apt: dpkg/apt locks free after {time.monotonic() - start:.0f}s")
            return
        now = time.monotonic()
        who = "; ".join(f"{p} by {locks.describe_pid(pid)}" for p, pid in held.items())
        if now >= deadline:
            raise StackError(f"gave up after {now - start:.0f}s waiting for apt/dpkg's locks: {who}")
        if now >= next_note:
            say(f"  apt: waiting for apt/dpkg's locks ({now - start:.0f}s): {who}")
            next_note = now + locks.NOTE_EVERY
        time.sleep(0.5)
