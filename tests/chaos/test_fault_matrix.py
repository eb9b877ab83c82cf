"""The fault matrix, bounded (each fault once, a workload of 4 users): during registrations, follows
and reviews through the gateway, Kafka unreachable, the relays and the workers killed with SIGKILL and
started again, each store unreachable for a while, SMTP refusing connections. Every fault is a proxy
of the run's own or a process of its own: the shared servers keep running. Afterwards the consistency
checker must report 0 lost, 0 duplicated and 0 unexpected effects for the workload, and no request
(the workload's, or the reads of what it made beside it) may have been answered 500; the time to
converge is printed (bench/chaos.py runs longer outages, bigger workloads and each role alone)."""

from __future__ import annotations

import pytest

from culture_stack.chaos import FAULTS, ChaosRun, run_fault

pytestmark = pytest.mark.integration

@pytest.mark.parametrize("fault", FAULTS)
async def test_no_effect_is_lost_or_duplicated_after(chaos_run: ChaosRun, fault: str) -> None:
    # a worker killed, or the MongoDB-compatible server cut, inside a catalog transaction leaves it open
    # until the server reaps it (60 s idle): the worker meets WriteConflict meanwhile and retries within
    # its budget (minutes), so those cases may take a minute to converge
    within = 90.0 if fault in ("workers", "mongo") else 60.0
    result = await run_fault(chaos_run, fault, users=4, outage=5.0, converge_within=within)
    print(result.line())
    assert not result.differences, f"{result.line()}\npoisoned: {result.poison}\n{result.report}"
    # a store away is 503 (retry), never 500 (a bug), for the workload's writes and the reads beside it
    assert not result.internal, "\n".join(result.internal)
