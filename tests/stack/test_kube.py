"""The Kubernetes control plane of the local stack: pure helpers (unit), the live servers
(integration: CRDs, custom objects, the garbage collector) and the built CLIs (e2e: kubectl, helm).

The live tests bring up only etcd, kube-apiserver and kube-controller-manager, and each test works
in its own namespace and its own CRD group, so they run beside other users of the same API server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from culture_events.testing import wait_until_sync
from culture_stack import pki, registry, stack
from culture_stack.server import Context
from culture_stack.servers import kube

# -- unit: pure code ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_version_ldflags_stamp_release_into_kubernetes_and_helm() -> None:
    flags = kube.version_ldflags("v1.34.4", "v3.19.5")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
    assert "-X helm.sh/helm/v3/internal/version.version=v3.19.5" in flags
    assert "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34" in flags


@pytest.mark.unit
def test_build_module_pins_every_staging_module_to_the_release() -> None:
    gomod = (kube.BUILD_DIR / "go.mod").read_text()
    assert re.search(rf"^\s*(require\s+)?k8s\.io/kubernetes {re.escape(kube.KUBE_VERSION)}\b", gomod, re.M)
    twin = "v0." + kube.KUBE_VERSION.split(".", 1)[1]
    for module in ("api", "apimachinery", "apiserver", "client-go", "kubectl", "component-base"):
        assert f"k8s.io/{module} => k8s.io/{module} {twin}" in gomod


@pytest.mark.unit
def test_admin_certificate_names_user_and_group() -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ca_cert, ca_key = pki.make_ca("test-ca", days=1)
    cert_pem, _ = pki.make_cert(ca_cert, ca_key, **pki.LEAF_CERTS["admin"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert cert.issuer == x509.load_pem_x509_certificate(ca_cert).subject


@pytest.mark.unit
def test_kubeconfig_is_self_contained() -> None:
    config = pki.build_kubeconfig(server="https://127.0.0.1:16443", ca_pem=b"CA", cert_pem=b"CERT",
                                   key_pem=b"KEY", user="admin")
    assert config["current-context"] == config["contexts"][0]["name"]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:16443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert base64.b64decode(config["users"][0]["user"]["client-key-data"]) == b"KEY"


@pytest.mark.unit
def test_apiserver_flags_stay_on_loopback() -> None:
    ctx = Context(state=Path("/s"), cache=Path("/c"))
    args = kube.apiserver_args(ctx)
    assert "--bind-address=127.0.0.1" in args
    assert "--secure-port=16443" in args
    assert "--etcd-servers=http://127.0.0.1:12379" in args
    assert any(a.startswith("--authorization-mode=") and "RBAC" in a for a in args)
    cm = kube.controller_manager_args(ctx)
    assert "--controllers=*" in cm and "--bind-address=127.0.0.1" in cm


# -- fixtures for the live servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def kube_ctx() -> Context:
    """The control plane (etcd, kube-apiserver, kube-controller-manager) up, nothing else."""
    ctx = Context.default()
    stack.up(ctx, registry.select(["kube-controller-manager"]))
    return ctx


@pytest.fixture(scope="module")
def api(kube_ctx: Context) -> Iterator[Any]:
    """A kubernetes ApiClient using the stack's admin kubeconfig."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kube.kubeconfig_path(kube_ctx)))
    yield client
    client.close()


@pytest.fixture
def namespace(api: Any, unique: str) -> Iterator[str]:
    """A namespace of this test's own, deleted afterwards (the namespace controller empties it)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": unique, "labels": {"culture.dev/test": "stack-kube"}}})
    yield unique
    core.delete_namespace(unique)


def gone(read: Callable[[], Any]) -> bool:
    """True when read() answers 404."""
    from kubernetes.client.exceptions import ApiException

    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture
def crd(api: Any, unique: str) -> Iterator[dict[str, str]]:
    """A namespaced CRD in a group of this test's own, Established; deleted afterwards."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    group, plural = f"{unique}.test.culture.dev", "gadgets"
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                }}},
            }],
        },
    })

    def established() -> bool:
        conds = ext.read_custom_resource_definition(f"{plural}.{group}").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait_until_sync(established, 60, f"CRD {plural}.{group} to be Established", interval=0.5,
                    ignore=(Exception,))
    yield {"group": group, "version": "v1", "plural": plural, "kind": "Gadget"}
    ext.delete_custom_resource_definition(f"{plural}.{group}")


def run_cli(ctx: Context, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run kubectl or helm against the stack's API server (KUBECONFIG = the admin kubeconfig)."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig_path(ctx)), "HOME": str(ctx.state / "home")}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}"
    return result


# -- integration: the servers themselves ----------------------------------------------------------------


@pytest.mark.integration
def test_status_reports_live_versions(kube_ctx: Context) -> None:
    rows = {r.name: r for r in stack.status(kube_ctx, registry.select(["kube-controller-manager"]))}
    assert rows["etcd"].healthy and rows["etcd"].version.startswith("etcd 3.")
    assert rows["kube-apiserver"].healthy
    assert rows["kube-apiserver"].version == f"Kubernetes {kube.KUBE_VERSION}"
    assert rows["kube-controller-manager"].healthy
    assert rows["kube-controller-manager"].version.endswith(kube.KUBE_VERSION)


@pytest.mark.integration
def test_custom_object_of_a_new_crd(api: Any, namespace: str, crd: dict[str, str]) -> None:
    from kubernetes import client

    objs = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{crd['group']}/v1", "kind": crd["kind"],
            "metadata": {"name": "first"}, "spec": {"size": 3}}
    # right after Established the new resource may take a moment to be served everywhere
    wait_until_sync(
        lambda: objs.create_namespaced_custom_object(crd["group"], "v1", namespace, crd["plural"], body),
        60.0, "the custom object to be created", interval=0.5, ignore=(Exception,))
    got = objs.get_namespaced_custom_object(crd["group"], "v1", namespace, crd["plural"], "first")
    assert got["spec"] == {"size": 3}
    assert got["metadata"]["uid"]


