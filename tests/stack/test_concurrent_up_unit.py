"""Two `up`s of the same state started together: one starts the server, the other waits for its
start-up (naming its pid), then finds the server running; neither fails, nothing starts twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from culture_events.testing import wait_until
from culture_stack.dev import free_port

pytestmark = pytest.mark.unit

# a server recipe whose process listens only once the file `go` exists (so the two ups overlap)
_RECIPE = '''
import sys
from pathlib import Path
from culture_stack import process, stack
from culture_stack.server import Context, Launch, Server

SERVE = """
import pathlib, socket, sys, time
go, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
while not go.exists():
    time.sleep(0.05)
s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(); time.sleep(600)
"""

class Toy(Server):
    name = "toy"
    start_timeout = 60.0

    def __init__(self, port: int, go: Path) -> None:
        self.port, self.go = port, go

    def launch(self, ctx): return Launch([sys.executable, "-c", SERVE, str(self.go), str(self.port)])
    def healthy(self, ctx): return process.port_open(self.port)
    def version(self, ctx): return "toy"
    def settings(self): return {}

root, port = Path(sys.argv[1]), int(sys.argv[2])
stack.up(Context(state=root / "state", cache=root / "cache"), [Toy(port, root / "go")])
'''


def test_two_ups_of_one_state_started_together_both_succeed_and_start_it_once(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "toy_up.py"
    script.write_text(_RECIPE)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(port)],
                              stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    try:
        asyncio.run(wait_until(lambda: any("waiting for the stack lock" in log.read_text() for log in logs),
                               60, "one up waiting for the other's stack lock"))
        (tmp_path / "go").touch()
        codes = [p.wait(timeout=120) for p in procs]
        outs = [log.read_text() for log in logs]
        report = "\n".join(f"--- pid {p.pid} ---\n{o}" for p, o in zip(procs, outs, strict=True))
        assert codes == [0, 0], report
        starter = [i for i, o in enumerate(outs) if "toy: started (pid" in o]
        assert len(starter) == 1, report
        waiter = 1 - starter[0]
        assert f"held by pid {procs[starter[0]].pid} (" in outs[waiter], report
        assert "toy: already running (pid" in outs[waiter], report
    finally:
        for p in procs:
            p.kill()
        pidfile = tmp_path / "state" / "run" / "toy.pid"
        if pidfile.exists():
            from culture_stack import process

            process.stop(int(pidfile.read_text()), timeout=10)
