"""The operator against the REAL local control plane, driven with kubectl and helm as a user would."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from conftest import KAFKA_BOOTSTRAP, REPO, Kubectl, Operator

from culture_events.testing import wait_until_sync
from culture_operator import builders as b
from culture_operator.spec import EVENT_TOPICS, SERVICE_ROLES, parse_spec

pytestmark = pytest.mark.e2e

CHART = REPO / "charts" / "culture-operator"
EXAMPLE = REPO / "examples" / "cultureplatform-external.yaml"
ONLY = ("feed", "graph", "gateway")  # small (the feed needs the graph): fewer children, faster


def keep_if(value: Any, ok: Any) -> Any:
    """`value` when ok(value), else None: for wait_for conditions that return what they found."""
    return value if ok(value) else None


def small_spec(prefix: str, **over: Any) -> dict[str, Any]:
    """External Kafka (the stack's), external databases, only feed, graph and gateway enabled."""
    spec: dict[str, Any] = {
        "kafka": {
            "mode": "external",
            "bootstrapServers": [KAFKA_BOOTSTRAP],
            "topicPrefix": f"{prefix}.",
            "topics": {"partitions": 2},
        },
        # the gateway's Redis (push updates) is external too: no managed database to wait for
        "databases": {
            "cassandra": {"mode": "external", "secretRef": {"name": "cassandra-conn"}},
            "redis": {"mode": "external", "secretRef": {"name": "redis-conn"}},
            "neo4j": {"mode": "external", "secretRef": {"name": "neo4j-conn"}},
        },
        "services": {s: {"enabled": s in ONLY} for s in SERVICE_ROLES},
        # keep the pods off any real node (the local cluster may have one): these tests play the
        # kubelet themselves by patching pod status, which a real kubelet would overwrite
        "nodeSelector": {"culture.dev/e2e-no-node": "true"},
    }
    spec.update(over)
    return spec


def platform(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "platform.culture.dev/v1alpha1",
        "kind": "CulturePlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def expected(k: Kubectl, namespace: str, name: str) -> set[tuple[str, str]]:
    """(kind, name) of every child the pure builders say the stored object asks for."""
    cp = k.json("cp", name, "-n", namespace)
    owner = b.Owner(name, namespace, cp["metadata"]["uid"])
    spec = parse_spec(cp["spec"])
    return {
        (m["kind"], m["metadata"]["name"])
        for m in b.build_children(
            owner, spec, dict.fromkeys(b.managed_databases(spec), "x"), b.SigningKey.from_seed(bytes(32)),
            client_address_key="x",
        )
    }


KINDS = "configmaps,secrets,services,statefulsets,deployments,poddisruptionbudgets,networkpolicies"


def children(k: Kubectl, namespace: str, name: str, kinds: str = KINDS) -> dict[tuple[str, str], dict]:
    out = k.json(kinds, "-n", namespace, "-l", b.owner_selector(name))
    return {(i["kind"], i["metadata"]["name"]): i for i in out["items"]}


def condition(cp: dict | None, ctype: str) -> dict:
    for c in ((cp or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return {}


def wait_children(k: Kubectl, namespace: str, name: str, kinds: str = KINDS, timeout: float = 30) -> dict:
    want = {
        c
        for c in expected(k, namespace, name)
        if c[0].lower() + "s" in kinds or c[0] == "PodDisruptionBudget"
    }
    return wait_until_sync(lambda: keep_if(children(k, namespace, name, kinds), lambda got: want <= set(got)),
                           timeout, f"children of {name}")


def reconcile_passes(op: Operator) -> int:
    return len(re.findall(r"reconciled \S+: phase", op.log.read_text(errors="replace")))


def wait_passes(op: Operator, n: int = 2, timeout: float = 30) -> None:
    start = reconcile_passes(op)
    wait_until_sync(lambda: reconcile_passes(op) >= start + n, timeout, f"{n} more reconcile passes")


def secret(k: Kubectl, namespace: str, name: str, url: str) -> None:
    k.run("create", "secret", "generic", name, "-n", namespace, f"--from-literal=url={url}")


def make_pods_ready(k: Kubectl, namespace: str, name: str) -> int:
    """Play the kubelet: mark every pod of the platform Running and Ready (no kubelet runs here)."""
    pods = k.json("pods", "-n", namespace, "-l", b.owner_selector(name))["items"]
    now = "2025-01-01T00:00:00Z"
    for pod in pods:
        conds = [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        k.run(
            "patch",
            "pod",
            pod["metadata"]["name"],
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"phase": "Running", "conditions": conds}}),
        )
    return len(pods)


async def partitions(names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(names)
        described = await admin.describe_topics(sorted(present)) if present else []
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


# -- tests -------------------------------------------------------------------------------------------


def test_helm_chart_lints_renders_valid_and_installs(k: Kubectl, namespace: str, unique: str) -> None:
    import kubernetes_validate

    if not Path(k.helm).exists():
        pytest.skip(f"helm is not built yet at {k.helm} (culture stack up kube-apiserver builds it)")
    lint = k.helm_run("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in lint.stdout
    rendered = k.helm_run("template", unique, str(CHART), "-n", namespace, "--include-crds").stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"] for d in docs}
    assert {
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "Deployment",
    } <= kinds
    for doc in docs:
        if doc["apiVersion"].startswith("kopf.dev"):
            continue  # a custom resource: validated by the API server at install below
        kubernetes_validate.validate(doc, "1.34.0", strict=True)
    k.helm_run(
        "install",
        unique,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"peeringName={unique}",
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--wait=false",
    )
    try:
        dep = k.json("deployment", f"{unique}-culture-operator", "-n", namespace)
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert f"--namespace={namespace}" in container["args"] and container["livenessProbe"]["httpGet"]
        assert k.json("clusterkopfpeering", unique) is None  # only made when watching every namespace
        # kopf watching one namespace peers through a namespaced KopfPeering there
        assert k.json("kopfpeering", unique, "-n", namespace)
        assert (
            k.run(
                "auth",
                "can-i",
                "patch",
                "deployments",
                "-n",
                namespace,
                f"--as=system:serviceaccount:{namespace}:{unique}-culture-operator",
            ).stdout.strip()
            == "yes"
        )
        assert (
            k.run(
                "auth",
                "can-i",
                "delete",
                "nodes",
                f"--as=system:serviceaccount:{namespace}:{unique}-culture-operator",
                check=False,
            ).stdout.strip()
            == "no"
        )
        crd = k.json("crd", "cultureplatforms.platform.culture.dev")
        assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
        assert "cultureplatforms" in k.run("api-resources", "--api-group=platform.culture.dev").stdout
    finally:
        k.helm_run("uninstall", unique, "-n", namespace, check=False)


def test_invalid_specs_are_rejected_naming_the_field(k: Kubectl, namespace: str) -> None:
    cases = {
        "spec.services.feed.api-read.replicas": {"services": {"feed": {"api-read": {"replicas": -1}}}},
        "spec.kafka.mode": {"kafka": {"mode": "zookeeper"}},
        "spec.kafka.bootstrapServers": {"kafka": {"mode": "external"}},
        "spec.databases.postgres.secretRef": {"databases": {"postgres": {"mode": "external"}}},
        # the feed worker calls the graph's api-read: the graph cannot be disabled while the feed is on
        "spec.services.graph.enabled": {"services": {"graph": {"enabled": False}}},
    }
    for field, spec in cases.items():
        proc = k.run("apply", "-f", "-", stdin=json.dumps(platform("bad", namespace, spec)), check=False)
        assert proc.returncode != 0, f"{field}: accepted"
        assert field in proc.stderr, proc.stderr
    assert k.json("cp", "-n", namespace)["items"] == []


def test_example_creates_every_child_with_owner_labels_and_columns(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["kafka"]["topicPrefix"] = f"{unique}."
    k.apply(doc)
    cp = k.json("cp", "demo", "-n", namespace)
    got = wait_children(k, namespace, "demo", timeout=30)
    assert set(got) == {c for c in expected(k, namespace, "demo") if c[0] != "KafkaTopic"}
    for (kind, name), obj in got.items():
        refs = obj["metadata"].get("ownerReferences")
        if kind == "Secret" and name.endswith("-credentials"):  # kept with the data volume (deleteClaim)
            assert refs is None and obj["metadata"]["annotations"][
                "platform.culture.dev/delete-with-platform"] == "false", name
            continue
        assert refs == [
            {
                "apiVersion": "platform.culture.dev/v1alpha1",
                "kind": "CulturePlatform",
                "name": "demo",
                "uid": cp["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "culture-platform"
    dep = got[("Deployment", "demo-feed-api-read")]
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "100m",
        "memory": "128Mi",
    }
    assert ("PodDisruptionBudget", "demo-feed-api-read") in got
    sts = got[("StatefulSet", "demo-postgres")]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    table = wait_until_sync(
        lambda: keep_if(k.run("get", "cp", "-n", namespace).stdout,
                        lambda out: "demo" in out and "external" in out),
        30.0, "printer columns with a phase")
    header = table.splitlines()[0].split()
    assert header == ["NAME", "READY", "PHASE", "KAFKA", "AGE"]
    explain = k.run("explain", "cp.spec.services.feed").stdout
    assert "api-read" in explain and "worker" in explain and "The feed service" in explain
    assert "bootstrapServers" in k.run("explain", "cp.spec.kafka").stdout
    events = k.run("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=demo").stdout
    assert "Applied" in events


def test_patching_read_replicas_changes_only_that_deployment(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    k.apply(platform("p1", namespace, small_spec(unique)))
    wait_children(k, namespace, "p1")
    # let the deployment controller settle the Deployments' status, then snapshot
    wait_passes(operator, 2)
    before = {key: o["metadata"]["resourceVersion"] for key, o in children(k, namespace, "p1").items()}
    wait_passes(operator, 2)
    settled = {key: o["metadata"]["resourceVersion"] for key, o in children(k, namespace, "p1").items()}
    assert before == settled, "children changed without a spec change"
    k.run(
        "patch",
        "cp",
        "p1",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"services": {"feed": {"api-read": {"replicas": 3}}}}}),
    )
    wait_until_sync(
        lambda: k.json("deployment", "p1-feed-api-read", "-n", namespace)["spec"]["replicas"] == 3,
        30.0, "feed api-read at 3 replicas")
    wait_passes(operator, 2)
    after = children(k, namespace, "p1")
    changed = {key for key, rv in settled.items() if after[key]["metadata"]["resourceVersion"] != rv}
    assert changed == {("Deployment", "p1-feed-api-read")}
    assert set(after) - set(settled) == {("PodDisruptionBudget", "p1-feed-api-read")}


def test_deleted_child_is_recreated_and_hand_edits_corrected(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    k.apply(platform("p2", namespace, small_spec(unique)))
    got = wait_children(k, namespace, "p2")
    old_uid = got[("Service", "p2-gateway-api")]["metadata"]["uid"]
    k.run("delete", "service", "p2-gateway-api", "-n", namespace)
    k.run("delete", "configmap", "p2-wiring", "-n", namespace)
    wait_until_sync(
        lambda: (s := k.json("service", "p2-gateway-api", "-n", namespace))
        and s["metadata"]["uid"] != old_uid,
        30.0, "Service recreated")
    wait_until_sync(lambda: k.json("configmap", "p2-wiring", "-n", namespace), 30.0, "wiring recreated")
    k.run("scale", "deployment", "p2-feed-worker", "-n", namespace, "--replicas=5")
    wait_until_sync(lambda: k.json("deployment", "p2-feed-worker", "-n", namespace)["spec"]["replicas"] == 1,
                    30.0, "replicas corrected to 1")


def test_readiness_moves_conditions_and_observed_generation(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    secret(k, namespace, "redis-conn", "redis://db:6379/0")
    secret(k, namespace, "neo4j-conn", "neo4j://db:7687")
    k.apply(platform("p3", namespace, small_spec(unique)))
    wait_children(k, namespace, "p3")
    cp = wait_until_sync(lambda: (c := k.json("cp", "p3", "-n", namespace)).get("status") and c, 30.0,
                         "status written")
    assert cp["status"]["observedGeneration"] == cp["metadata"]["generation"]
    assert condition(cp, "ServicesReady")["status"] == "False"
    assert condition(cp, "Ready")["status"] == "False"
    assert condition(cp, "KafkaReady")["status"] == "True", condition(cp, "KafkaReady")
    assert condition(cp, "DatabasesReady")["status"] == "True", condition(cp, "DatabasesReady")
    n_deps = len([c for c in expected(k, namespace, "p3") if c[0] == "Deployment"])
    wait_until_sync(
        lambda: len(k.json("pods", "-n", namespace, "-l", b.owner_selector("p3"))["items"]) >= n_deps,
        30.0, "pods created by the ReplicaSets")
    ready_since = condition(cp, "KafkaReady")["lastTransitionTime"]
    make_pods_ready(k, namespace, "p3")
    cp = wait_until_sync(
        lambda: condition(c := k.json("cp", "p3", "-n", namespace), "Ready").get("status") == "True" and c,
        30, "Ready=True")
    assert condition(cp, "ServicesReady")["status"] == "True"
    assert cp["status"]["phase"] == "Ready"
    assert condition(cp, "KafkaReady")["lastTransitionTime"] == ready_since  # no flip, no new time
    assert "Ready" in k.run("get", "cp", "p3", "-n", namespace).stdout.splitlines()[1]
    k.run(
        "patch",
        "cp",
        "p3",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"image": "x/culture:2"}}),
    )
    gen = k.json("cp", "p3", "-n", namespace)["metadata"]["generation"]
    wait_until_sync(lambda: k.json("cp", "p3", "-n", namespace)["status"]["observedGeneration"] == gen, 30.0,
                    "observedGeneration follows")


def admission_policy(k: Kubectl, name: str, namespace: str, resource: tuple[str, str], expression: str,
                     message: str) -> None:
    """A ValidatingAdmissionPolicy (and its binding, both named `name`) that refuses creating or updating
    `resource` ((API group, plural)) in `namespace` unless the CEL `expression` holds."""
    group, plural = resource
    k.apply({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{
                     "apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": [plural]}]},
                 "validations": [{"expression": expression, "message": message}]},
    })
    k.apply({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {
                     "matchLabels": {"kubernetes.io/metadata.name": namespace}}}},
    })


