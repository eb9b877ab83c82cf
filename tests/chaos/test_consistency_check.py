"""`culture check consistency` on a real run: a small registration + follow + review workload through
the gateway and every role, then the checker agrees (exit 0); then one feed copy and one profile are
deleted behind the services' backs, and the checker reports exactly those two lost effects, with
their ids, and exits 1. Scoped by the workload's usernames: the shared servers hold other data."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from culture_cli import consistency
from culture_cli.consistency_io import Scope, gather
from culture_stack.chaos import ChaosRun, Workload

pytestmark = pytest.mark.integration


def _cli(run: ChaosRun, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `culture check consistency`, with the run's settings as a deployment sets them."""
    env = {**os.environ, "CULTURE_IDENTITY_DB_SCHEMA": run.schema, "CULTURE_CATALOG_DATABASE": run.catalog_db,
           "CULTURE_FEED_KEYSPACE": run.keyspace, "CULTURE_GRAPH_LABEL_PREFIX": run.graph_prefix}
    culture = Path(sys.executable).with_name("culture")
    return subprocess.run([str(culture), "check", "consistency", *args], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_the_checker_agrees_after_a_workload_and_reports_damage(chaos_run: ChaosRun) -> None:
    prefix = "cc" + uuid.uuid4().hex[:6]
    workload = Workload(chaos_run.gateway, prefix, users=4)

    async def settle(phase: str) -> None:
        if phase == "rated":  # interests first: the fan-out asks the graph who is interested
            differences, _, text = await chaos_run.check(prefix, within=90, models=("graph",))
            assert not differences, text

    await workload.run(settle)
    differences, seconds, text = await chaos_run.check(prefix, within=120)
    print(f"converged in {seconds:.1f}s\n{text}")
    assert not differences, text
    spool = str(chaos_run.sources().smtp_spool)
    agreed = await asyncio.to_thread(_cli, chaos_run, "--username-prefix", prefix, "--smtp-spool", spool)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "consistent: 0 lost, 0 duplicated, 0 unexpected" in agreed.stdout
    assert "scope: 4 users, 12 reviews, 8 follows" in agreed.stdout

    # damage: one required feed copy and one profile
    write, read = await gather(chaos_run.sources(), Scope(username_prefix=prefix), consistency.MODELS)
    required = sorted(consistency.expected_copies(write, read.interests or {}, read.celebrities))
    assert required, "the workload should need feed copies"
    reader, review = required[0]
    victim = write.users[-1].user_id
    await asyncio.to_thread(_delete_copy, chaos_run, reader, review)
    import pymongo

    with pymongo.MongoClient(chaos_run.platform.mongo_uri, serverSelectionTimeoutMS=10000) as mongo:
        assert mongo[chaos_run.catalog_db]["profiles"].delete_one({"_id": victim}).deleted_count == 1

    damaged = await asyncio.to_thread(_cli, chaos_run, "--username-prefix", prefix)
    print(damaged.stdout)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    lines = [line.strip() for line in damaged.stdout.splitlines()]
    assert [line for line in lines if line.startswith(("lost ", "duplicated ", "unexpected "))
            and " effects (" not in line] == [
        f"lost       profiles {victim}  (no profile)",
        f"lost       feed     {reader}/{review}  (no timeline copy)",
    ]
    assert lines[-1] == "INCONSISTENT: 2 lost, 0 duplicated, 0 unexpected"


def _delete_copy(run: ChaosRun, reader: str, review: str) -> None:
    from cassandra.cluster import Cluster

    platform = run.platform
    cluster = Cluster((platform.cassandra_contact_points or "").split(","), port=platform.cassandra_port,
                      protocol_version=5,
                      load_balancing_policy=_policy())
    try:
        session = cluster.connect(run.keyspace)
        deleted = 0
        for b in session.execute("SELECT bucket FROM timeline_buckets WHERE user_id = %s", (reader,)):
            rows = session.execute("SELECT item_id, review_id FROM timeline "
                                   "WHERE user_id = %s AND bucket = %s", (reader, b.bucket))
            for row in rows:
                if row.review_id == review:
                    session.execute("DELETE FROM timeline WHERE user_id = %s AND bucket = %s "
                                    "AND item_id = %s", (reader, b.bucket, row.item_id))
                    deleted += 1
        assert deleted == 1
    finally:
        cluster.shutdown()


def _policy() -> object:
    from cassandra.policies import RoundRobinPolicy

    return RoundRobinPolicy()
