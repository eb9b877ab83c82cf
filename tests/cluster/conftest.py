"""Fixtures of the real-node e2e tests: the single-node cluster, kubectl, a namespace per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cluster_kube import Kube

from culture_stack import registry, stack
from culture_stack.server import Context


@pytest.fixture(scope="session")
def cluster_ctx() -> Context:
    return Context.default()


@pytest.fixture(scope="session")
def cluster(cluster_ctx: Context) -> Kube:
    """The stack's servers the platform's built services use, plus the single-node cluster, up and Ready
    (idempotent)."""
    if os.geteuid() != 0:
        pytest.skip("the real-node cluster needs root")
    from culture_stack.cluster import lifecycle

    stack.up(cluster_ctx, registry.select(["postgres", "redis", "kafka", "mongo", "smtp"]))
    lifecycle.up(cluster_ctx)
    return Kube(cluster_ctx)


@pytest.fixture(scope="session")
def base_image(cluster: Kube, cluster_ctx: Context) -> str:
    """The locally built Python base image, in the local registry."""
    from culture_stack.cluster import images

    return images.build_base(cluster_ctx)


@pytest.fixture
def namespace(cluster: Kube, unique: str) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    cluster.run("create", "namespace", unique)
    yield unique
    cluster.run("delete", "namespace", unique, "--wait=false", check=False)
