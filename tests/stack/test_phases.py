"""`make test`'s phase table: phases run in order, failures stop or not, builds show as sub-rows."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from culture_stack import phases

pytestmark = pytest.mark.unit

PY = sys.executable


def record_step(name: str) -> str:
    """A phase command that, like the stack's build code, records a step from a child process."""
    code = f"from culture_stack import phases\nwith phases.step({name!r}): pass"
    return f"{shlex.quote(PY)} -c {shlex.quote(code)}"


def test_phases_run_in_order_with_their_steps_and_a_failure_stops_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.jsonl"
    rc = phases.run([("set-up", "true"), ("unit", "exit 3"), ("stack", record_step("go build kubelet")),
                     ("integration", "exit 1"), ("e2e", "true")], path, keep_going={"unit"})
    assert rc == 3  # the first failure's status
    rows = phases.read(path)
    assert [(r.name, r.parent, r.status) for r in rows] == [
        ("set-up", None, "ok"), ("unit", None, "failed (exit 3)"),
        ("go build kubelet", "stack", "ok"), ("stack", None, "ok"),
        ("integration", None, "failed (exit 1)"), ("e2e", None, "not run")]
    out = capsys.readouterr().out
    table = out[out.index("phase durations"):]
    lines = table.splitlines()
    assert lines[1].split()[:3] == ["phase", "time", "result"]
    stack_at = next(i for i, line in enumerate(lines) if line.startswith("stack "))
    assert lines[stack_at + 1].startswith("  go build kubelet")
    assert "not run" in next(line for line in lines if line.startswith("e2e"))
    assert lines[-1].startswith("total")


def test_a_layer_without_tests_is_not_a_failure(tmp_path: Path) -> None:
    # the Makefile's PYTEST_LAYER: pytest's exit status 5 means "no test collected"
    assert phases.run([("e2e", "(exit 5) || test $? -eq 5")], tmp_path / "r.jsonl", set()) == 0


def test_a_step_outside_make_test_records_nothing_and_a_failed_step_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(phases.FILE_ENV, raising=False)
    with phases.step("nothing"):
        pass
    path = tmp_path / "r.jsonl"
    monkeypatch.setenv(phases.FILE_ENV, str(path))
    monkeypatch.setenv(phases.PHASE_ENV, "e2e")
    with pytest.raises(RuntimeError), phases.step("image culture/services:dev-1"):
        raise RuntimeError("buildah failed")
    [row] = phases.read(path)
    assert (row.name, row.parent, row.status) == ("image culture/services:dev-1", "e2e", "failed")


def test_durations_read_as_minutes_and_seconds() -> None:
    assert [phases.duration(s) for s in (None, 4.4, 75, 3725)] == ["-", "0:04", "1:15", "1:02:05"]
