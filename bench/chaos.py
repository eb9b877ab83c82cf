"""The fault matrix, long form: every role of the slice as local processes behind proxies the run owns
(culture_stack.chaos.ChaosRun), and for each fault a fresh workload of registrations, follows and
reviews through the gateway, the fault in the middle of it, then `culture check consistency`'s
comparison until it agrees. Prints, per fault, how long it lasted, the time to converge after it, the
lost / duplicated / unexpected effects and the poisoned messages.

Faults: kafka, postgres, mongo, cassandra, neo4j, redis, smtp (the server unreachable: its proxy cut
for --outage seconds), relays / workers (every relay / worker killed with SIGKILL, restarted after
the same wait), each role alone: identity-relay, catalog-relay, graph-relay, catalog-worker,
mailer-worker, notifier-worker, graph-worker, feed-worker; and the servers themselves: kafka-kill9
(the stack's Kafka killed with SIGKILL, started again after --outage seconds), postgres-restart,
mongo-restart, cassandra-restart, neo4j-restart, redis-restart (stopped, started again). Those stop
the local stack's shared servers: run them with nothing else using the stack.

    .venv/bin/python bench/chaos.py                               # every fault, 12 users, 30 s outages
    .venv/bin/python bench/chaos.py --faults kafka,smtp --users 30 --outage 60
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from culture_stack import registry, stack
from culture_stack.chaos import FAULTS, RELAYS, SERVER_RESTARTS, WORKERS, ChaosRun, FaultResult, run_fault
from culture_stack.server import Context, say

ALONE = tuple(f"{s}-{r}" for s, r in RELAYS) + tuple(f"{w}-worker" for w in WORKERS)
KNOWN = FAULTS + ALONE + tuple(SERVER_RESTARTS)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=",".join(KNOWN),
                        help="comma-separated faults (default: all)")
    parser.add_argument("--users", type=int, default=12, help="users of each fault's workload")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds a server is cut / a role is down")
    parser.add_argument("--converge-within", type=float, default=300.0,
                        help="how long the checker may wait for the read models after a fault")
    parser.add_argument("--keep-logs", action="store_true", help="keep the roles' logs (printed path)")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in KNOWN]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(KNOWN)}")

    servers = registry.select(["postgres", "redis", "kafka", "mongo", "neo4j", "cassandra", "smtp"])
    stack.up(Context.default(), servers)
    logs = Path(tempfile.mkdtemp(prefix="chaos-"))
    run = ChaosRun(logs)
    say(f"==> starting every role of run {run.run_id} behind proxies (logs: {logs})")
    started = time.monotonic()
    await asyncio.to_thread(run.start)
    say(f"    roles up in {time.monotonic() - started:.1f}s")
    results: list[FaultResult] = []
    try:
        for fault in faults:
            say(f"==> {fault}: workload of {args.users} users, outage {args.outage:.0f}s")
            result = await run_fault(run, fault, users=args.users, outage=args.outage,
                                     converge_within=args.converge_within, at_requests=args.users)
            results.append(result)
            say("    " + result.line())
            if result.differences:
                say("    " + result.report.replace("\n", "\n    "))
    finally:
        await asyncio.to_thread(run.stop)
        if any(f in SERVER_RESTARTS for f in faults):  # a server a failed run left stopped starts again
            await asyncio.to_thread(stack.up, Context.default(), servers)
    print(f"\nfault matrix: {args.users} users per workload, outages of {args.outage:.0f}s")
    print(f"{'fault':<16} {'outage':>7} {'converge':>9} {'lost':>5} {'dup':>4} {'unexp':>6} {'poisoned':>9}  "
          "5xx answers (500: a bug)")
    for r in results:
        c = r.counts
        answers = " ".join(f"{code}x{n}" for code, n in sorted(r.server_errors.items())) or "-"
        print(f"{r.fault:<16} {r.outage:6.1f}s {r.converge:8.1f}s {c['lost']:5d} {c['duplicated']:4d} "
              f"{c['unexpected']:6d} {sum(r.poison.values()):9d}  {answers}")
    return 0 if all(not r.differences and not r.internal for r in results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
