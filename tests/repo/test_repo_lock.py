"""Installs come from the lock: the images pin exactly what uv.lock pins (`make lock-check`, part of
`make test`, also compares the lock with pyproject.toml; this test needs no uv and no network)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_images_requirements_pin_the_locked_versions_with_hashes() -> None:
    locked = {normalise(p["name"]): p["version"]
              for p in tomllib.loads((REPO / "uv.lock").read_text())["package"] if "version" in p}
    text = (REPO / "requirements-runtime.txt").read_text()
    pins = {normalise(n): v for n, v in PIN.findall(text)}
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    direct = {normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in runtime}
    assert direct <= pins.keys(), "a runtime dependency is missing: run `make lock`"
    assert {n: v for n, v in pins.items() if locked.get(n) != v} == {}, "stale pins: run `make lock`"
    assert len(PIN.findall(text)) <= text.count("--hash=sha256:"), "every pin carries its hashes"


@pytest.mark.parametrize("dockerfile", ["services/Dockerfile", "operator/Dockerfile"])
def test_each_dockerfile_installs_its_dependencies_from_the_lock_with_hashes(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    assert "COPY requirements-runtime.txt" in text
    assert re.search(r"pip install --require-hashes -r requirements-runtime\.txt", text)
    assert "ARG BASE_IMAGE" in text
    # the project itself goes in without resolving anything again
    assert re.search(r"pip install --no-deps \.", text)
