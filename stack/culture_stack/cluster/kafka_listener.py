"""A Kafka listener pods can use, added to the running stack broker without a restart.

Kafka clients bootstrap, then dial the address the broker ADVERTISES; the stack's broker advertises
127.0.0.1, which inside a pod is the pod itself. So `cluster up` adds a per-broker dynamic listener
PODS://<gateway>:19094 (KIP-226; no restart, no change to the stack's server.properties), and
`cluster down` removes it again before the gateway address disappears. Pods use
`10.244.0.1:19094` as bootstrap server; host processes keep using 127.0.0.1:19092.
"""

from __future__ import annotations

import subprocess
import time

from culture_stack.cluster import config
from culture_stack.ports import HOST, KAFKA, KAFKA_CONTROLLER
from culture_stack.server import Context, StackError, say

POD_BOOTSTRAP = f"{config.GATEWAY}:{config.KAFKA_POD_LISTENER_PORT}"


def listener_configs() -> dict[str, str]:
    """The broker's dynamic listener settings with the pods' listener added (pure)."""
    pods = f"{config.KAFKA_POD_LISTENER}://{POD_BOOTSTRAP}"
    return {
        "listeners": f"[PLAINTEXT://{HOST}:{KAFKA},CONTROLLER://{HOST}:{KAFKA_CONTROLLER},{pods}]",
        "advertised.listeners": f"[PLAINTEXT://{HOST}:{KAFKA},{pods}]",
        "listener.security.protocol.map":
            f"[PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{config.KAFKA_POD_LISTENER}:PLAINTEXT]",
    }


def _config_command(ctx: Context, *args: str) -> str:
    from culture_stack.servers import kafka

    argv = kafka.kafka_tool_argv(ctx, "kafka.admin.ConfigCommand", "--bootstrap-server", f"{HOST}:{KAFKA}",
                                 "--entity-type", "brokers", "--entity-name", str(kafka.NODE_ID), *args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise StackError(f"kafka-configs {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _listening() -> bool:
    import socket

    try:
        with socket.create_connection((config.GATEWAY, config.KAFKA_POD_LISTENER_PORT), timeout=1):
            return True
    except OSError:
        return False


def ensure(ctx: Context, timeout: float = 60) -> str:
    """Add the pods' listener when Kafka runs and lacks it; returns the pods' bootstrap address."""
    from culture_stack.servers import kafka

    if kafka.Kafka().pid(ctx) is None:
        say("  cluster: the stack's Kafka is not running; pods get no Kafka listener "
            "(run `culture stack up kafka` then `culture cluster up` again)")
        return POD_BOOTSTRAP
    if _listening():
        return POD_BOOTSTRAP
    say(f"  cluster: adding Kafka listener {POD_BOOTSTRAP} for pods")
    add = ",".join(f"{k}={v}" for k, v in listener_configs().items())
    _config_command(ctx, "--alter", "--add-config", add)
    deadline = time.monotonic() + timeout
    while not _listening():
        if time.monotonic() > deadline:
            raise StackError(f"Kafka accepted the listener config but does not listen on {POD_BOOTSTRAP}; "
                             "see `culture stack logs kafka`")
        time.sleep(0.5)
    return POD_BOOTSTRAP


def remove(ctx: Context) -> None:
    """Drop the dynamic listener settings (the broker falls back to its server.properties)."""
    from culture_stack.servers import kafka

    if kafka.Kafka().pid(ctx) is None:
        return
    current = _config_command(ctx, "--describe")
    if config.KAFKA_POD_LISTENER not in current:
        return
    say("  cluster: removing the pods' Kafka listener")
    _config_command(ctx, "--alter", "--delete-config", ",".join(listener_configs()))
