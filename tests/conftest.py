"""Shared fixtures: the local stack, brought up once per session, and unique names per test."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from culture_stack import registry, stack
from culture_stack.server import Context


@pytest.fixture(scope="session")
def stack_ctx() -> Context:
    return Context.default()


@pytest.fixture(scope="session")
def stack_settings(stack_ctx: Context) -> dict[str, Any]:
    """Connection settings of every server, after making sure the whole stack is up (idempotent)."""
    servers = registry.all_servers()
    stack.up(stack_ctx, servers)
    return {s.name: s.settings() for s in servers}


@pytest.fixture
def unique() -> str:
    """A short name no other test (or earlier run) uses: for topics, keyspaces, databases, groups."""
    return "t" + uuid.uuid4().hex[:12]