@pytest.mark.integration
def test_garbage_collector_deletes_configmap_owned_by_configmap(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"a": "1"}})
    core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "owned", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
        }]},
        "data": {"b": "2"},
    })
    core.delete_namespaced_config_map("owner", namespace)  # default: background propagation
    wait_until_sync(lambda: gone(lambda: core.read_namespaced_config_map("owned", namespace)), 120,
                    "the garbage collector to delete the owned ConfigMap", interval=0.5, ignore=(Exception,))


@pytest.mark.integration
def test_garbage_collector_deletes_children_of_a_custom_object(
    api: Any, namespace: str, crd: dict[str, str]
) -> None:
    """What the operator relies on: children owned by a custom resource go when it goes."""
    from kubernetes import client

    objs, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    body = {"apiVersion": f"{crd['group']}/v1", "kind": crd["kind"], "metadata": {"name": "parent"}}
    owner = wait_until_sync(
        lambda: objs.create_namespaced_custom_object(crd["group"], "v1", namespace, crd["plural"], body),
        60.0, "the custom owner to be created", interval=0.5, ignore=(Exception,))
    core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "child", "ownerReferences": [{
            "apiVersion": f"{crd['group']}/v1", "kind": crd["kind"], "name": "parent",
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
        }]},
    })
    objs.delete_namespaced_custom_object(crd["group"], "v1", namespace, crd["plural"], "parent")
    # the collector learns new resource types by periodic discovery (every 30 s), hence the margin
    wait_until_sync(lambda: gone(lambda: core.read_namespaced_config_map("child", namespace)), 180,
                    "the garbage collector to delete the child of the custom object", interval=0.5,
                    ignore=(Exception,))


@pytest.mark.integration
def test_controller_manager_creates_default_service_account(api: Any, namespace: str) -> None:
    """The service-account controller runs, so Pods pass ServiceAccount admission without a node."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    wait_until_sync(lambda: core.read_namespaced_service_account("default", namespace), 60.0,
                    "the default ServiceAccount", interval=0.5, ignore=(Exception,))
    pod = core.create_namespaced_pod(namespace, {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    })
    assert pod.spec.service_account_name == "default"


# -- e2e: the built command-line tools -----------------------------------------------------------------


@pytest.mark.e2e
def test_kubectl_lists_custom_objects(kube_ctx: Context, api: Any, namespace: str,
                                      crd: dict[str, str]) -> None:
    from kubernetes import client

    objs = client.CustomObjectsApi(api)
    for name in ("alpha", "beta"):
        body = {"apiVersion": f"{crd['group']}/v1", "kind": crd["kind"], "metadata": {"name": name}}
        wait_until_sync(
            lambda b=body: objs.create_namespaced_custom_object(crd["group"], "v1", namespace, crd["plural"],
                                                                b),
            60.0, f"custom object {name}", interval=0.5, ignore=(Exception,))
    kubectl = str(kube.kubectl_path(kube_ctx))
    resource = f"{crd['plural']}.{crd['group']}"

    def listed() -> list[str]:
        out = run_cli(kube_ctx, [kubectl, "get", resource, "-n", namespace, "-o", "name"]).stdout
        names = sorted(line.rsplit("/", 1)[-1] for line in out.split())
        return names if names == ["alpha", "beta"] else []

    assert wait_until_sync(listed, 60, "kubectl to list both custom objects", interval=0.5,
                           ignore=(Exception,)) == ["alpha", "beta"]
    table = run_cli(kube_ctx, [kubectl, "get", crd["plural"], "-n", namespace]).stdout
    assert "alpha" in table and "beta" in table


@pytest.mark.e2e
def test_kubectl_version_matches_server(kube_ctx: Context) -> None:
    out = run_cli(kube_ctx, [str(kube.kubectl_path(kube_ctx)), "version", "-o", "json"]).stdout
    versions = json.loads(out)
    assert versions["clientVersion"]["gitVersion"] == kube.KUBE_VERSION
    assert versions["serverVersion"]["gitVersion"] == kube.KUBE_VERSION


@pytest.mark.e2e
def test_helm_installs_a_chart(kube_ctx: Context, api: Any, namespace: str, tmp_path: Path) -> None:
    from kubernetes import client

    helm = str(kube.helm_path(kube_ctx))
    assert kube.HELM_VERSION in run_cli(kube_ctx, [helm, "version", "--short"]).stdout
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v2", "name": "tiny", "version": "0.1.0", "kubeVersion": ">=1.34.0-0"}))
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    run_cli(kube_ctx, [helm, "install", "rel", str(chart), "-n", namespace, "--set", "greeting=hi",
                       "--wait", "--timeout", "60s"], timeout=120)
    cm = client.CoreV1Api(api).read_namespaced_config_map("rel-cm", namespace)
    assert cm.data == {"greeting": "hi"}
    listed = json.loads(run_cli(kube_ctx, [helm, "list", "-n", namespace, "-o", "json"]).stdout)
    assert [r["name"] for r in listed] == ["rel"]
    run_cli(kube_ctx, [helm, "uninstall", "rel", "-n", namespace, "--wait"], timeout=120)
