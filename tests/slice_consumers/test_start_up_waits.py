"""Roles started before their servers answer (a node starting twenty processes at once, a pod whose
database is still opening its files) keep trying their first contact instead of exiting, then serve:
the notifier's and mailer's Redis, identity's PostgreSQL and Redis (culture_runtime.startup). Each
server is behind a proxy the test owns, closed while the roles start."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import pytest
from _consumers_support import Role

from culture_events.testing import wait_until
from culture_events.testing.tcp_proxy import TcpProxy
from culture_runtime.settings import PlatformSettings
from culture_stack import registry, stack
from culture_stack.server import Context

pytestmark = pytest.mark.integration


def _with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")
    netloc = f"{host[0]}{host[1]}{parts.hostname}:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def test_roles_started_before_redis_and_postgresql_answer_wait_for_them_and_then_serve(
        consumer_servers: Context, unique: str, roles: Callable[..., Role]) -> None:
    stack.up(consumer_servers, registry.select(["postgres"]))
    plat = PlatformSettings()
    redis_url, dsn = plat.redis_url or "", plat.postgres_dsn or ""
    proxies = {
        "Redis": TcpProxy(urllib.parse.urlsplit(redis_url).hostname or "127.0.0.1",
                          urllib.parse.urlsplit(redis_url).port or 6379),
        "PostgreSQL": TcpProxy(urllib.parse.urlsplit(dsn).hostname or "127.0.0.1",
                               urllib.parse.urlsplit(dsn).port or 5432),
    }
    for proxy in proxies.values():
        await proxy.open()
        await proxy.close()  # its port is known; nothing answers on it yet
    env = {"CULTURE_REDIS_URL": _with_port(redis_url, proxies["Redis"].port),
           "CULTURE_POSTGRES_DSN": _with_port(dsn, proxies["PostgreSQL"].port),
           "CULTURE_IDENTITY_DB_SCHEMA": f"wait_{unique}",
           "CULTURE_NOTIFIER_CONSUMER_GROUP": f"notifier-{unique}",
           "CULTURE_MAILER_CONSUMER_GROUP": f"mailer-{unique}"}
    started = [(roles("notifier", "api-read", env), "Redis"), (roles("mailer", "worker", env), "Redis"),
               (roles("identity", "api-write", env), "PostgreSQL")]
    try:
        for role, server in started:
            await wait_until(lambda r=role, s=server: f"{s} not reachable yet" in r.output(), 60,
                             f"{role.service} {role.role} to wait for {server}", interval=0.2)
            assert role.proc is not None and role.proc.poll() is None, role.output()[-3000:]
        for proxy in proxies.values():
            await proxy.open()
        for role, _ in started:
            await role.serving(within=90)
    finally:
        for role, _ in started:
            role.stop()
        for proxy in proxies.values():
            await proxy.close()
        await _drop_schema(dsn, f"wait_{unique}")


async def _drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
