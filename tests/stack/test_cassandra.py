"""Cassandra of the local stack: the generated config (unit) and the live node (integration).

The integration tests bring up only Cassandra (not the whole stack) and each works in its own
keyspace, so they run beside other tests on the same node and never assume it is empty.
"""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from culture_stack import ports, registry, stack
from culture_stack.server import Context
from culture_stack.servers import cassandra as cassandra_recipe

# -- unit: pure code ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_config_is_a_local_single_node_under_the_state_dir(tmp_path: Path) -> None:
    ctx = Context(state=tmp_path / "state", cache=tmp_path / "cache")
    conf = cassandra_recipe.render_config(ctx)
    data = tmp_path / "state" / "data" / "cassandra"
    assert conf["listen_address"] == conf["rpc_address"] == "127.0.0.1"
    assert conf["native_transport_port"] == ports.CASSANDRA
    assert conf["storage_port"] == ports.CASSANDRA_STORAGE
    assert conf["seed_provider"][0]["parameters"][0]["seeds"] == f"127.0.0.1:{ports.CASSANDRA_STORAGE}"
    assert conf["endpoint_snitch"] == "SimpleSnitch"
    assert conf["authenticator"] == "AllowAllAuthenticator"
    assert conf["auto_bootstrap"] is False
    dirs = [*conf["data_file_directories"], conf["commitlog_directory"], conf["saved_caches_directory"],
            conf["hints_directory"], conf["cdc_raw_directory"]]
    assert all(Path(d).is_relative_to(data) for d in dirs), dirs


@pytest.mark.unit
def test_jvm_options_have_the_java17_module_openings_and_a_small_heap(tmp_path: Path) -> None:
    ctx = Context(state=tmp_path / "state", cache=tmp_path / "cache")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "jamm-0.4.0.jar").touch()
    opts = cassandra_recipe.jvm_options(ctx, tmp_path / "lib")
    pairs = set(itertools.pairwise(opts))
    assert ("--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED") in pairs
    assert ("--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED") in pairs
    assert "-XX:+UseG1GC" in opts and "-Xmx2g" in opts
    assert "-Dcassandra-foreground=yes" in opts
    assert f"-javaagent:{tmp_path / 'lib' / 'jamm-0.4.0.jar'}" in opts
    # JMX would bind a port the stack does not know about
    assert not any(o.startswith("-Dcassandra.jmx.") for o in opts)


# -- integration: the live node ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cassandra_settings() -> dict[str, Any]:
    """Only Cassandra, started if it is not running (idempotent)."""
    servers = registry.select(["cassandra"])
    stack.up(Context.default(), servers)
    return servers[-1].settings()


@pytest.fixture
def cql(cassandra_settings: dict[str, Any]) -> Iterator[Any]:
    """A cassandra-driver session on the local node."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=cassandra_settings["local_dc"]),
        request_timeout=30,  # DDL on a busy 2-core box can take a few seconds
    )
    cluster = Cluster(cassandra_settings["contact_points"], port=cassandra_settings["port"],
                      protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect()
    try:
        yield session
    finally:
        cluster.shutdown()


@pytest.mark.integration
def test_timeline_range_read_newest_first(cql: Any, unique: str) -> None:
    from cassandra.util import max_uuid_from_time, min_uuid_from_time, uuid_from_time

    keyspace = f"ks_{unique}"
    cql.execute(f"CREATE KEYSPACE {keyspace} WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    try:
        cql.execute(
            f"CREATE TABLE {keyspace}.timeline (user_id text, event_id timeuuid, body text, "
            "PRIMARY KEY ((user_id), event_id)) WITH CLUSTERING ORDER BY (event_id DESC)"
        )
        insert = cql.prepare(f"INSERT INTO {keyspace}.timeline (user_id, event_id, body) VALUES (?, ?, ?)")
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        # inserted out of order on purpose: the clustering order, not insertion order, must show
        for minute in (5, 1, 9, 3, 7, 0, 8, 2, 6, 4):
            at = base + dt.timedelta(minutes=minute)
            cql.execute(insert, ("alice", uuid_from_time(at), f"alice-{minute}"))
            cql.execute(insert, ("bob", uuid_from_time(at), f"bob-{minute}"))

        select = cql.prepare(
            f"SELECT body, event_id FROM {keyspace}.timeline "
            "WHERE user_id = ? AND event_id >= ? AND event_id < ?"
        )
        lo, hi = base + dt.timedelta(minutes=2), base + dt.timedelta(minutes=7)
        # [lo, hi): minute 2 is in, minute 7 is out; bob's rows at the same times never show
        rows = list(cql.execute(select, ("alice", min_uuid_from_time(lo), min_uuid_from_time(hi))))
        assert [r.body for r in rows] == ["alice-6", "alice-5", "alice-4", "alice-3", "alice-2"]
        times = [r.event_id.time for r in rows]
        assert times == sorted(times, reverse=True)

        # the same range oldest first, and a LIMIT takes the newest rows of the partition
        asc = cql.execute(
            f"SELECT body FROM {keyspace}.timeline WHERE user_id = %s AND event_id >= %s "
            "AND event_id <= %s ORDER BY event_id ASC",
            ("bob", min_uuid_from_time(lo), max_uuid_from_time(hi)),
        )
        assert [r.body for r in asc] == ["bob-2", "bob-3", "bob-4", "bob-5", "bob-6", "bob-7"]
        newest = cql.execute(f"SELECT body FROM {keyspace}.timeline WHERE user_id = 'alice' LIMIT 3")
        assert [r.body for r in newest] == ["alice-9", "alice-8", "alice-7"]
    finally:
        cql.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    gone = cql.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                       (keyspace,)).one()
    assert gone is None


@pytest.mark.integration
def test_status_reports_the_running_version(cassandra_settings: dict[str, Any]) -> None:
    culture = Path(sys.executable).with_name("culture")
    out = subprocess.run([str(culture), "stack", "status", "cassandra"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("cassandra "))
    assert "healthy" in line and "Cassandra 5.0." in line, out.stdout


@pytest.mark.integration
def test_every_thread_of_the_running_node_has_the_coarser_timer_slack(
        cassandra_settings: dict[str, Any]) -> None:
    """The node runs under culture_stack.slack: its request threads' idle spinning parks 0.5 ms at a
    time, not 10 µs (the CPU that spinning took on 2 cores: culture_stack.slack)."""
    culture = Path(sys.executable).with_name("culture")
    out = subprocess.run([str(culture), "stack", "status", "cassandra"],
                         capture_output=True, text=True, timeout=60)
    line = next(line for line in out.stdout.splitlines() if line.startswith("cassandra "))
    pid = int(line.split()[3])
    threads = list(Path(f"/proc/{pid}/task").iterdir())
    assert len(threads) > 20, threads  # the JVM's threads, not only the launcher's
    slacks = {int(Path(f"/proc/{t.name}/timerslack_ns").read_text()) for t in threads}
    assert slacks == {cassandra_recipe.TIMER_SLACK_NS}
