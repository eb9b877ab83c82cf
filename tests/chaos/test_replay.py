"""`culture replay feed --from earliest` on a real run: after a workload, the feed is rebuilt from the
run's topics into a new keyspace, which the consistency checker finds in agreement with the write
models; the configured keyspace then points to it, the restarted feed roles serve it, and a second
workload after the switch lands in it too (the new worker goes on from the rebuild's offsets).
`culture replay graph --from earliest` likewise rebuilds the graph under a new label prefix (follows,
unfollows and re-follows included, from graph.follow-created/removed): the rebuilt follows are the
live graph's exactly, the checker finds the rebuilt graph consistent, the restarted graph roles serve
it, and a workload after the switch lands in it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from culture_cli import consistency
from culture_stack.chaos import ChaosRun, Workload

pytestmark = pytest.mark.integration


def _culture(run: ChaosRun, *args: str) -> subprocess.CompletedProcess[str]:
    assert run.supervisor is not None
    graph_read = run.supervisor.child("graph", "api-read").port
    env = {**os.environ, **run.base_env(), "CULTURE_FEED_GRAPH_READ": f"127.0.0.1:{graph_read}"}
    culture = Path(sys.executable).with_name("culture")
    return subprocess.run([str(culture), *args], env=env, capture_output=True, text=True, timeout=600)


async def _workload(run: ChaosRun, prefix: str) -> Workload:
    async def settle(phase: str) -> None:
        if phase == "rated":
            differences, _, text = await run.check(prefix, within=90, models=("graph",))
            assert not differences, text

    workload = Workload(run.gateway, prefix, users=4)
    await workload.run(settle)
    return workload


async def test_the_feed_is_rebuilt_from_kafka_and_switched_to(chaos_run: ChaosRun) -> None:
    before = "rb" + uuid.uuid4().hex[:6]
    await _workload(chaos_run, before)
    differences, _, text = await chaos_run.check(before, within=120)
    assert not differences, text

    keyspace = f"feed_{chaos_run.run_id}_rebuilt"
    chaos_run.extra_keyspaces.append(keyspace)
    replay = await asyncio.to_thread(_culture, chaos_run, "replay", "feed", "--from", "earliest",
                                     "--keyspace", keyspace, "--within", "300")
    print(replay.stderr[-2000:], replay.stdout)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"now points to {keyspace}" in replay.stdout
    # the rebuilt keyspace alone agrees with the write models
    differences, seconds, text = await chaos_run.check(before, within=60, keyspace=keyspace)
    print(f"rebuilt feed agrees after {seconds:.1f}s\n{text}")
    assert not differences, text

    # the feed roles switch at their restart; a workload after the switch lands in the new keyspace
    for role in ("worker", "api-read"):
        await asyncio.to_thread(chaos_run.stop_role, "feed", role)
        await asyncio.to_thread(chaos_run.restart, "feed", role)
    assert f"points to keyspace {keyspace}" in chaos_run.log_of("feed", "worker")
    after = "ra" + uuid.uuid4().hex[:6]
    await _workload(chaos_run, after)
    for prefix in (before, after):
        differences, _, text = await chaos_run.check(prefix, within=120, keyspace=keyspace)
        assert not differences, text


async def _follows(run: ChaosRun, prefix: str, graph_prefix: str) -> list[tuple[str, str, object]]:
    """The follows among the users of workload `prefix` in the graph of label prefix `graph_prefix`."""
    from culture_cli.consistency_io import Scope, gather

    write, _ = await gather(run.sources(graph_prefix=graph_prefix), Scope(username_prefix=prefix), ("graph",))
    return sorted((f.follower, f.followee, f.at) for f in write.follows)


async def test_the_graph_is_rebuilt_from_kafka_and_switched_to(chaos_run: ChaosRun) -> None:
    before = "gb" + uuid.uuid4().hex[:6]
    workload = await _workload(chaos_run, before)
    # an unfollow, and an unfollow followed by a follow again: the replay must keep their order
    a, b, c = workload.accounts[:3]
    async with httpx.AsyncClient(base_url=chaos_run.gateway, timeout=30) as client:
        for method, who, whom in (("DELETE", a, b), ("DELETE", b, c), ("PUT", b, c)):
            reply = await client.request(method, f"/api/users/{whom.user_id}/follow", headers=who.auth)
            assert reply.status_code < 300, reply.text
    # the graph only: the checker's feed rule knows current follows only, and reports the timeline
    # copies an unfollow leaves (kept by design, docs/feed.md) as unexpected
    differences, _, text = await chaos_run.check(before, within=120, models=("graph",))
    assert not differences, text
    live = await _follows(chaos_run, before, chaos_run.graph_prefix)
    pairs = {f[:2] for f in live}
    assert (a.user_id, b.user_id) not in pairs and (b.user_id, c.user_id) in pairs

    prefix = f"R{chaos_run.run_id}_"
    chaos_run.extra_graph_prefixes.append(prefix)
    replay = await asyncio.to_thread(_culture, chaos_run, "replay", "graph", "--from", "earliest",
                                     "--label-prefix", prefix, "--within", "300")
    print(replay.stderr[-2000:], replay.stdout)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"now points to {prefix!r}" in replay.stdout
    # the rebuilt graph's follows are the live graph's (the same times), and it agrees with the write models
    assert await _follows(chaos_run, before, prefix) == live
    differences, seconds, text = await chaos_run.check(before, within=60, models=("graph",),
                                                       graph_prefix=prefix)
    print(f"rebuilt graph agrees after {seconds:.1f}s\n{text}")
    assert not differences, text

    # the graph roles switch at their restart; a workload after the switch lands in the new graph
    for role in ("worker", "api-write", "api-read"):
        await asyncio.to_thread(chaos_run.stop_role, "graph", role)
        await asyncio.to_thread(chaos_run.restart, "graph", role)
    assert f"points to label prefix {prefix!r}" in chaos_run.log_of("graph", "api-write")
    after = "ga" + uuid.uuid4().hex[:6]
    await _workload(chaos_run, after)
    for workload_prefix, models in ((before, ("graph",)), (after, consistency.MODELS)):
        differences, _, text = await chaos_run.check(workload_prefix, within=120, models=models,
                                                     graph_prefix=prefix)
        assert not differences, text
