"""Apache Cassandra 5.0 from Maven Central (`cassandra-all` and its runtime dependencies), run as
`CassandraDaemon` in the foreground on Java 17: one single-node dev cluster on 127.0.0.1.

No tarball and no shell scripts: the JVM options that Cassandra's `conf/jvm-server.options`,
`conf/jvm17-server.options` and `bin/cassandra.in.sh` would add are written out below, and
`cassandra.yaml` / `logback.xml` are generated into `<state>/conf/cassandra`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from culture_stack import process, slack, tools
from culture_stack.ports import CASSANDRA, CASSANDRA_STORAGE, HOST
from culture_stack.server import Context, Launch, Server

VERSION = "5.0.9"
ARTIFACTS = [f"org.apache.cassandra:cassandra-all:{VERSION}"]
JAVA_MAJOR = 17  # Cassandra 5.0 runs on 11 and 17 only
CLUSTER_NAME = "culture"
# SimpleSnitch puts every node in this data centre; clients' DC-aware policies must name it
DATACENTER = "datacenter1"

# From Cassandra's conf/jvm17-server.options (the JPMS section): Cassandra reaches into JDK
# internals (Unsafe, direct buffers, class loading for UDFs, Chronicle for audit logs).
JPMS_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
]

# From conf/jvm17-server.options (G1 section) and conf/jvm-server.options (general section).
GC_AND_GENERAL_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    # Cassandra's 300 ms suits big heaps; a 1-2 GiB heap on 2 cores keeps young pauses short with a
    # lower target (bench/chat.py's p99 episodes lined up with 30-110 ms pauses at 300)
    "-XX:MaxGCPauseMillis=50",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-ea",
    "-da:net.openhft...",  # Chronicle runs out of memory by design with assertions on
    "-XX:+UseThreadPriorities",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+UseNUMA",
    "-XX:+PerfDisableSharedMem",
    "-XX:StringTableSize=1000003",
    "-Djava.net.preferIPv4Stack=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    # a dev box: die fast and clearly instead of writing multi-GiB heap dumps; and no
    # -XX:+AlwaysPreTouch, which only slows the start of a small heap
    "-XX:+ExitOnOutOfMemoryError",
]

# The request threads' idle spinning parks 10 µs at a time; a 0.5 ms timer slack makes it cheap on 2
# cores (culture_stack.slack has the numbers). The stack's node only: the managed-database image
# (culture_db.py) still runs Cassandra with the kernel's default slack.
TIMER_SLACK_NS = 500_000

# 2 cores and 24 GiB shared with Kafka, Neo4j, the Kubernetes control plane...: a small heap.
HEAP_OPTIONS = ["-Xms1g", "-Xmx2g", "-XX:MaxDirectMemorySize=1g"]

# A single node that is its own seed has nobody to wait for: skip gossip settling and ring delay.
FAST_START_OPTIONS = [
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.superuser_setup_delay_ms=0",
    # what Cassandra's own test JVMs use: estimating memtable row overhead with 100 000 steps
    # costs seconds of every start, 100 steps are plenty for a dev node
    "-Dcassandra.memtable_row_overhead_computation_step=100",
    # tests create and drop keyspaces all the time; without this every schema change flushes
    # the system tables. The commit log still has the changes, so a crash loses nothing.
    "-Dcassandra.unsafesystem=true",
]


def jvm_options(ctx: Context, lib: Path) -> list[str]:
    """Every JVM option of the daemon (pure: paths in, list out)."""
    jamm = sorted(lib.glob("jamm-*.jar"))
    return [*HEAP_OPTIONS, *daemon_options(ctx.conf("cassandra"), ctx.data("cassandra"), ctx.state / "logs",
                                           jamm[0] if jamm else None)]


def daemon_options(conf: Path, data: Path, logdir: Path, jamm: Path | None) -> list[str]:
    """The JVM options but the heap's, for a node whose config, data and logs are where these say (the
    local stack's, or the managed-database image's, see culture_stack.cluster.images)."""
    return [
        *GC_AND_GENERAL_OPTIONS,
        *JPMS_OPTIONS,
        *FAST_START_OPTIONS,
        # cassandra.in.sh loads jamm as an agent so memtable sizes are measured, not guessed
        *([f"-javaagent:{jamm}"] if jamm else []),
        "-Dcassandra-foreground=yes",  # otherwise the daemon closes stdout/stderr
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dlogback.configurationFile={conf / 'logback.xml'}",
        f"-Dcassandra.logdir={logdir}",
        f"-Dcassandra.storagedir={data}",
        # no JMX: neither cassandra.jmx.local.port nor .remote.port is set, so no extra port is bound
    ]


def render_config(ctx: Context) -> dict[str, Any]:
    """cassandra.yaml for one local node, small caches, fast start (pure: paths in, dict out)."""
    return node_config(ctx.data("cassandra"), HOST, CASSANDRA_STORAGE, CASSANDRA)


def node_config(data: Path, address: str, storage_port: int, native_port: int, *,
                rpc_address: str | None = None) -> dict[str, Any]:
    """cassandra.yaml of a one-node cluster that listens on `address` and is its own seed; rpc_address
    (e.g. 0.0.0.0 in a pod) serves clients on more addresses than the one it advertises."""
    return {
        "cluster_name": CLUSTER_NAME,
        "num_tokens": 1,  # one node: vnodes only add token allocation work and scan ranges
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "auto_bootstrap": False,
        "storage_compatibility_mode": "NONE",  # a fresh cluster never ran 4.x: use 5.0's formats
        "seed_provider": [{
            "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
            "parameters": [{"seeds": f"{address}:{storage_port}"}],
        }],
        "listen_address": address,
        "storage_port": storage_port,
        "rpc_address": rpc_address or address,
        **({"broadcast_rpc_address": address} if rpc_address else {}),
        "start_native_transport": True,
        "native_transport_port": native_port,
        "endpoint_snitch": "SimpleSnitch",
        "authenticator": "AllowAllAuthenticator",
        "authorizer": "AllowAllAuthorizer",
        "data_file_directories": [str(data / "data")],
        "commitlog_directory": str(data / "commitlog"),
        "saved_caches_directory": str(data / "saved_caches"),
        "hints_directory": str(data / "hints"),
        "cdc_raw_directory": str(data / "cdc_raw"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "32MiB",
        "commitlog_total_space": "512MiB",
        # small memory footprint: the heap is 1-2 GiB
        # cells off the heap: memtables on the heap filled the old generation between flushes and
        # ended in bursts of mixed collections (4 pauses of 10-50 ms within 0.4 s under chat load)
        "memtable_allocation_type": "offheap_objects",
        "memtable_heap_space": "256MiB",
        "memtable_offheap_space": "256MiB",
        "key_cache_size": "16MiB",
        "counter_cache_size": "8MiB",
        "row_cache_size": "0MiB",
        "file_cache_size": "128MiB",
        "prepared_statements_cache_size": "16MiB",
        "concurrent_reads": 8,
        "concurrent_writes": 16,
        "concurrent_counter_writes": 8,
        "concurrent_compactors": 1,
        "compaction_throughput": "64MiB/s",
        "disk_failure_policy": "stop",
        "commit_failure_policy": "stop",
        # tests create and drop many keyspaces; snapshots of dropped tables would only fill the disk
        "auto_snapshot": False,
        "snapshot_on_duplicate_row_detection": False,
        "user_defined_functions_enabled": False,
        "materialized_views_enabled": False,
        "sasi_indexes_enabled": False,
    }


LOGBACK_XML = """<configuration scan="false">
  <!-- the stack captures stdout into <state>/logs/cassandra.log -->
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.datastax" level="WARN"/>
  <logger name="io.netty" level="WARN"/>
  <logger name="net.openhft" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


