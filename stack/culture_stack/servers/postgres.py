"""PostgreSQL from the Debian package: our own cluster (initdb + postgres), not the system one."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from culture_stack import debian, process
from culture_stack.ports import HOST, POSTGRES
from culture_stack.server import Context, Launch, Server, run_sync

USER = "culture"
PASSWORD = "culture"
DATABASE = "culture"
OS_USER = "postgres"  # PostgreSQL refuses to run as root


def _bindir() -> Path:
    """The newest PostgreSQL's server binaries (Debian keeps them off PATH), installed if missing."""
    return Path(debian.need("initdb")).parent


def dsn(database: str = DATABASE) -> str:
    return f"postgresql://{USER}:{PASSWORD}@{HOST}:{POSTGRES}/{database}"


class Postgres(Server):
    name = "postgres"
    port = POSTGRES
    start_timeout = 60.0
    commands = ("initdb", "postgres")

    def install(self, ctx: Context) -> None:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OS_USER)
            except KeyError:
                process.run(["useradd", "--system", "--no-create-home", OS_USER])

    def _as_user(self) -> list[str]:
        return ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            ent = pwd.getpwnam(OS_USER)
            for p in [path, *path.rglob("*")]:
                os.chown(p, ent.pw_uid, ent.pw_gid)

    def init_data(self, ctx: Context) -> None:
        data = ctx.data(self.name)
        run = ctx.state / "run" / "postgres"
        run.mkdir(parents=True, exist_ok=True)
        self._chown(run)
        for parent in (ctx.state, ctx.state / "data", ctx.state / "run"):
            parent.mkdir(parents=True, exist_ok=True)
            parent.chmod(0o755)
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        self._chown(data)
        pwfile = ctx.state / "run" / "postgres" / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self._chown(pwfile)
        try:
            process.run(
                [*self._as_user(), str(_bindir() / "initdb"), "-D", str(data), "-U", USER,
                 f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--locale=C.UTF-8"],
                what=f"initdb {data}", log=ctx.log("postgres-initdb"),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# culture stack\n"
                f"listen_addresses = '{HOST}'\nport = {POSTGRES}\n"
                f"unix_socket_directories = '{run}'\n"
                "max_connections = 300\nshared_buffers = 256MB\nfsync = on\n"
                "max_prepared_transactions = 0\nwal_level = logical\n"
            )

    def launch(self, ctx: Context) -> Launch:
        return Launch([*self._as_user(), str(_bindir() / "postgres"), "-D", str(ctx.data(self.name))])

    def _query(self, sql: str) -> Any:
        import asyncpg

        async def go() -> Any:
            conn = await asyncpg.connect(dsn("postgres"), timeout=3)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return run_sync(go())

    def healthy(self, ctx: Context) -> bool:
        return process.port_open(self.port) and self._query("SELECT 1") == 1

    def version(self, ctx: Context) -> str:
        return "PostgreSQL " + self._query("SHOW server_version")

    def after_start(self, ctx: Context) -> None:
        exists = self._query(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if not exists:
            self._query(f'CREATE DATABASE "{DATABASE}"')

    def settings(self) -> dict[str, Any]:
        return {"host": HOST, "port": POSTGRES, "user": USER, "password": PASSWORD,
                "database": DATABASE, "dsn": dsn()}


