"""Redis from the Debian package, with append-only persistence under the state directory."""

from __future__ import annotations

from typing import Any

from culture_stack import debian
from culture_stack.ports import HOST, REDIS
from culture_stack.server import Context, Launch, Server


class Redis(Server):
    name = "redis"
    port = REDIS
    start_timeout = 30.0
    commands = ("redis-server",)

    def init_data(self, ctx: Context) -> None:
        ctx.data(self.name).mkdir(parents=True, exist_ok=True)
        conf = ctx.conf(self.name)
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "redis.conf").write_text(
            f"bind {HOST}\nport {REDIS}\nprotected-mode yes\ndaemonize no\n"
            f"dir {ctx.data(self.name)}\nappendonly yes\nsave 60 1000\n"
            "maxclients 2000\nlogfile \"\"\n"
        )

    def launch(self, ctx: Context) -> Launch:
        return Launch([debian.need("redis-server"),
                       str(ctx.conf(self.name) / "redis.conf")])

    def _client(self):
        import redis

        return redis.Redis(host=HOST, port=REDIS, socket_timeout=3)

    def healthy(self, ctx: Context) -> bool:
        with self._client() as r:
            return bool(r.ping())

    def version(self, ctx: Context) -> str:
        with self._client() as r:
            return "Redis " + r.info("server")["redis_version"]

    def settings(self) -> dict[str, Any]:
        return {"host": HOST, "port": REDIS, "url": f"redis://{HOST}:{REDIS}/0"}
