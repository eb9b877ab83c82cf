"""Shared fixtures: the local stack, brought up once per session, and unique names per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from culture_stack import process, registry, stack
from culture_stack.endpoints import platform_env
from culture_stack.server import Context


def pytest_configure(config: pytest.Config) -> None:
    """The services have no default endpoints: the tests point them (PlatformSettings in this process,
    and the `culture serve` children, which inherit the environment) at the local stack, unless the
    environment already says otherwise."""
    for name, value in platform_env().items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def stack_ctx() -> Context:
    return Context.default()


@pytest.fixture(scope="session")
def stack_settings(stack_ctx: Context) -> dict[str, Any]:
    """Connection settings of every server, after making sure the whole stack is up (idempotent)."""
    servers = registry.all_servers()
    stack.up(stack_ctx, servers)
    return {s.name: s.settings() for s in servers}


@pytest.fixture(scope="session")
def issued_names() -> Iterator[set[str]]:
    """Every unique name this session handed out; at the end, the Kafka topics named after them go.

    Topics are the one kind of test leftover that costs later runs: a broker holding thousands of
    partitions takes minutes to start. Only topics containing one of OUR names are deleted, so a
    second session on the same stack keeps its own.
    """
    names: set[str] = set()
    yield names
    if names:
        asyncio.run(_drop_topics_named_after(names))


async def _drop_topics_named_after(names: set[str]) -> None:
    kafka = registry.select(["kafka"], with_dependencies=False)[0]
    if not process.port_open(kafka.port):
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.settings()["bootstrap_servers"])
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if any(n in t for n in names)]
        for i in range(0, len(ours), 100):
            await admin.delete_topics(ours[i : i + 100])
    finally:
        await admin.close()


@pytest.fixture
def unique(issued_names: set[str]) -> str:
    """A short name no other test (or earlier run) uses: for topics, keyspaces, databases, groups."""
    name = "t" + uuid.uuid4().hex[:12]
    issued_names.add(name)
    return name


LAYERS = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is in exactly one layer: `make test` runs one pytest per layer marker, so a test
    with none would never run and a test with two would run twice."""
    wrong = [f"{item.nodeid}: {found or 'no layer marker'}" for item in items
             if len(found := [m for m in LAYERS if item.get_closest_marker(m)]) != 1]
    if wrong:
        raise pytest.UsageError("each test needs exactly one of the markers "
                                f"{', '.join(LAYERS)}:\n  " + "\n  ".join(wrong))
    # `make test` runs the integration layer on two pytest-xdist workers with --dist loadgroup: a
    # folder's tests stay on one worker, so its session fixtures (a slice run's role processes, a
    # chaos run) start once, and the folders share the two workers
    root = Path(__file__).resolve().parent
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(root).parts
        item.add_marker(pytest.mark.xdist_group(parts[0] if len(parts) > 1 else "tests"))
