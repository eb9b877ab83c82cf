"""Run a program with a coarser timer slack: `python -m culture_stack.slack NANOSECONDS -- PROGRAM [ARGS...]`.

Sets the calling thread's timer slack (prctl PR_SET_TIMERSLACK) and execs the program in place (same
pid). Every thread the program starts inherits the value, and it survives exec; systemd's
`TimerSlackNSec=` does the same for a service.

Why the stack wants it: Cassandra's request threads (its shared executor pool) spin for up to 10 ms
after each piece of work, parking 10 µs at a time. On a 2-core machine at a few dozen requests a
second that spinning was most of the node's CPU (8 ms per chat message, bench/chat.py). A 0.5 ms
slack lets each park last at least that long: ~3.5 ms per message, the requests' own latency about
0.3 ms longer (bench/chat_store.py).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Sequence

PR_SET_TIMERSLACK = 29  # linux/prctl.h


def set_timer_slack(nanoseconds: int) -> None:
    """This thread's timer slack (0 restores the default); OSError if the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(nanoseconds), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_TIMERSLACK, {nanoseconds}): {os.strerror(err)}")


def prefix(nanoseconds: int) -> list[str]:
    """The argv prefix that runs the rest of an argv with this timer slack."""
    return [sys.executable, "-m", "culture_stack.slack", str(nanoseconds), "--"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m culture_stack.slack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("nanoseconds", type=int, help="timer slack for the program and its threads")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM [ARGS...]")
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("name the program to run after --")
    if args.nanoseconds < 0:
        parser.error("nanoseconds: not negative")
    set_timer_slack(args.nanoseconds)
    os.execvp(program[0], program)


if __name__ == "__main__":
    main()
