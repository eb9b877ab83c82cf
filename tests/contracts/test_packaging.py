"""What ships: the wheel (what the images install) has the product and its runtime dependencies only,
a service started without its endpoints says which are missing, and the `culture` CLI without the
development tooling says the development commands need the development install."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from culture_runtime.metrics import MetricsSettings, serve_metrics

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
#: packages of the local stack, the benchmarks and the tests: never runtime dependencies
DEV_ONLY = {"aiosmtpd", "dnspython", "httpx", "pytest", "ruff", "import-linter", "grpcio-tools"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel, built offline by the project's build backend (as `pip install .` builds it)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_the_product_and_not_the_stack(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert "culture_stack" not in tops
    assert {"culture", "culture_cli", "culture_events", "culture_runtime", "culture_operator",
            "culture_identity", "culture_gateway"} <= tops
    assert not [n for n in wheel.namelist() if n.endswith("Dockerfile")]


def test_wheel_runtime_requirements_exclude_the_dev_tools(wheel: zipfile.ZipFile) -> None:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line.removeprefix("Requires-Dist:").strip()
                for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    def name(requirement: str) -> str:
        return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()

    runtime = {name(r) for r in requires if "extra ==" not in r}
    assert runtime, "no runtime requirements at all?"
    assert not runtime & DEV_ONLY, f"development tools among the runtime requirements: {runtime & DEV_ONLY}"
    stack_extra = {name(r) for r in requires if "extra == 'stack'" in r}
    assert {"aiosmtpd", "dnspython"} <= stack_extra


@pytest.mark.parametrize("dockerfile", ["services/Dockerfile", "operator/Dockerfile"])
def test_images_copy_no_stack(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    assert not re.search(r"^COPY\s+stack", text, re.M), f"{dockerfile} copies the local stack into the image"
    # the runtime part of the lock only (exported without extras): no local stack, no test tools
    assert "--require-hashes -r requirements-runtime.txt" in text
    pinned = {line.split("==")[0] for line in (REPO / "requirements-runtime.txt").read_text().splitlines()
              if "==" in line and not line.startswith((" ", "#"))}
    assert not pinned & {"aiosmtpd", "pytest", "ruff", "httpx", "import-linter"}, pinned


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No CULTURE_* variable: what a pod without the operator's settings would see."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


@pytest.mark.parametrize(("service", "role", "missing"), [
    ("identity", "api-read", ["CULTURE_POSTGRES_DSN"]),
    ("identity", "api-write", ["CULTURE_POSTGRES_DSN", "CULTURE_REDIS_URL"]),
    ("identity", "relay", ["CULTURE_POSTGRES_DSN", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("catalog", "worker", ["CULTURE_MONGO_URI", "CULTURE_KAFKA_BOOTSTRAP", "CULTURE_REDIS_URL"]),
    ("catalog", "api-write", ["CULTURE_MONGO_URI", "CULTURE_REDIS_URL"]),
    ("graph", "api-write", ["CULTURE_NEO4J_URI"]),
    ("graph", "api-read", ["CULTURE_NEO4J_URI"]),
    ("graph", "worker", ["CULTURE_NEO4J_URI", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("graph", "relay", ["CULTURE_NEO4J_URI", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("chat", "api-write", ["CULTURE_CASSANDRA_CONTACT_POINTS", "CULTURE_REDIS_URL"]),
    ("chat", "relay", ["CULTURE_CASSANDRA_CONTACT_POINTS", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("feed", "api-read", ["CULTURE_CASSANDRA_CONTACT_POINTS"]),
    ("feed", "worker", ["CULTURE_CASSANDRA_CONTACT_POINTS", "CULTURE_KAFKA_BOOTSTRAP", "CULTURE_REDIS_URL"]),
    ("notifier", "worker", ["CULTURE_REDIS_URL", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("mailer", "worker", ["CULTURE_REDIS_URL", "CULTURE_SMTP_HOST", "CULTURE_KAFKA_BOOTSTRAP"]),
    ("gateway", "api", ["CULTURE_REDIS_URL"]),
])
def test_serve_without_settings_names_them_and_exits_2(tmp_path: Path, service: str, role: str,
                                                       missing: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "culture_cli.main", "serve", service, "--role", role],
                            env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{service} {role} cannot start: missing settings" in result.stderr
    for name in missing:
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_without_upstreams_names_them_and_exits_2(tmp_path: Path) -> None:
    env = {**_clean_env(tmp_path), "CULTURE_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, "-m", "culture_cli.main", "serve", "gateway", "--role", "api"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    for upstream in ("IDENTITY_WRITE", "IDENTITY_READ", "NOTIFIER"):
        assert f"CULTURE_GATEWAY_{upstream}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_taken_metrics_port_says_so_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**_clean_env(tmp_path), "CULTURE_METRICS_PORT": str(taken.getsockname()[1])}
        argv = [sys.executable, "-m", "culture_cli.main", "serve", "catalog", "--role", "api-read"]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "catalog api-read cannot serve its metrics" in result.stderr and "Traceback" not in result.stderr


def test_metrics_endpoint_serves_the_registry_only_when_a_port_is_set() -> None:
    registry = CollectorRegistry()
    Counter("culture_test_things", "things counted by the test", registry=registry).inc(3)
    assert serve_metrics(MetricsSettings(port=None), registry) is None
    served = serve_metrics(MetricsSettings(port=0), registry)
    assert served is not None
    host, port = served
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as reply:
        body = reply.read().decode()
    assert "culture_test_things_total 3.0" in body


#: run the CLI as a runtime-only install sees it: without the stack/ root on sys.path
_WITHOUT_STACK = ("import sys; sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith('/stack')]; "
                  "from culture_cli.main import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("argv", [["stack", "status"], ["cluster", "up"], ["dev", "up", "--stack"]])
def test_dev_commands_without_the_dev_install_say_so(tmp_path: Path, argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", _WITHOUT_STACK, *argv], env=_clean_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs the development install" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_help_works_without_the_dev_install(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _WITHOUT_STACK, "serve", "--help"],
                            env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--role" in result.stdout