def test_a_child_the_api_server_refuses_makes_ready_false_until_it_is_applied(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    """An admission policy refuses the gateway's Deployment: Ready=False with reason ApplyFailed and
    the API server's message, observedGeneration not advanced; once the policy goes, the generation
    is applied and observed."""
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    secret(k, namespace, "redis-conn", "redis://db:6379/0")
    secret(k, namespace, "neo4j-conn", "neo4j://db:7687")
    frozen = b.deployment_name(b.Owner("p6", namespace, ""), "gateway", "api")
    policy = f"freeze-{unique}"
    admission_policy(k, policy, namespace, ("apps", "deployments"), f"object.metadata.name != '{frozen}'",
                     "this Deployment is frozen by policy")
    try:
        # the policy is in force once a server-side dry run of such a Deployment is refused
        wait_until_sync(lambda: "frozen by policy" in k.run(
            "create", "deployment", frozen, "-n", namespace, "--image=x", "--dry-run=server",
            check=False).stderr, 30, "the admission policy to be in force")
        k.apply(platform("p6", namespace, small_spec(unique)))
        cp = wait_until_sync(
            lambda: condition(c := k.json("cp", "p6", "-n", namespace), "Ready").get("reason")
            == "ApplyFailed" and c, 60, "Ready=False ApplyFailed")
        ready = condition(cp, "Ready")
        assert ready["status"] == "False" and "frozen by policy" in ready["message"]
        assert frozen in ready["message"]
        assert cp["status"]["phase"] == "Failed"
        assert cp["status"].get("observedGeneration", 0) != cp["metadata"]["generation"]
        # the reconciles retried meanwhile share ONE aggregated Event, not one Event each
        wait_until_sync(lambda: operator.log.read_text(errors="replace").count(
            "refused by the API server") >= 4, 90, "more refused reconciles")
        events = k.json("events", "-n", namespace, "--field-selector",
                        "involvedObject.name=p6,reason=ApplyFailed")["items"]
        assert len(events) == 1 and "frozen by policy" in events[0]["message"], events
    finally:
        k.run("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)
    generation = k.json("cp", "p6", "-n", namespace)["metadata"]["generation"]
    cp = wait_until_sync(
        lambda: (c := k.json("cp", "p6", "-n", namespace))["status"].get("observedGeneration") == generation
        and c, 60, "the generation applied and observed once the policy is gone")
    assert condition(cp, "Ready")["reason"] != "ApplyFailed"
    assert k.json("deployment", frozen, "-n", namespace)["metadata"]["name"] == frozen


def test_events_the_api_server_refuses_never_stop_a_reconcile(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    """An admission policy refuses every Event in the namespace: the reconcile still creates every
    child and writes its status (an Event is a courtesy; the failure is only logged)."""
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    secret(k, namespace, "redis-conn", "redis://db:6379/0")
    secret(k, namespace, "neo4j-conn", "neo4j://db:7687")
    policy = f"no-events-{unique}"
    admission_policy(k, policy, namespace, ("", "events"), "false", "events are refused by policy")
    try:
        probe = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"probe-{unique}"},
                 "involvedObject": {"kind": "ConfigMap", "name": "probe", "namespace": namespace},
                 "reason": "Probe",
                 "message": "probe"}
        wait_until_sync(lambda: "refused by policy" in k.run(
            "create", "-n", namespace, "--dry-run=server", "-f", "-", stdin=json.dumps(probe),
            check=False).stderr, 30, "the admission policy to be in force")
        k.apply(platform("p7", namespace, small_spec(unique)))
        cp = wait_until_sync(
            lambda: (c := k.json("cp", "p7", "-n", namespace)).get("status", {}).get("observedGeneration")
            == c["metadata"]["generation"] and c, 60, "the generation applied and observed")
        assert condition(cp, "Ready").get("reason") != "ApplyFailed"
        assert children(k, namespace, "p7"), "no children were created"
        refused = "could not post the Applied event"
        wait_until_sync(lambda: refused in operator.log.read_text(errors="replace"), 30,
                        "the operator to log the refused Event")
        assert k.json("events", "-n", namespace, "--field-selector", "involvedObject.name=p7")["items"] == []
    finally:
        k.run("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)


def test_external_kafka_topics_grow_and_never_shrink(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    spec = small_spec(unique)
    spec["kafka"]["topicOverrides"] = {"chat.message-sent": {"partitions": 4}}
    k.apply(platform("p4", namespace, spec))
    names = [f"{unique}.{t}" for t in EVENT_TOPICS]
    got = wait_until_sync(lambda: keep_if(asyncio.run(partitions(names)), lambda p: len(p) == len(names)),
                          30, "topics created")
    assert got[f"{unique}.chat.message-sent"] == 4
    assert all(n == 2 for t, n in got.items() if not t.endswith("chat.message-sent"))
    grow = copy.deepcopy(spec)
    grow["kafka"]["topicOverrides"]["chat.message-sent"]["partitions"] = 6
    k.apply(platform("p4", namespace, grow))
    wait_until_sync(lambda: asyncio.run(partitions(names))[f"{unique}.chat.message-sent"] == 6, 30.0,
                    "partitions raised")
    shrink = copy.deepcopy(spec)
    shrink["kafka"]["topicOverrides"]["chat.message-sent"]["partitions"] = 3
    k.apply(platform("p4", namespace, shrink))
    cond = wait_until_sync(
        lambda: (c := condition(k.json("cp", "p4", "-n", namespace), "KafkaReady")).get("reason")
        == "PartitionShrinkRefused" and c,
        30.0, "shrink refused")
    assert cond["status"] == "False"
    assert f"{unique}.chat.message-sent has 6 partitions, spec asks 3" in cond["message"]
    assert k.json("cp", "p4", "-n", namespace)["status"]["phase"] == "Failed"
    assert asyncio.run(partitions(names))[f"{unique}.chat.message-sent"] == 6


def test_strimzi_children_validate_against_the_strimzi_schema(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    spec = small_spec(unique)
    spec["kafka"] = {
        "mode": "strimzi",
        "strimzi": {"replicas": 3},
        "topicOverrides": {"feed.feed-created": {"partitions": 8, "config": {"retention.ms": "1000"}}},
    }
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    k.apply(platform("p5", namespace, spec))
    kinds = "kafkas.kafka.strimzi.io,kafkanodepools.kafka.strimzi.io,kafkatopics.kafka.strimzi.io"
    got = wait_until_sync(
        lambda: keep_if(children(k, namespace, "p5", kinds), lambda c: len(c) == 2 + len(EVENT_TOPICS)),
        30.0, "Strimzi children")
    kafka = got[("Kafka", "p5-kafka")]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert kafka["spec"]["entityOperator"]["topicOperator"] == {}
    pool = got[("KafkaNodePool", "p5-dual-role")]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "p5-kafka"
    assert pool["spec"]["roles"] == ["controller", "broker"] and pool["spec"]["replicas"] == 3
    topic = got[("KafkaTopic", "p5-feed.feed-created")]
    assert topic["spec"] == {
        "topicName": "feed.feed-created",
        "partitions": 8,
        "replicas": 1,
        "config": {"min.insync.replicas": "1", "retention.ms": "1000"},
    }
    # every object passes Strimzi's real schema again, strictly (unknown fields are errors)
    for obj in got.values():
        clean = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {"name": obj["metadata"]["name"], "namespace": namespace},
            "spec": obj["spec"],
        }
        k.run(
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "--server-side",
            "--field-manager=check",
            "-f",
            "-",
            stdin=json.dumps(clean),
        )
    cond = wait_until_sync(lambda: condition(k.json("cp", "p5", "-n", namespace), "KafkaReady"), 30.0,
                           "KafkaReady reported")
    assert cond["status"] == "False" and cond["reason"] in ("KafkaPending", "KafkaNotReady")
    # play Strimzi: the Kafka and its topics become Ready
    ready = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    k.run("patch", "kafka", "p5-kafka", "-n", namespace, "--subresource=status", "--type=merge", "-p", ready)
    for _kind, name in got:
        if _kind == "KafkaTopic":
            k.run(
                "patch",
                "kafkatopic",
                name,
                "-n",
                namespace,
                "--subresource=status",
                "--type=merge",
                "-p",
                ready,
            )
    wait_until_sync(
        lambda: condition(k.json("cp", "p5", "-n", namespace), "KafkaReady").get("status") == "True",
        30.0, "KafkaReady=True")


def test_delete_platform_garbage_collects_children(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    k.apply(platform("p6", namespace, small_spec(unique)))
    wait_children(k, namespace, "p6")
    wait_until_sync(lambda: k.json("cp", "p6", "-n", namespace)["metadata"].get("finalizers"), 30.0,
                    "finalizer added")
    k.run("delete", "cp", "p6", "-n", namespace, "--wait=true", "--timeout=60s")
    assert k.json("cp", "p6", "-n", namespace) is None
    wait_until_sync(lambda: not children(k, namespace, "p6"), 60, "children garbage-collected")
    assert k.json("secret", "cassandra-conn", "-n", namespace)  # not ours: left alone


def test_operator_killed_mid_reconcile_converges(
    k: Kubectl, namespace: str, unique: str, tmp_path: Path
) -> None:
    secret(k, namespace, "cassandra-conn", "cassandra://db:9042")
    k.apply(platform("p7", namespace, small_spec(unique)))
    op = Operator(k, [namespace], tmp_path / "op1.log").start()
    try:
        wait_until_sync(lambda: children(k, namespace, "p7"), 30.0, "the first child", interval=0.05)
        op.stop(kill=True)  # SIGKILL in the middle of applying
        partial = children(k, namespace, "p7")
    finally:
        op.stop()
    op2 = Operator(k, [namespace], tmp_path / "op2.log").start()
    try:
        got = wait_children(k, namespace, "p7")
        assert set(got) == expected(k, namespace, "p7")
        assert set(partial) <= set(got)
        cp = wait_until_sync(lambda: (c := k.json("cp", "p7", "-n", namespace)).get("status") and c, 30.0,
                             "status after restart")
        assert cp["status"]["observedGeneration"] == cp["metadata"]["generation"]
        wait_passes(op2, 2)
        stable = {key: o["metadata"]["resourceVersion"] for key, o in children(k, namespace, "p7").items()}
        wait_passes(op2, 2)
        assert stable == {
            key: o["metadata"]["resourceVersion"] for key, o in children(k, namespace, "p7").items()
        }
    finally:
        op2.stop()
        print(op2.tail())
