"""The generated package services/culture/ matches the .proto files and imports cleanly."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
from pathlib import Path

import pytest

import culture

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["identity", "catalog", "feed", "graph", "chat", "notifier"]


def test_regenerating_gives_no_diff() -> None:
    # Regenerates into a temporary directory with the pinned buf and grpcio-tools, then diffs.
    result = subprocess.run(
        [str(ROOT / "proto/scripts/generate.sh"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"generate.sh --check failed:\n{result.stderr}\n{result.stdout}"
    assert "up to date" in result.stderr


def test_every_generated_module_imports() -> None:
    modules = [m.name for m in pkgutil.walk_packages(culture.__path__, "culture.")]
    # 6 service files + 7 event files (options and one per producing service, the mailer's included)
    # + the contracts' predefined validation rules (culture.validate.v1.rules)
    assert len([m for m in modules if m.endswith("_pb2")]) == 14
    for name in modules:
        importlib.import_module(name)


@pytest.mark.parametrize("domain", PACKAGES)
def test_each_domain_has_one_versioned_service_with_stubs(domain: str) -> None:
    pb2 = importlib.import_module(f"culture.{domain}.v1.{domain}_pb2")
    grpc_module = importlib.import_module(f"culture.{domain}.v1.{domain}_pb2_grpc")
    (service,) = pb2.DESCRIPTOR.services_by_name.values()
    assert service.full_name == f"culture.{domain}.v1.{domain.capitalize()}Service"
    assert hasattr(grpc_module, f"add_{service.name}Servicer_to_server")
    assert hasattr(grpc_module, f"{service.name}Stub")


@pytest.mark.parametrize("domain", PACKAGES)
def test_every_list_is_paginated_and_every_enum_has_an_unspecified_zero(domain: str) -> None:
    pb2 = importlib.import_module(f"culture.{domain}.v1.{domain}_pb2")
    for method in next(iter(pb2.DESCRIPTOR.services_by_name.values())).methods:
        response_fields = method.output_type.fields_by_name
        if any(f.is_repeated for f in response_fields.values()) and "next_page_token" in response_fields:
            assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name), method.full_name
        if method.name.startswith("List"):
            assert "next_page_token" in response_fields, method.full_name
    for enum in pb2.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values_by_number[0].name.endswith("_UNSPECIFIED"), enum.full_name