class Cassandra(Server):
    name = "cassandra"
    port = CASSANDRA
    commands = ("mvn",)  # Maven resolves the jars from Maven Central
    start_timeout = 240.0
    stop_timeout = 60.0

    def install(self, ctx: Context) -> None:
        tools.java_home_exact(JAVA_MAJOR)
        tools.maven_classpath(ctx, self.name, ARTIFACTS)

    def init_data(self, ctx: Context) -> None:
        data = ctx.data(self.name)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        conf = ctx.conf(self.name)
        conf.mkdir(parents=True, exist_ok=True)
        # regenerated every start: the config follows the recipe, the data stays
        (conf / "cassandra.yaml").write_text(
            "# generated by culture_stack.servers.cassandra; edits are overwritten\n"
            + yaml.safe_dump(render_config(ctx), sort_keys=False)
        )
        (conf / "logback.xml").write_text(LOGBACK_XML)

    def launch(self, ctx: Context) -> Launch:
        lib = tools.maven_classpath(ctx, self.name, ARTIFACTS)
        java = tools.java_home_exact(JAVA_MAJOR) / "bin" / "java"
        return Launch(
            [*slack.prefix(TIMER_SLACK_NS), *_no_memory_locking(), str(java), *jvm_options(ctx, lib),
             "-cp", f"{lib}/*", "org.apache.cassandra.service.CassandraDaemon"],
            # heap-dump / hs_err files, if any, land beside the data, not in the caller's cwd
            cwd=ctx.data(self.name),
        )

    def healthy(self, ctx: Context) -> bool:
        if not process.port_open(self.port):
            return False
        with session() as s:
            return s.execute("SELECT release_version FROM system.local").one() is not None

    def version(self, ctx: Context) -> str:
        with session() as s:
            return "Cassandra " + s.execute("SELECT release_version FROM system.local").one()[0]

    def settings(self) -> dict[str, Any]:
        return {"contact_points": [HOST], "port": CASSANDRA, "local_dc": DATACENTER}

    def ports(self) -> tuple[int, ...]:
        return (CASSANDRA, CASSANDRA_STORAGE)


def _no_memory_locking() -> list[str]:
    """A prefix that makes Cassandra's unconditional mlockall() fail fast (it then only warns).

    As root (CAP_IPC_LOCK) mlockall pins the whole heap in RAM on a shared 24 GiB box and took 12 s
    of the start-up here. Both tools exec (same pid, so `down` still signals the JVM itself).
    """
    prefix = ["prlimit", "--memlock=8388608:8388608"]
    if os.geteuid() == 0:
        prefix += ["setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--"]
    return prefix


@contextlib.contextmanager
def session(timeout: float = 3.0) -> Iterator[Any]:
    """A short-lived cassandra-driver session on the local node, closed on exit.

    Timeouts are short because health checks poll; services keep one long-lived Cluster instead.
    """
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=DATACENTER),
                               request_timeout=timeout)
    cluster = Cluster([HOST], port=CASSANDRA, protocol_version=5, connect_timeout=timeout,
                      control_connection_timeout=timeout,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


__all__ = ["Cassandra", "jvm_options", "render_config", "session"]
