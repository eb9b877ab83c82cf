"""`python -m culture_operator`: run the CulturePlatform operator (kopf) with clear options.

Peering (one active operator among replicas) is the default; `--standalone` is for tests and
single-replica development runs.
"""

from __future__ import annotations

import argparse
import logging
import sys


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
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this instance")
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

    from culture_operator import handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    kopf.configure(verbose=args.verbose)
    # the Kafka client's debug output (whole metadata responses) would drown the operator's own
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    kopf.run(
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority,
        namespaces=args.namespace or (),  # kopf wants a collection; empty + clusterwide = every namespace
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
