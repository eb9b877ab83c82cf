"""The servers of the local stack, in start order."""

from __future__ import annotations

import importlib

from culture_stack.server import Server, StackError

# module under culture_stack.servers -> class; start order respects depends_on
_RECIPES: tuple[tuple[str, str], ...] = (
    ("postgres", "Postgres"),
    ("redis", "Redis"),
    ("kafka", "Kafka"),
    ("cassandra", "Cassandra"),
    ("neo4j", "Neo4j"),
    ("mongo", "Mongo"),
    ("smtp", "SmtpSink"),
    ("kube", "Etcd"),
    ("kube", "KubeApiServer"),
    ("kube", "KubeControllerManager"),
)


def all_servers() -> list[Server]:
    """Every server recipe that exists in this checkout, in start order."""
    servers: list[Server] = []
    for module, cls in _RECIPES:
        try:
            mod = importlib.import_module(f"culture_stack.servers.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"culture_stack.servers.{module}":
                continue  # recipe not written yet
            raise
        servers.append(getattr(mod, cls)())
    return servers


def select(names: list[str] | None, *, with_dependencies: bool = True) -> list[Server]:
    """The named servers (plus, by default, everything they depend on), in start order.

    All servers when names is empty.
    """
    servers = all_servers()
    if not names:
        return servers
    by_name = {s.name: s for s in servers}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise StackError(f"unknown server(s) {unknown}; known: {sorted(by_name)}")
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in by_name[name].depends_on:
                add(dep)

    for n in names:
        if with_dependencies:
            add(n)
        else:
            wanted.add(n)
    return [s for s in servers if s.name in wanted]
