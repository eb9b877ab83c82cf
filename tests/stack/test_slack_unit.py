"""culture_stack.slack: runs a program with the timer slack it is given (unit: no servers)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from culture_stack import slack


@pytest.mark.unit
def test_the_program_runs_in_place_with_the_timer_slack() -> None:
    out = subprocess.run([*slack.prefix(123_456), "sh", "-c", "cat /proc/$$/timerslack_ns; echo $$"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    value, _pid = out.stdout.split()
    assert int(value) == 123_456


@pytest.mark.unit
@pytest.mark.parametrize("args, message", [(["500000"], "name the program"),
                                           (["-1", "--", "true"], "not negative"),
                                           (["soon", "--", "true"], "invalid int")])
def test_bad_arguments_are_refused_with_a_reason(args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, "-m", "culture_stack.slack", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.unit
def test_a_failing_program_passes_its_exit_status_through() -> None:
    assert subprocess.run([*slack.prefix(100_000), "sh", "-c", "exit 7"], timeout=30).returncode == 7
