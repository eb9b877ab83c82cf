#!/usr/bin/python3 -I
"""CNI plugin `culture-stack-ports`, chained after `bridge`: inside each pod, connections to
127.0.0.1 on the local stack's ports reach the host's servers.

Why: the stack's servers listen on the host's 127.0.0.1, and Kafka ADVERTISES 127.0.0.1:19092 to
its clients, so a pod must be able to dial exactly that address (a forwarder on the gateway is not
enough for Kafka). In the pod's network namespace this plugin adds:
  nat OUTPUT:      -d 127.0.0.1 -p tcp --dport PORT -j DNAT --to-destination GATEWAY:PORT
  nat POSTROUTING: -s 127.0.0.1 -o IFNAME -j MASQUERADE
and sets route_localnet on the pod's interface (so a packet from 127.0.0.1 may leave it before it
is masqueraded). On the host, the pod gateway forwards GATEWAY:PORT to 127.0.0.1:PORT.
Only these ports are redirected; the pod's own loopback is untouched otherwise.

Standard library only: containerd runs it with the host's python3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]


def pod_commands(ifname: str, gateway: str, ports: list[int]) -> list[list[str]]:
    """The commands run inside the pod's network namespace (pure, for tests)."""
    cmds = [["sysctl", "-q", "-w", f"net.ipv4.conf.{ifname}.route_localnet=1"]]
    for port in ports:
        cmds.append(["iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-d", "127.0.0.1/32", "-p", "tcp",
                     "--dport", str(port), "-j", "DNAT", "--to-destination", f"{gateway}:{port}"])
    cmds.append(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "127.0.0.1/32", "-o", ifname,
                 "-j", "MASQUERADE"])
    return cmds


def _error(code: int, msg: str) -> int:
    print(json.dumps({"cniVersion": "1.0.0", "code": code, "msg": msg}))
    return 1


def main() -> int:
    """CNI entry point: the command comes in CNI_COMMAND, the config on stdin."""
    command = os.environ.get("CNI_COMMAND", "")
    conf = json.loads(sys.stdin.read() or "{}")
    version = conf.get("cniVersion", "1.0.0")
    if command == "VERSION":
        print(json.dumps({"cniVersion": version, "supportedVersions": SUPPORTED}))
        return 0
    if command == "ADD":
        netns, ifname = os.environ["CNI_NETNS"], os.environ.get("CNI_IFNAME", "eth0")
        for cmd in pod_commands(ifname, conf["gateway"], [int(p) for p in conf.get("ports", [])]):
            done = subprocess.run(["nsenter", f"--net={netns}", *cmd], capture_output=True, text=True)
            if done.returncode != 0:
                return _error(999, f"{' '.join(cmd)}: {done.stderr.strip()}")
        result = conf.get("prevResult") or {"cniVersion": version}
        print(json.dumps(result))
        return 0
    # DEL and CHECK: the rules live and die with the pod's network namespace
    if command == "CHECK" or command == "DEL":
        return 0
    return _error(4, f"unknown CNI_COMMAND {command!r}")


if __name__ == "__main__":
    sys.exit(main())
