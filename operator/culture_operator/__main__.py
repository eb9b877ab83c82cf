"""`python -m culture_operator`: run the CulturePlatform operator (kopf) with clear options.

Peering (one active operator among replicas) is the default; `--standalone` is for tests and
single-replica development runs.
"""

from __future__ import annotations

import argparse
import logging
import sys


def auto_priority(now_us: int | None = None) -> int:
    """A peering priority that is higher the earlier this process started (microseconds before 2100).

    kopf peering is not an election: every replica sees the others' priorities, the highest one
    works and the lower ones pause; equal priorities pause them ALL. Distinct priorities by start
    time keep exactly one active, and a replica that starts later (a rollout, a restart of a standby)
    does not take the work over from the running one.
    """
    import time

    return 4_102_444_800_000_000 - (time.time_ns() // 1000 if now_us is None else now_us)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run kopf until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m culture_operator",
        description="Reconcile CulturePlatform objects (platform.culture.dev/v1alpha1) into Kafka, "
        "database and service children. Credentials: in-cluster, else KUBECONFIG.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; globs like 'team-*' work)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    parser.add_argument(
        "--peering",
        default="culture-operator",
        help="kopf peering object name: only the highest-priority operator is active",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority of this instance (default: from the start time, the oldest replica is "
        "the active one; kopf pauses EVERY replica when two have the same priority)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=30,
        metavar="SECONDS",
        help="how long a replica counts as alive after its last peering keep-alive: a standby takes "
        "over at most this long after the active replica dies (default 30)",
    )
    parser.add_argument("--standalone", action="store_true", help="no peering (single operator, tests)")
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)

    import kopf  # imported late so --help works fast

    from culture_operator import handlers  # registers the handlers

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    kopf.configure(verbose=args.verbose)
    handlers.PEERING_LIFETIME = args.peering_lifetime
    # the Kafka client's debug output (whole metadata responses) would drown the operator's own
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    kopf.run(
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=auto_priority() if args.priority is None else args.priority,
        namespaces=args.namespace or (),  # kopf wants a collection; empty + clusterwide = every namespace
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
