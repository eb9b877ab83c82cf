"""How long each phase of `make test` took: run the phases, record them, print a table at the end.

`make test` runs `python3 stack/culture_stack/phases.py run NAME=COMMAND...` (standard library only,
so it works before the virtualenv exists). Each phase's start and end go as one JSON line into a file
under the state dir, whose path the phases' processes get in $CULTURE_PHASES, and the running phase's
name in $CULTURE_PHASE. Code that builds something slow inside a phase (Go binaries, images) wraps it
in `step(...)`, which appends a sub-row to the same file; outside `make test` it does nothing.
The table is printed when the run ends, also when a phase failed (then the exit status is non-zero).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

FILE_ENV = "CULTURE_PHASES"
PHASE_ENV = "CULTURE_PHASE"
KEEP_FILES = 20


@dataclass
class Row:
    name: str
    parent: str | None
    start: float
    end: float | None
    status: str  # "ok", "failed (exit N)", "not run"


def append(path: Path, row: Row) -> None:
    """One JSON line; appends of a few hundred bytes from concurrent processes do not interleave."""
    with path.open("a") as f:
        f.write(json.dumps(row.__dict__) + "\n")


def read(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(Row(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a line cut by a killed process
    return rows


@contextmanager
def step(what: str) -> Iterator[None]:
    """Record WHAT as a sub-row of the running `make test` phase (no-op outside `make test`)."""
    target = os.environ.get(FILE_ENV)
    if not target:
        yield
        return
    t0 = time.time()
    status = "failed"
    try:
        yield
        status = "ok"
    finally:
        try:
            append(Path(target), Row(what, os.environ.get(PHASE_ENV), t0, time.time(), status))
        except OSError:
            pass  # timing is informative only: never fail a build over it


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def table(rows: Sequence[Row]) -> str:
    """Phases in order, each followed by the steps recorded inside it; a total line."""
    phases = [r for r in rows if r.parent is None]
    width = max([len(r.name) for r in phases] + [len(r.name) + 2 for r in rows if r.parent] + [10])
    lines = [f"{'phase':<{width}}  {'time':>8}  result", "-" * (width + 20)]
    for p in phases:
        lines.append(f"{p.name:<{width}}  {duration(p.end - p.start if p.end else None):>8}  {p.status}")
        for s in rows:
            if s.parent == p.name:
                lines.append(f"  {s.name:<{width - 2}}  {duration(s.end - s.start if s.end else None):>8}"
                             f"  {s.status}")
    ran = [p for p in phases if p.end is not None]
    total = max(p.end for p in ran) - min(p.start for p in ran) if ran else None  # type: ignore[type-var]
    lines.append("-" * (width + 20))
    lines.append(f"{'total':<{width}}  {duration(total):>8}")
    return "\n".join(lines)


def parse_phase(spec: str) -> tuple[str, str]:
    name, sep, command = spec.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {spec!r}")
    return name.strip(), command.strip()


def new_file(state: Path) -> Path:
    folder = state / "phases"
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("make-test-*.jsonl"))[:-KEEP_FILES]:
        old.unlink(missing_ok=True)
    path = folder / f"make-test-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
    path.touch()
    return path


def run(phases: Sequence[tuple[str, str]], path: Path, keep_going: set[str]) -> int:
    """Run the phases in order. A failed phase stops the run unless it is in keep_going (the test
    layers: a failing unit test must not hide the integration results). Returns the first failure's
    exit status (0: all passed)."""
    first_failure = 0
    stopped = False
    env = {**os.environ, FILE_ENV: str(path)}
    try:
        for name, command in phases:
            if stopped:
                append(path, Row(name, None, time.time(), None, "not run"))
                continue
            print(f"==> phase: {name}", flush=True)
            t0 = time.time()
            rc = subprocess.run(["bash", "-c", command], env={**env, PHASE_ENV: name}, check=False).returncode
            append(path, Row(name, None, t0, time.time(), "ok" if rc == 0 else f"failed (exit {rc})"))
            if rc != 0:
                first_failure = first_failure or rc
                stopped = name not in keep_going
    except KeyboardInterrupt:
        first_failure = 130
    finally:
        print(f"\n==> make test: phase durations (recorded in {path})")
        print(table(read(path)), flush=True)
    return first_failure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phases.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="run NAME=COMMAND phases in order (bash), then print their durations")
    r.add_argument("phases", nargs="+", type=parse_phase, metavar="NAME=COMMAND")
    r.add_argument("--keep-going", default="", metavar="NAME,...",
                   help="phases after whose failure the next phases of this list still run")
    t = sub.add_parser("table", help="print the table of a recorded run")
    t.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.verb == "table":
        print(table(read(args.file)))
        return 0
    from culture_stack import paths

    keep = {n.strip() for n in args.keep_going.split(",") if n.strip()}
    return run(args.phases, new_file(paths.state_dir()), keep)


if __name__ == "__main__":
    # run by path from the Makefile, before the venv (and the editable install) exists
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
