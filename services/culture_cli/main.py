"""`culture`: one command for the platform's tools (local stack, services, event relay...)."""

from __future__ import annotations

import argparse
import importlib
import sys

from culture_stack.server import StackError

# modules that each add their verbs to the parser with register(subparsers)
_COMMANDS = ("culture_stack.cli", "culture_stack.cluster.cli", "culture_runtime.serve", "culture_runtime.dev",
             "culture_events.outbox.cli", "culture_cli.seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="culture", description="CulturePlatform command-line tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
