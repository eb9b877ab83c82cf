"""One ChaosRun per session (culture_stack.chaos): every role of the slice as processes, each server
behind a proxy the run owns, in a topic namespace, schema, database and keyspace of its own."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from culture_stack import registry, stack
from culture_stack.chaos import ChaosRun
from culture_stack.server import Context


@pytest.fixture(scope="session")
def chaos_servers(stack_ctx: Context) -> Context:
    wanted = ["postgres", "redis", "kafka", "mongo", "neo4j", "cassandra", "smtp"]
    stack.up(stack_ctx, registry.select(wanted))
    return stack_ctx


@pytest.fixture(scope="package")  # its 17 processes end with this directory's tests
async def chaos_run(chaos_servers: Context, tmp_path_factory: pytest.TempPathFactory,
                    issued_names: set[str]) -> AsyncIterator[ChaosRun]:
    logs = Path(tempfile.mkdtemp(prefix="chaos-logs-"))  # kept: the roles' logs explain a failure
    run = ChaosRun(logs)
    print(f"chaos run {run.run_id}: role logs in {logs}")
    issued_names.add(run.run_id)  # the run's topics go at the end of the session
    try:
        await asyncio.to_thread(run.start)
        yield run
    finally:
        await asyncio.to_thread(run.stop)
