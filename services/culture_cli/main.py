"""`culture`: one command for the platform's tools (local stack, services, event relay...)."""

from __future__ import annotations

import argparse
import importlib
import sys

# modules that each add their verbs to the parser with register(subparsers)
_COMMANDS = ("culture_runtime.serve", "culture_events.outbox.cli", "culture_cli.check", "culture_cli.replay")
# the development tools (local stack, cluster, dev runner): only in a development install
# (`pip install -e '.[dev]'`); the images and `pip install .` have the commands above only
_DEV_COMMANDS = ("culture_stack.cli", "culture_stack.cluster.cli", "culture_stack.dev", "culture_stack.seed")
_DEV_VERBS = {"stack": "the local stack's servers", "cluster": "the local Kubernetes node",
              "dev": "run the services locally", "seed": "load demo data through the gateway"}


def _dev_tools_present() -> bool:
    try:
        importlib.import_module("culture_stack")
    except ModuleNotFoundError as exc:
        if exc.name != "culture_stack":
            raise
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="culture", description="CulturePlatform command-line tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if _dev_tools_present():
        for module in _DEV_COMMANDS:
            importlib.import_module(module).register(sub)
    else:
        for verb, what in _DEV_VERBS.items():
            p = sub.add_parser(verb, help=f"{what} (needs the development install)", add_help=False)
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=_needs_dev_install)
    for module in _COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def _needs_dev_install(args: argparse.Namespace) -> int:
    print(f"error: `culture {args.command}` is a development tool, not part of this installation; "
          "it needs the development install of the repository: pip install -e '.[dev]'", file=sys.stderr)
    return 2


def _reported_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is the whole story (no traceback): the stack's, when it is installed."""
    if not _dev_tools_present():
        return ()
    # imported by name: product code has no static import of the development tooling (import-linter)
    return (importlib.import_module("culture_stack.console").StackError,)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _reported_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
