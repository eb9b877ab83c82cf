"""Kafka of the local stack: pure protocol/config helpers (unit) and the live broker (integration).

The integration tests bring up only Kafka (not the whole stack) and use their own topics and
groups, so they run beside other tests on the same broker.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from culture_stack import paths, registry, stack
from culture_stack.server import Context
from culture_stack.servers import kafka as kafka_recipe

# -- unit: pure code ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_cluster_id_has_kafkas_format() -> None:
    for _ in range(200):
        cid = kafka_recipe.new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cid), cid


@pytest.mark.unit
def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1)
        for line in kafka_recipe.server_properties(tmp_path).splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["num.partitions"] == "3"
    assert props["log.dirs"] == str(tmp_path / "logs")


def _api_versions_response(correlation_id: int) -> bytes:
    """A hand-built ApiVersions v3 response, as a 4.3 broker sends it."""

    def cstr(text: str) -> bytes:
        return bytes([len(text) + 1]) + text.encode()

    body = struct.pack(">ih", correlation_id, 0)
    body += bytes([2 + 1]) + struct.pack(">hhh", 0, 0, 12) + b"\0" + struct.pack(">hhh", 18, 0, 4) + b"\0"
    body += struct.pack(">i", 0)
    supported = bytes([1 + 1]) + cstr("metadata.version") + struct.pack(">hh", 7, 30) + b"\0"
    finalized = bytes([1 + 1]) + cstr("metadata.version") + struct.pack(">hh", 30, 30) + b"\0"
    epoch = struct.pack(">q", 42)
    body += bytes([3])
    for tag, field in ((0, supported), (1, epoch), (2, finalized)):
        body += bytes([tag, len(field)]) + field
    return body


@pytest.mark.unit
def test_api_versions_codec() -> None:
    request = kafka_recipe.encode_api_versions_request(correlation_id=9)
    size, api_key, api_version, correlation = struct.unpack(">ihhi", request[:12])
    assert (size, api_key, api_version, correlation) == (len(request) - 4, 18, 3, 9)

    info = kafka_recipe.decode_api_versions_response(_api_versions_response(9), correlation_id=9)
    assert info.error_code == 0
    assert info.api_keys == {0: (0, 12), 18: (0, 4)}
    assert info.supported_features == {"metadata.version": (7, 30)}
    assert info.finalized_features == {"metadata.version": (30, 30)}
    assert info.finalized_epoch == 42
    with pytest.raises(ValueError):
        kafka_recipe.decode_api_versions_response(_api_versions_response(9), correlation_id=10)


@pytest.mark.unit
def test_describe_release_and_build_from_log() -> None:
    info = kafka_recipe.decode_api_versions_response(_api_versions_response(1), correlation_id=1)
    text = kafka_recipe.describe_release(info, {29: "4.2-IV1", 30: "4.3-IV0"})
    assert text == "Kafka 4.3.x (metadata.version 4.3-IV0) KRaft"
    log = (
        "==== 2026 starting: java\n[x] INFO Kafka version: 4.2.0 (AppInfoParser)\n"
        "==== 2026 starting: java\n[x] INFO Kafka version: 4.3.1 (AppInfoParser)\n"
    )
    assert kafka_recipe.build_from_log(log) == "4.3.1"
    assert kafka_recipe.build_from_log(log + "==== 2026 starting: java\n") is None


# -- integration: the live broker ---------------------------------------------------------------------


async def _until(what: str, check: Any, within: float = 30.0) -> Any:
    """Await check() until it returns something truthy; after `within` seconds fail, naming `what`."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def kafka_settings() -> dict[str, Any]:
    """Kafka alone, up and healthy (starts it when needed; leaves it running)."""
    ctx = Context.default()
    servers = registry.select(["kafka"])
    stack.up(ctx, servers)
    return servers[0].settings()


