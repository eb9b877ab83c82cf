"""The stack's MongoDB-wire-compatible server: SecantusDB, from PyPI, in its own venv in the cache.

No real mongod can be obtained from the package registries, so the stack runs SecantusDB (a
MongoDB-compatible server written in Python on WiredTiger). It advertises itself as the primary of a
single-node replica set named `secantus`, which is what drivers need before they allow
multi-document transactions and change streams. FerretDB 1.24 was evaluated too and rejected: it
has no transactions; docs/mongo-compat.md has the measurements and what SecantusDB lacks.

SecantusDB lives in a private venv under the cache, not in the project's venv: it pulls numpy and
shapely (for geo queries) and is GPL-2.0, and neither belongs in the services' dependencies.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from culture_stack import process
from culture_stack.ports import HOST, MONGO
from culture_stack.server import Context, Launch, Server, StackError, say

SECANTUS_VERSION = "0.7.0b3"
#: the replica-set name SecantusDB advertises in `hello` (fixed by the server)
REPLICA_SET = "secantus"
#: the database the services use by default; tests use their own unique databases
DATABASE = "culture"
#: directConnection: talk to this one node whatever host names it advertises; transactions still
#: work because the node reports itself as a replica-set primary
URI = f"mongodb://{HOST}:{MONGO}/?directConnection=true"


def _client(uri: str = URI, timeout_ms: int = 2000) -> Any:
    """A short-lived synchronous client for health and version checks."""
    import pymongo

    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                               socketTimeoutMS=timeout_ms)


def check_health(uri: str) -> bool:
    """`ping`, then `listDatabases`. Ping never touches storage, so it still answers when SecantusDB's
    storage lock is stuck (docs/mongo-compat.md, "dropping under an open transaction");
    listDatabases takes that lock, and times out instead."""
    import pymongo.errors

    # 5 s, not 2: a big insert_many or drop legitimately holds the storage lock for a few seconds
    with _client(uri, timeout_ms=5000) as client:
        if client.admin.command("ping").get("ok") != 1:
            return False
        try:
            client.list_database_names()
        except pymongo.errors.NetworkTimeout as exc:
            raise StackError(
                "mongo answers ping but its storage is stuck (typically a drop of a database or "
                "collection while a transaction on it was open); restart it with "
                "`culture stack down mongo && culture stack up mongo`"
            ) from exc
    return True


def describe_build(build_info: dict[str, Any]) -> str:
    """One line from a `buildInfo` reply: the server's own version and the MongoDB one it emulates."""
    wire = build_info.get("version", "?")
    if "secantusVersion" in build_info:
        return f"SecantusDB {build_info['secantusVersion']} (MongoDB wire {wire})"
    if "ferretdbVersion" in build_info:
        return f"FerretDB {build_info['ferretdbVersion']} (MongoDB wire {wire})"
    return f"MongoDB {wire}"


class Mongo(Server):
    """SecantusDB on 127.0.0.1:ports.MONGO, data under `<state>/data/mongo`."""

    name = "mongo"
    port = MONGO
    start_timeout = 90.0
    stop_timeout = 30.0

    def _venv(self, ctx: Context) -> Path:
        return ctx.tool("secantusdb", SECANTUS_VERSION)

    def _daemon(self, ctx: Context) -> Path:
        return self._venv(ctx) / "bin" / "secantusd-py"

    def install(self, ctx: Context) -> None:
        """Create a private venv with SecantusDB from PyPI (first time only, about a minute)."""
        venv = self._venv(ctx)
        marker = venv / ".installed"
        if marker.exists() and self._daemon(ctx).exists():
            return
        if venv.exists():
            shutil.rmtree(venv)  # a half-finished earlier attempt
        say(f"  mongo: installing SecantusDB {SECANTUS_VERSION} from PyPI into {venv} (first time only)...")
        log = ctx.tool("secantusdb", "install.log")
        # no pip inside the new venv: the project's own pip installs into it (`pip --python`), which
        # skips the slow ensurepip step
        process.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                    what=f"python -m venv --without-pip {venv}", log=log)
        process.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
             "--disable-pip-version-check", "-q", f"secantusdb=={SECANTUS_VERSION}"],
            what=f"pip install secantusdb=={SECANTUS_VERSION}", log=log,
        )
        if not self._daemon(ctx).exists():
            raise StackError(f"secantusdb installed but {self._daemon(ctx)} is missing; see {log}")
        marker.write_text(SECANTUS_VERSION + "\n")

    def init_data(self, ctx: Context) -> None:
        """Create the data directory (kept across restarts) and write the server's config file."""
        ctx.data(self.name).mkdir(parents=True, exist_ok=True)
        conf = ctx.conf(self.name)
        conf.mkdir(parents=True, exist_ok=True)
        # an explicit --config also turns off SecantusDB's auto-discovery of ~/.secantus/secantusd.toml
        (conf / "secantusd.toml").write_text(
            "[server]\n"
            f'host = "{HOST}"\nport = {MONGO}\n'
            f'storage_path = "{ctx.data(self.name)}"\n'
            'log_level = "INFO"\n'
            "[storage]\n"
            # the WiredTiger default is 1G; the stack shares a small machine with a dozen servers
            'cache_size = "256M"\n'
        )

    def launch(self, ctx: Context) -> Launch:
        return Launch([str(self._daemon(ctx)), "--config", str(ctx.conf(self.name) / "secantusd.toml")],
                      cwd=ctx.data(self.name))

    def healthy(self, ctx: Context) -> bool:
        return process.port_open(self.port) and check_health(URI)

    def version(self, ctx: Context) -> str:
        with _client() as client:
            return describe_build(client.admin.command("buildInfo"))

    def settings(self) -> dict[str, Any]:
        return {"host": HOST, "port": MONGO, "uri": URI, "replica_set": REPLICA_SET, "database": DATABASE}
