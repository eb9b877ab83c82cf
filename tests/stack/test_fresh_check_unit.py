"""The fresh-machine check's --dry-run: it changes nothing and plans from the installer's own list."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from culture_stack import debian, paths

pytestmark = pytest.mark.unit

SCRIPT = paths.repo_root() / "scripts" / "fresh-machine-check.sh"


def test_dry_run_plans_clone_stop_purge_and_make_test_and_does_nothing(tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    done = subprocess.run([str(SCRIPT), "--dry-run", "--dir", str(target)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stderr
    assert not target.exists()  # nothing was cloned
    assert f"git clone -q --no-checkout {paths.repo_root()} {target}/clone" in out
    assert "stack down" in out
    # the purge list is the installer's (one source of truth), not a copy in the script
    planned = out.split("==> 3. purge ", 1)[1].split(" (and", 1)[0].split()
    assert set(debian.packages(purgeable=True)) <= set(planned)
    assert not {"maven", "openjdk-17-jdk-headless", "iproute2", "procps"} & set(planned)
    assert f"CULTURE_CACHE_DIR={target}/cache CULTURE_STATE_DIR={target}/state" in out
    assert "make test" in out and "dry run: nothing was done" in out
