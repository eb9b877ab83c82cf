"""The start-up wait of the server framework: a server that keeps logging gets more time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from culture_stack import server as server_mod
from culture_stack.server import Context, Launch, Server, StackError

pytestmark = pytest.mark.unit

# logs a line every 0.1 s for `secs` seconds, then marks itself ready; then idles
_SCRIPT = """
import pathlib, sys, time
log, ready, secs = sys.argv[1], pathlib.Path(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + secs
with open(log, "a") as fh:
    while time.monotonic() < end:
        fh.write("loading...\\n"); fh.flush(); time.sleep(0.1)
ready.touch()
time.sleep(60)
"""


class _Slow(Server):
    name = "slow"
    port = 1
    start_timeout = 1.0

    def __init__(self, ready: Path) -> None:
        self.ready = ready

    def install(self, ctx: Context) -> None: ...
    def launch(self, ctx: Context) -> Launch: raise NotImplementedError
    def healthy(self, ctx: Context) -> bool: return self.ready.exists()
    def version(self, ctx: Context) -> str: return "-"
    def settings(self) -> dict[str, Any]: return {}


def _start(ctx: Context, ready: Path, log_secs: float) -> subprocess.Popen[bytes]:
    ctx.log("slow").parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(ctx.log("slow")), str(ready), str(log_secs)])


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setattr(server_mod, "LOG_GRACE", 1.0)
    return Context(state=tmp_path / "state", cache=tmp_path / "cache")


def test_a_server_that_keeps_logging_gets_past_its_nominal_timeout(ctx: Context, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = _start(ctx, ready, log_secs=2.5)  # 2.5 s of logging against a 1 s timeout
    try:
        _Slow(ready).wait_healthy(ctx, proc.pid)
        assert ready.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_quiet_server_fails_at_its_timeout_with_the_log_tail(ctx: Context, tmp_path: Path) -> None:
    proc = _start(ctx, tmp_path / "elsewhere", log_secs=0)  # logs nothing
    try:
        with pytest.raises(StackError, match=r"did not become healthy.*log quiet") as err:
            _Slow(tmp_path / "never").wait_healthy(ctx, proc.pid)
        assert str(ctx.log("slow")) in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_the_progress_allowance_is_capped(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "PROGRESS_CAP", 2)
    ready = tmp_path / "late"
    proc = _start(ctx, ready, log_secs=30)  # keeps logging far past 2 x 1 s
    try:
        with pytest.raises(StackError, match=r"did not become healthy.*still logging at 2x"):
            _Slow(ready).wait_healthy(ctx, proc.pid)
        assert not ready.exists()
    finally:
        proc.kill()
        proc.wait()
