"""The operator chart's RBAC follows its scope (rendered with helm; no API server needed).

Watching every namespace: one ClusterRole. Watching named namespaces: a Role and RoleBinding in each of
them, and a ClusterRole with only the cluster-scoped minimum kopf needs. The rules cover every kind of
child the operator manages (kube.CHILD_KINDS), and Secrets get only the verbs the operator uses.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from culture_operator.kube import CHILD_KINDS
from culture_stack.servers.kube import helm_path

pytestmark = pytest.mark.e2e

CHART = Path(__file__).resolve().parents[2] / "charts" / "culture-operator"
#: what the operator does to Secrets: list its children by label, get the keys it keeps and the external
#: databases' Secrets, server-side apply (create, patch), prune (delete); never watch
SECRET_VERBS = {"get", "list", "create", "patch", "delete"}
#: cluster-scoped rules a namespaced install keeps: kopf reads the CRDs and the namespace names
CLUSTER_MINIMUM = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}


def render(*values: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` values, as parsed documents."""
    helm = helm_path()
    if not helm.exists():
        pytest.skip(f"helm is not built yet at {helm} (culture stack up kube-apiserver builds it)")
    args = [str(helm), "template", "rel", str(CHART), "-n", "ops"]
    for v in values:
        args += ["--set", v]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rules_by_resource(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs of a (Cluster)Role."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                out.setdefault((group, res), set()).update(rule["verbs"])
    return out


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def assert_namespaced_rules(rules: dict[tuple[str, str], set[str]]) -> None:
    """What the operator needs where it reconciles."""
    for kind in CHILD_KINDS:
        group = kind.api_version.rpartition("/")[0]
        assert {"get", "list", "create", "patch", "delete"} <= rules[(group, kind.plural)], kind
    assert rules[("", "secrets")] == SECRET_VERBS
    assert {"get", "list", "watch", "patch"} <= rules[("platform.culture.dev", "cultureplatforms")]
    assert {"patch"} <= rules[("platform.culture.dev", "cultureplatforms/status")]
    assert {"create", "patch"} <= rules[("", "events")]


def test_every_namespace_gets_one_cluster_role() -> None:
    docs = render()
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    (role,) = of_kind(docs, "ClusterRole")
    rules = rules_by_resource(role)
    assert_namespaced_rules(rules)
    assert {"get", "list", "watch", "patch"} <= rules[("kopf.dev", "clusterkopfpeerings")]
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-culture-operator",
                                    "namespace": "ops"}]
    assert [d["metadata"]["name"] for d in of_kind(docs, "ClusterKopfPeering")] == ["culture-operator"]
    assert not of_kind(docs, "KopfPeering")


def test_watch_namespaces_get_roles_there_and_only_the_cluster_minimum_cluster_wide() -> None:
    docs = render("watchNamespaces={team-a,team-b}")
    (cluster_role,) = of_kind(docs, "ClusterRole")
    assert set(rules_by_resource(cluster_role)) == CLUSTER_MINIMUM  # no Secret, no child, cluster-wide
    assert rules_by_resource(cluster_role)[("", "namespaces")] == {"list", "watch"}
    roles = {d["metadata"]["namespace"]: d for d in of_kind(docs, "Role")}
    assert set(roles) == {"team-a", "team-b"}
    for role in roles.values():
        rules = rules_by_resource(role)
        assert_namespaced_rules(rules)
        assert ("kopf.dev", "clusterkopfpeerings") not in rules
        assert {"get", "list", "watch", "patch"} <= rules[("kopf.dev", "kopfpeerings")]
    bindings = {d["metadata"]["namespace"]: d for d in of_kind(docs, "RoleBinding")}
    assert set(bindings) == {"team-a", "team-b"}
    for ns, binding in bindings.items():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": roles[ns]["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-culture-operator",
                                        "namespace": "ops"}]
    # kopf watching some namespaces peers through a KopfPeering in each: no cluster-wide one
    assert not of_kind(docs, "ClusterKopfPeering")
    assert {d["metadata"]["namespace"] for d in of_kind(docs, "KopfPeering")} == {"team-a", "team-b"}
    (dep,) = of_kind(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args


def test_a_glob_cannot_be_enumerated_so_its_rules_are_cluster_wide() -> None:
    docs = render("watchNamespaces={team-*}")
    assert not of_kind(docs, "Role")
    (role,) = of_kind(docs, "ClusterRole")
    assert_namespaced_rules(rules_by_resource(role))


def test_replicas_peer_with_a_lifetime_and_their_pod_names() -> None:
    docs = render("replicaCount=2", "peeringLifetime=15")
    (dep,) = of_kind(docs, "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--peering-lifetime=15" in container["args"]
    assert not [a for a in container["args"] if a.startswith("--priority")], "priority is by start time"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
