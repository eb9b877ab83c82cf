"""Neo4j 5 Community from Maven Central, run embedded by a small Java launcher with Bolt enabled.

Neo4j publishes no Debian package we may use, and its tarball is not on a package registry, but the
whole Community edition is on Maven Central (`org.neo4j:neo4j`). So install resolves those jars into
the cache, compiles `neo4j_launcher/Launcher.java` against them with javac, and the launcher starts a
`DatabaseManagementService` with the Bolt connector on 127.0.0.1:NEO4J_BOLT. There is no HTTP
connector (the embedded API does not start Neo4j's web server); clients use Bolt only.

Authentication is on: user `neo4j`, password `culture-dev-password` (set by the launcher on the first
start of a new store). Data lives in `<state>/data/neo4j` (Neo4j's home: `data/` and `logs/` in it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from culture_stack import debian, process, tools
from culture_stack.ports import HOST, NEO4J_BOLT
from culture_stack.server import Context, Launch, Server, StackError, say

#: the newest 5.x LTS release on Maven Central (5.26 is the last 5.x line; 2025.x+ is calendar-versioned)
VERSION = "5.26.30"
#: `org.neo4j:neo4j` is the Community edition with all its modules, Bolt server included
ARTIFACTS = [f"org.neo4j:neo4j:{VERSION}"]
USER = "neo4j"
PASSWORD = "culture-dev-password"
URI = f"bolt://{HOST}:{NEO4J_BOLT}"
#: JDKs Neo4j 5 supports, in order of preference
SUPPORTED_JAVA = (17, 21)
HEAP = "1g"
PAGECACHE = "256m"

LAUNCHER_SOURCE = Path(__file__).with_name("neo4j_launcher") / "Launcher.java"
LAUNCHER_CLASS = "Launcher"

JVM_FLAGS = (
    # a dev and test server: C1 only halves the CPU start-up burns (~20 s -> ~10 s), and on a busy
    # 2-core machine start-up time matters far more than peak query throughput
    "-XX:TieredStopAtLevel=1",
    # the rest is what Neo4j's own start script passes on Java 17+ (Netty and the page cache reach
    # into the JDK)
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-Dfile.encoding=UTF-8",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
)


def launcher_key(source: bytes, version: str = VERSION) -> str:
    """Cache key of a compiled launcher: a changed source or Neo4j version compiles anew."""
    return hashlib.sha256(source + b"\0" + version.encode()).hexdigest()[:16]


def java_argv(java: Path, classpath: list[Path | str], home: Path, *, heap: str = HEAP,
              pagecache: str = PAGECACHE) -> list[str]:
    """The command line that runs the launcher (pure: no file system access)."""
    return [
        str(java), "-Xms256m", f"-Xmx{heap}", *JVM_FLAGS,
        "-cp", os.pathsep.join(str(p) for p in classpath),
        LAUNCHER_CLASS, f"--home={home}", f"--bolt={HOST}:{NEO4J_BOLT}", f"--pagecache={pagecache}",
    ]


def format_version(name: str, versions: list[str], edition: str) -> str:
    """`CALL dbms.components()` row -> "Neo4j Kernel 5.26.30 community"."""
    return f"{name} {versions[0] if versions else '?'} {edition}".strip()


def java_home() -> Path:
    """A JDK Neo4j 5 supports (17 or 21); any JDK >= 17 only as a last resort."""
    for major in SUPPORTED_JAVA:
        try:
            return tools.java_home_exact(major)
        except StackError:
            continue
    home = tools.java_home(17)
    say(f"  neo4j: no JDK 17 or 21 under /usr/lib/jvm, trying {home} (Neo4j 5 supports 17 and 21 only)")
    return home


def _javac(home: Path) -> Path:
    javac = home / "bin" / "javac"
    if javac.exists():
        return javac
    # a JRE without the compiler: the headless JDK package adds javac to the same home
    debian.install([debian.COMMANDS["javac"].package])
    for candidate in (javac, tools.java_home_exact(17) / "bin" / "javac"):
        if candidate.exists():
            return candidate
    raise StackError(f"javac not found in {home}; install a JDK: apt-get install -y openjdk-17-jdk-headless")


class Neo4j(Server):
    name = "neo4j"
    port = NEO4J_BOLT
    commands = ("mvn",)  # Maven resolves the jars from Maven Central
    # a new store creates the system and neo4j databases; on a busy 2-core machine that takes a while
    start_timeout = 300.0
    stop_timeout = 90.0

    def _lib(self, ctx: Context) -> Path:
        return ctx.tool(self.name, "lib")

    def _launcher_dir(self, ctx: Context) -> Path:
        return ctx.tool(self.name, "launcher", launcher_key(LAUNCHER_SOURCE.read_bytes()))

    def install(self, ctx: Context) -> None:
        if not LAUNCHER_SOURCE.exists():
            raise StackError(f"the Neo4j launcher source is missing: {LAUNCHER_SOURCE}")
        lib = tools.maven_classpath(ctx, self.name, ARTIFACTS)
        target = self._launcher_dir(ctx)
        if (target / f"{LAUNCHER_CLASS}.class").exists():
            return
        javac = _javac(java_home())
        target.parent.mkdir(parents=True, exist_ok=True)
        # compile into a temporary sibling and rename, so an interrupted build never looks finished
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            say(f"  neo4j: compiling {LAUNCHER_SOURCE.name} (first time only)...")
            process.run(
                [str(javac), "--release", "17", "-nowarn", "-cp", f"{lib}/*", "-d", str(tmp),
                 str(LAUNCHER_SOURCE)],
                what=f"javac {LAUNCHER_SOURCE.name}", log=ctx.tool(self.name, "javac.log"),
            )
            tmp.rename(target)
            # launchers compiled from older sources are dead weight now
            for old in target.parent.iterdir():
                if old != target and not old.name.startswith("."):
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def init_data(self, ctx: Context) -> None:
        ctx.data(self.name).mkdir(parents=True, exist_ok=True)

    def launch(self, ctx: Context) -> Launch:
        java = java_home() / "bin" / "java"
        argv = java_argv(java, [self._launcher_dir(ctx), f"{self._lib(ctx)}/*"], ctx.data(self.name))
        # the password travels in the environment so it is not written into the log's command line
        return Launch(argv, env={"NEO4J_PASSWORD": PASSWORD}, cwd=ctx.data(self.name))

    def _driver(self):
        from neo4j import GraphDatabase

        return GraphDatabase.driver(URI, auth=(USER, PASSWORD), connection_timeout=2.0,
                                    connection_acquisition_timeout=3.0, max_connection_pool_size=1)

    def _query(self, cypher: str) -> list[Any]:
        with self._driver() as driver, driver.session(database="neo4j") as session:
            return list(session.run(cypher))

    def healthy(self, ctx: Context) -> bool:
        return process.port_open(self.port) and self._query("RETURN 1 AS one")[0]["one"] == 1

    def version(self, ctx: Context) -> str:
        rows = self._query("CALL dbms.components() YIELD name, versions, edition RETURN *")
        return ", ".join(format_version(r["name"], r["versions"], r["edition"]) for r in rows)

    def settings(self) -> dict[str, Any]:
        return {"uri": URI, "host": HOST, "port": NEO4J_BOLT, "user": USER, "password": PASSWORD,
                "database": "neo4j"}
