"""Two `culture` processes started at the same moment on a machine missing a package both succeed.

Issue 11: a second `culture stack`/`culture cluster` command run while another was installing failed
with `apt-get update` exit 100 (the other held apt's lock). Here two processes of the stack's
installer entry point (`culture stack packages --install PROGRAM`, the same `debian.need_all` that
`culture stack up` and `culture cluster up` run before anything else) start together, each with its
own state and cache directories, on a machine where the package is really absent: one installs it,
the other waits for the apt lock, says whose (pid) it is, then finds the package installed.

Which package, and why it is safe to remove here: `debootstrap`. The project installs it
(debian.COMMANDS), it is a leaf package (purging it removes nothing else), and no server or node
component runs it: it runs once per cache, to make the Python base image's root file system
(cluster/images.py base_rootfs), whose tarball is cached afterwards. Purging it cannot disturb the
running stack or cluster; the one thing it could break is a base-image build running at that very
moment, so the test skips while a debootstrap process runs. The purge itself holds the same apt lock
as every `culture` process and waits for apt/dpkg's own locks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from culture_stack import debian, locks

pytestmark = pytest.mark.integration

PROGRAM = "debootstrap"


def _running(name: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(Path(a.decode(errors="replace")).name == name for a in argv[:2] if a):
            return True
    return False


def _make_missing(package: str) -> None:
    """Purge the package (when installed), holding the apt lock `culture` processes take."""
    if not debian.installed(package):
        return
    with locks.held(debian.APT_LOCK, "the apt lock", timeout=debian.APT_TIMEOUT):
        debian.apt_get(["purge", "-y", "-q", package])


def test_two_culture_processes_started_together_on_a_machine_missing_a_package_both_succeed(
        tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("installing Debian packages needs root")
    if _running(PROGRAM):
        pytest.skip(f"{PROGRAM} is running (a base-image build); not removing it under its feet")
    package = debian.COMMANDS[PROGRAM].package
    _make_missing(package)
    assert not debian.installed(package) and debian.which(PROGRAM) is None

    culture = str(Path(sys.executable).parent / "culture")
    procs = []
    for i in (1, 2):
        env = {**os.environ, "CULTURE_STATE_DIR": str(tmp_path / f"state{i}"),
               "CULTURE_CACHE_DIR": str(tmp_path / f"cache{i}")}
        procs.append(subprocess.Popen([culture, "stack", "packages", "--install", PROGRAM], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=debian.APT_TIMEOUT)[0] for p in procs]
    report = "\n".join(f"--- process {p.pid} (exit {p.returncode}) ---\n{out}"
                       for p, out in zip(procs, outs, strict=True))
    print(report)  # shown with -s or on failure: who waited for whom

    assert [p.returncode for p in procs] == [0, 0], report
    assert debian.installed(package), report
    # exactly one ran apt-get (update once, then install); the other waited for its lock, named its
    # pid, and then found the package there and ran no apt-get at all
    installers = [i for i, out in enumerate(outs) if "$ apt-get install" in out]
    assert len(installers) == 1, report
    installer, waiter = installers[0], 1 - installers[0]
    assert outs[installer].count("$ apt-get update") == 1, report
    assert f"waiting for the apt lock (one `culture` process runs apt-get at a time), held by pid " \
           f"{procs[installer].pid} (" in outs[waiter], report
    assert "got the apt lock (one `culture` process runs apt-get at a time) after" in outs[waiter], report
    assert "$ apt-get" not in outs[waiter], report
    for out in outs:
        assert f"{PROGRAM}: /" in out, report
