"""The platform chart (charts/culture-platform): a CulturePlatform from values, with the operator chart as
a dependency. `helm lint --strict` is clean; the rendered objects pass strict server-side validation on
the real API server; values outside the CRD's spec schema (values.schema.json, generated from the
operator's typed spec) are refused before anything is rendered, naming the field; NOTES.txt names the
next commands. The repository's charts are copied first: `helm dependency build` writes into the chart."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Kubectl
from test_operator_e2e import small_spec
from test_strimzi_real_crds import assert_all_valid

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chart(k: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The platform chart with its dependency built; the operator chart's CRDs (kopf's peering) applied,
    as `helm install` would, so the rendered objects can be validated by the API server."""
    k.run("apply", "--server-side", "--force-conflicts", "-f",
          str(REPO / "charts" / "culture-operator" / "crds" / "kopf-peering.yaml"))
    k.run("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev",
          "crd/kopfpeerings.kopf.dev")
    root = tmp_path_factory.mktemp("charts")
    for name in ("culture-operator", "culture-platform"):
        shutil.copytree(REPO / "charts" / name, root / name)
    k.helm_run("dependency", "build", str(root / "culture-platform"))
    return root / "culture-platform"


def render(k: Kubectl, chart: Path, namespace: str, *args: str) -> list[dict[str, Any]]:
    out = k.helm_run("template", "rel", str(chart), "-n", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_helm_lint_strict_is_clean(k: Kubectl, chart: Path) -> None:
    proc = k.helm_run("lint", "--strict", str(chart), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_defaults_are_a_platform_named_after_the_release_with_its_operator(
        k: Kubectl, chart: Path, namespace: str) -> None:
    docs = render(k, chart, namespace)
    (cp,) = of_kind(docs, "CulturePlatform")
    assert (cp["metadata"]["name"], cp["metadata"]["namespace"], cp["spec"]) == ("rel", namespace, {})
    assert [d["metadata"]["name"] for d in of_kind(docs, "Deployment")] == ["rel-culture-operator"]
    assert_all_valid(k, docs)


def test_a_spec_from_values_without_the_operator(k: Kubectl, chart: Path, namespace: str,
                                                 tmp_path: Path, unique: str) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"operator": {"enabled": False},
                                      "platform": {"name": "demo", "spec": small_spec(unique)}}))
    docs = render(k, chart, namespace, "-f", str(values))
    assert [d["kind"] for d in docs] == ["CulturePlatform"]  # an operator already runs
    assert docs[0]["metadata"]["name"] == "demo" and docs[0]["spec"] == small_spec(unique)
    assert_all_valid(k, docs)


@pytest.mark.parametrize(("setting", "words"), [
    ("platform.spec.kafka.mode=nope", "mode"),
    ("platform.spec.kafak.mode=external", "kafak"),  # a typo: refused, not pruned by the API server
    ("platform.spec.services.feed.worker.replicas=-1", "replicas"),
    ("platform.name=Not_A_Name", "name"),
    ("operator.enabeld=true", "enabeld"),
])
def test_values_outside_the_schema_are_refused_naming_the_field(
        k: Kubectl, chart: Path, setting: str, words: str) -> None:
    proc = k.helm_run("template", "rel", str(chart), "--set", setting, check=False)
    assert proc.returncode != 0, proc.stdout[:500]
    assert "values don't meet the specifications of the schema" in proc.stderr and words in proc.stderr, \
        proc.stderr


def test_the_notes_name_the_next_commands(k: Kubectl, chart: Path, namespace: str) -> None:
    proc = k.helm_run("install", "rel", str(chart), "-n", namespace, "--dry-run=client")
    assert f"kubectl wait cp/rel -n {namespace} --for=condition=Ready" in proc.stdout
    assert f"kubectl port-forward -n {namespace} svc/rel-gateway-api 8080:8080" in proc.stdout
    assert "http://127.0.0.1:8080/docs" in proc.stdout and "http://127.0.0.1:8080/openapi.json" in proc.stdout


def test_the_local_profile_values_create_the_database_secrets_the_spec_names(
        k: Kubectl, chart: Path, namespace: str) -> None:
    """values-local.yaml (skaffold's `local` profile): the stack's servers as external databases, each
    Secret the spec's secretRef names created with the keys the operator's builders read."""
    from culture_operator.builders.environment import DATABASE_ENV

    # the profile watches culture-system; here the test's own namespace (the Roles are made there)
    docs = render(k, chart, namespace, "-f", str(chart / "values-local.yaml"),
                  "--set", f"culture-operator.watchNamespaces[0]={namespace}")
    (cp,) = of_kind(docs, "CulturePlatform")
    secrets = {d["metadata"]["name"]: d for d in of_kind(docs, "Secret")}
    for db, conf in cp["spec"]["databases"].items():
        assert conf["mode"] == "external"
        secret = secrets[conf["secretRef"]["name"]]
        assert sorted(secret["stringData"]) == sorted(key for key, _ in DATABASE_ENV[db]), db
        assert all(isinstance(v, str) and v for v in secret["stringData"].values()), secret
    assert all(cp["spec"]["services"][s]["enabled"] for s in cp["spec"]["services"])
    assert_all_valid(k, docs)


def test_the_kind_profile_values_put_the_gateway_on_the_port_kind_maps(
        k: Kubectl, chart: Path, namespace: str) -> None:
    """values-kind.yaml: a NodePort Service on the node port kind-config.yaml maps to the laptop, picking
    exactly the pods the operator labels as the platform's gateway."""
    from culture_operator.builders.names import Owner, selector_labels

    kind_config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    (mapping,) = kind_config["nodes"][0]["extraPortMappings"]
    docs = render(k, chart, namespace, "-f", str(chart / "values-kind.yaml"))
    (cp,) = of_kind(docs, "CulturePlatform")
    (svc,) = [d for d in of_kind(docs, "Service") if d["spec"].get("type") == "NodePort"]
    (port,) = svc["spec"]["ports"]
    assert port["nodePort"] == mapping["containerPort"] and port["targetPort"] == "http"
    owner = Owner(cp["metadata"]["name"], namespace, "uid")
    assert svc["spec"]["selector"] == selector_labels(owner, "gateway", "api")
    assert_all_valid(k, docs)
    refused = k.helm_run("template", "rel", str(chart), "--set", "gatewayNodePort=80", check=False)
    assert refused.returncode != 0 and "gatewayNodePort" in refused.stderr, refused.stderr