@pytest.fixture
async def topic(kafka_settings: dict[str, Any], unique: str) -> AsyncIterator[str]:
    """A fresh 3-partition topic, deleted afterwards."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings["bootstrap_servers"])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique, num_partitions=3, replication_factor=1)])
        yield unique
        await admin.delete_topics([unique])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, values: list[str]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value.encode(), key=str(i).encode())
    finally:
        await producer.stop()


async def _consume(consumer: Any, count: int, within: float = 30.0) -> list[Any]:
    """Read until `count` records arrived (failing after `within` seconds)."""
    records: list[Any] = []

    async def more() -> bool:
        batch = await consumer.getmany(timeout_ms=500)
        for part in batch.values():
            records.extend(part)
        return len(records) >= count

    try:
        await _until(f"{count} records", more, within)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got only {len(records)}: {records}") from None
    return records


@pytest.mark.integration
async def test_consumer_group_resumes_at_committed_offset(
    kafka_settings: dict[str, Any], topic: str, unique: str
) -> None:
    from aiokafka import AIOKafkaConsumer

    bootstrap = kafka_settings["bootstrap_servers"]
    group = f"{unique}-group"

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=1000,
        )

    first = [f"first-{i}" for i in range(12)]
    await _produce(bootstrap, topic, first)

    c1 = consumer()
    await c1.start()
    try:
        got = await _consume(c1, len(first))
        assert sorted(r.value.decode() for r in got) == sorted(first)
        await c1.commit()
        committed = {tp: await c1.committed(tp) for tp in c1.assignment()}
    finally:
        await c1.stop()
    assert sum(committed.values()) == len(first)

    second = [f"second-{i}" for i in range(7)]
    await _produce(bootstrap, topic, second)

    c2 = consumer()
    await c2.start()
    try:
        got = await _consume(c2, len(second))
        # nothing beyond the new messages is pending: every partition is read to its end
        await _until("c2 at the end of every partition", lambda: _at_end(c2))
        more = await c2.getmany(timeout_ms=300)
        got += [r for part in more.values() for r in part]
    finally:
        await c2.stop()
    assert sorted(r.value.decode() for r in got) == sorted(second)
    # each partition resumed exactly at the offset the first consumer committed
    first_seen: dict[int, int] = {}
    for r in got:
        first_seen[r.partition] = min(r.offset, first_seen.get(r.partition, r.offset))
    committed_by_partition = {tp.partition: offset for tp, offset in committed.items()}
    for partition, offset in first_seen.items():
        assert offset == committed_by_partition[partition], (partition, committed_by_partition)


async def _at_end(consumer: Any) -> bool:
    parts = consumer.assignment()
    if not parts:
        return False
    ends = await consumer.end_offsets(list(parts))
    return all([await consumer.position(tp) >= ends[tp] for tp in parts])


def _culture_cli() -> str:
    """The project's `culture` CLI of this checkout's venv (falls back to PATH)."""
    local = paths.repo_root() / ".venv" / "bin" / "culture"
    found = str(local) if local.exists() else shutil.which("culture")
    assert found, "the `culture` CLI is not installed: pip install -e '.[dev]'"
    return found


@pytest.mark.integration
def test_status_reports_live_version_kraft_and_cluster_id(kafka_settings: dict[str, Any]) -> None:
    out = subprocess.run([_culture_cli(), "stack", "status", "kafka"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("kafka")), "")
    assert "healthy" in line, out.stdout + out.stderr
    assert re.search(r"Kafka 4\.\d+", line), line
    assert "KRaft" in line, line
    cluster_id = kafka_settings["cluster_id"]
    assert cluster_id and f"cluster id {cluster_id}" in line, line


@pytest.mark.integration
def test_kafka_tool_argv_runs_kafkas_own_tools(kafka_settings: dict[str, Any], unique: str) -> None:
    """The jars double as Kafka's command-line tools (what the benchmarks run)."""
    ctx = Context.default()
    bootstrap = kafka_settings["bootstrap_servers"]

    def tool(main_class: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = kafka_recipe.kafka_tool_argv(ctx, main_class, *args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=180)

    made = tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap, "--create",
                "--topic", unique, "--partitions", "2", "--replication-factor", "1")
    assert made.returncode == 0, made.stdout + made.stderr
    try:
        perf = tool("org.apache.kafka.tools.ProducerPerformance", "--topic", unique,
                    "--num-records", "2000", "--record-size", "100", "--throughput", "-1",
                    "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all")
        assert perf.returncode == 0, perf.stdout + perf.stderr
        assert "2000 records sent" in perf.stdout, perf.stdout
    finally:
        asyncio.run(_delete_topic(bootstrap, unique))  # not a third JVM start: they are slow


async def _delete_topic(bootstrap: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.mark.integration
async def test_broker_runs_with_the_single_node_settings(kafka_settings: dict[str, Any]) -> None:
    """The live broker's own view of its config (DescribeConfigs), not just what we wrote."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings["bootstrap_servers"])
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    config = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    assert config["process.roles"] == "broker,controller"
    assert config["auto.create.topics.enable"] == "false"
    assert config["num.partitions"] == "3"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"
