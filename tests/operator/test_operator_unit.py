"""Unit tests of the operator's pure parts: spec, CRD generation, builders, compare, status."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest

from culture_operator import builders as b
from culture_operator import crd
from culture_operator import status as st
from culture_operator.compare import contains, needs_apply
from culture_operator.spec import EVENT_TOPICS, SERVICE_ROLES, SERVICE_UPSTREAMS, parse_spec

pytestmark = pytest.mark.unit

OWNER = b.Owner(name="demo", namespace="ns1", uid="uid-1")


def children(raw: dict | None = None) -> list[dict]:
    spec = parse_spec(raw or {})
    return b.build_children(OWNER, spec, {db: "pw" for db in b.managed_databases(spec)})


def by_name(items: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in items if m["kind"] == kind}


def test_spec_defaults_and_validation() -> None:
    spec = parse_spec({})
    assert spec.kafka.mode == "strimzi"
    assert spec.role("feed", "api-read").replicas == 1
    with pytest.raises(pydantic.ValidationError, match="bootstrapServers"):
        parse_spec({"kafka": {"mode": "external"}})
    with pytest.raises(pydantic.ValidationError):
        parse_spec({"services": {"feed": {"api-read": {"replicas": -1}}}})
    with pytest.raises(pydantic.ValidationError):
        parse_spec({"kafka": {"mode": "zookeeper"}})
    with pytest.raises(pydantic.ValidationError, match="secretRef"):
        parse_spec({"databases": {"postgres": {"mode": "external"}}})


def test_a_service_another_enabled_one_calls_cannot_be_disabled_alone() -> None:
    # the feed worker asks the graph's api-read for the followers a review fans out to
    with pytest.raises(pydantic.ValidationError, match=r"services\.graph\.enabled must be true while "
                       r"services\.feed is enabled.*FollowersInterestedIn"):
        parse_spec({"services": {"graph": {"enabled": False}}})
    parse_spec({"services": {"graph": {"enabled": False}, "feed": {"enabled": False}}})
    parse_spec({"services": {"feed": {"enabled": False}}})
    # the same rule as CEL, for the API server: one per caller and upstream, on the upstream's field
    services = crd.spec_schema()["properties"]["services"]
    rules = {r["fieldPath"]: r for r in services["x-kubernetes-validations"]}
    for caller, upstreams in SERVICE_UPSTREAMS.items():
        for up in upstreams:
            rule = rules[f".{up.service}.enabled"]
            assert f"self.{caller}.enabled" in rule["rule"] and f"self.{up.service}.enabled" in rule["rule"]
            assert f"services.{up.service}.enabled must be true while services.{caller}" in rule["message"]
    # the caller's pods get the address
    feed = by_name(children(), "Deployment")["demo-feed-worker"]
    env = {e["name"]: e.get("value") for e in feed["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CULTURE_FEED_GRAPH_READ"] == "demo-graph-api-read.ns1.svc:50051"


def test_crd_files_are_current_and_structural() -> None:
    for path in crd.CRD_PATHS:
        assert path.read_text() == crd.render(), (
            f"{path} is stale: run python -m culture_operator.crd --write"
        )
    assert crd.PLATFORM_VALUES_SCHEMA.read_text() == crd.render_values_schema(), (
        f"{crd.PLATFORM_VALUES_SCHEMA} is stale: run python -m culture_operator.crd --write"
    )
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(node: dict, where: str) -> None:
        assert "x-kubernetes-preserve-unknown-fields" not in node, where
        assert "$ref" not in node and "anyOf" not in node, where
        if where.count(".") > 1 and not where.endswith(("[]", "{}")):
            assert node.get("description"), f"{where} has no description"
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], where + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], where + "{}")

    walk(schema["properties"]["spec"], ".spec")
    roles = schema["properties"]["spec"]["properties"]["services"]["properties"]["feed"]["properties"]
    assert set(roles) == {"enabled", "api-read", "worker"}
    assert roles["api-read"]["properties"]["replicas"]["minimum"] == 0


def test_children_have_owner_labels_and_hardening() -> None:
    items = children()
    for m in items:
        # the credentials of managed databases outlive the platform by default (deleteClaim false)
        kept = m["kind"] == "Secret" and m["metadata"]["name"].endswith("-credentials")
        assert m["metadata"].get("ownerReferences") == (None if kept else [OWNER.reference()])
        assert m["metadata"]["labels"][b.LABEL_INSTANCE] == "demo"
        assert m["metadata"]["labels"][b.LABEL_MANAGED_BY] == b.MANAGER
    deployments = by_name(items, "Deployment")
    assert len(deployments) == sum(len(r) for r in SERVICE_ROLES.values())
    dep = deployments["demo-feed-api-read"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"] == ["serve", "feed", "--role", "api-read"]
    assert c["readinessProbe"]["grpc"]["port"] == 50051 and c["livenessProbe"]["grpc"]["port"] == 50051
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"configMapRef": {"name": "demo-wiring"}} in c["envFrom"]


def test_node_selector_reaches_every_pod_and_is_absent_by_default() -> None:
    def pod_specs(items: list[dict]) -> dict[str, list[dict]]:
        return {kind: [m["spec"]["template"]["spec"] for m in items if m["kind"] == kind]
                for kind in ("Deployment", "StatefulSet")}

    for pods in pod_specs(children()).values():
        assert pods and all("nodeSelector" not in pod for pod in pods)
    for pods in pod_specs(children({"nodeSelector": {"pool": "culture"}})).values():  # services and DBs
        assert pods and all(pod["nodeSelector"] == {"pool": "culture"} for pod in pods)


def test_pdb_only_for_multi_replica_roles_and_disabled_service_is_gone() -> None:
    items = children({"services": {"feed": {"api-read": {"replicas": 3}}, "chat": {"enabled": False}}})
    assert set(by_name(items, "PodDisruptionBudget")) == {"demo-feed-api-read"}
    assert not [n for n in by_name(items, "Deployment") if "-chat-" in n]
    # identity still uses postgres; chat's cassandra is still used by feed, redis by notifier
    assert {"demo-postgres", "demo-cassandra", "demo-redis"} <= set(by_name(items, "StatefulSet"))
    # redis goes when none of its users (notifier, chat, identity's login limiter, catalog's cache, mailer,
    # feed's notices, gateway) is left
    off = {"enabled": False}
    items = children({"services": {s: off for s in ("notifier", "chat", "identity", "catalog", "mailer",
                                                     "feed", "gateway")}})
    assert "demo-redis" not in by_name(items, "StatefulSet")


def test_strimzi_children_and_topic_overrides() -> None:
    items = children(
        {
            "kafka": {
                "topics": {"partitions": 6, "config": {"retention.ms": "1000"}},
                "topicOverrides": {"chat.message-sent": {"partitions": 12}},
                "strimzi": {"replicas": 3},
            }
        }
    )
    kafka = by_name(items, "Kafka")["demo-kafka"]
    assert kafka["apiVersion"] == b.STRIMZI_API_VERSION == "kafka.strimzi.io/v1"
    assert kafka["spec"]["entityOperator"]["topicOperator"] == {}
    pool = by_name(items, "KafkaNodePool")["demo-dual-role"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "demo-kafka"
    assert pool["spec"]["roles"] == ["controller", "broker"] and pool["spec"]["replicas"] == 3
    topics = {t["spec"]["topicName"]: t for t in by_name(items, "KafkaTopic").values()}
    assert set(topics) == set(EVENT_TOPICS)
    assert topics["chat.message-sent"]["spec"]["partitions"] == 12
    assert topics["feed.feed-created"]["spec"]["partitions"] == 6
    assert topics["feed.feed-created"]["spec"]["config"] == {"retention.ms": "1000",
                                                             "min.insync.replicas": "1"}
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "demo-kafka" for t in topics.values())


def test_external_modes() -> None:
    items = children(
        {
            "kafka": {"mode": "external", "bootstrapServers": ["k:9092"], "topicPrefix": "x."},
            "databases": {"postgres": {"mode": "external", "secretRef": {"name": "pg"}}},
        }
    )
    assert not by_name(items, "Kafka") and not by_name(items, "KafkaTopic")
    assert "demo-postgres" not in by_name(items, "StatefulSet")
    wiring = by_name(items, "ConfigMap")["demo-wiring"]["data"]
    # the names culture_runtime.settings.PlatformSettings reads
    assert wiring["CULTURE_KAFKA_BOOTSTRAP"] == "k:9092"
    # services name topics <namespace>.<topic>: the same names the operator creates with the prefix
    assert wiring["CULTURE_TOPIC_NAMESPACE"] == "x"
    assert {t.name for t in b.wanted_topics(parse_spec({"kafka": {"topicPrefix": "x."}}))} == {
        f"x.{t}" for t in EVENT_TOPICS
    }
    env = by_name(items, "Deployment")["demo-identity-api-write"]["spec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    assert {
        "name": "CULTURE_POSTGRES_DSN",
        "valueFrom": {"secretKeyRef": {"name": "pg", "key": "url"}},
    } in env
    with pytest.raises(pydantic.ValidationError, match="topicPrefix"):
        parse_spec({"kafka": {"topicPrefix": "no-dot"}})


def test_each_database_has_one_set_of_connection_keys_in_the_crd_the_secrets_and_the_services() -> None:
    """The keys the services' pods read from a database's Secret (DATABASE_ENV) are the keys the
    CRD's description of that database names and the keys the managed Secret holds beside the
    credentials: an external Secret made after the description works, and no key is read that the
    operator does not write."""
    import base64

    from culture_operator.spec import CONNECTION_KEYS, DATABASES

    props = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["databases"]["properties"]
    for db in DATABASES:
        read = {key for key, _ in b.DATABASE_ENV[db]}
        assert read == set(CONNECTION_KEYS[db]), db
        secret = b.build_database_secret(OWNER, db, "pw")
        internal = {"keyfile"} if db == "mongo" else set()  # the replica set's key, read by mongod only
        assert set(secret["data"]) == {"username", "password", *internal, *CONNECTION_KEYS[db]}, db
        for key in CONNECTION_KEYS[db]:
            assert f"`{key}`" in props[db]["description"], db
    cassandra = b.build_database_secret(OWNER, "cassandra", "pw")["data"]
    assert base64.b64decode(cassandra["contactPoints"]).decode() == "demo-cassandra.ns1.svc"
    assert base64.b64decode(cassandra["port"]).decode() == "9042"
    assert "url" not in cassandra


def test_topics_that_feed_read_models_keep_their_events() -> None:
    """The sources of `culture replay` keep every event (infinite retention, not compaction: keyed by
    aggregate, compaction would drop all but a follower's newest follow); others keep the defaults;
    an explicit override still wins."""
    override = {"catalog.review-created": {"config": {"retention.ms": "1"}}}
    defaults = {"config": {"retention.ms": "604800000"}}
    spec = parse_spec({"kafka": {"topics": defaults, "topicOverrides": override}})
    topics = {t.event: t.config for t in b.wanted_topics(spec)}
    for source in ("identity.user-registered", "graph.follow-created", "graph.follow-removed",
                   "catalog.review-updated", "catalog.review-deleted"):
        assert topics[source] == {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
    assert topics["catalog.review-created"]["retention.ms"] == "1"
    assert topics["feed.feed-created"] == {"retention.ms": "604800000"}


def test_plan_topics_never_shrinks() -> None:
    wanted = b.wanted_topics(parse_spec({"kafka": {"topics": {"partitions": 4}}}))
    plan = b.plan_topics(wanted, {wanted[0].name: 2, wanted[1].name: 4, wanted[2].name: 8})
    assert {t.name for t in plan.create} == {t.name for t in wanted[3:]}
    assert plan.grow == {wanted[0].name: 4}
    assert plan.refused == {wanted[2].name: (8, 4)}


def test_compare_ignores_server_defaults_and_quantity_spelling() -> None:
    want = {
        "spec": {"replicas": 2, "template": {"c": [{"resources": {"limits": {"cpu": "1000m"}}}]}},
        "metadata": {"labels": {"a": "b"}},
    }
    have = {
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 600,
            "template": {"c": [{"resources": {"limits": {"cpu": "1"}}, "x": 1}]},
        },
        "metadata": {"labels": {"a": "b", "extra": "y"}},
    }
    assert not needs_apply(want, have)
    have["spec"]["replicas"] = 5
    assert needs_apply(want, have)
    assert needs_apply(want, None)
    assert contains({"emptyDir": {}}, {"emptyDir": {}})
    assert contains({"emptyDir": {}}, {"emptyDir": {}, "name": "tmp"})
    # zero values of omitempty fields read back absent; a non-zero value that is missing is drift
    assert contains({"probe": {"initialDelaySeconds": 0, "periodSeconds": 10}},
                    {"probe": {"periodSeconds": 10}})
    assert not contains({"probe": {"initialDelaySeconds": 2}}, {"probe": {}})


def test_children_are_stable_for_the_same_input() -> None:
    assert children({"image": "x:1"}) == children({"image": "x:1"})


def _dep(ready: int, want: int = 1, gen: int = 1, observed: int = 1) -> dict:
    return {
        "metadata": {"generation": gen},
        "spec": {"replicas": want},
        "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": ready},
    }


def test_status_conditions_and_transition_times() -> None:
    ok = st.Check(True, "Fine", "fine")
    services_waiting = st.check_services({"a": _dep(0), "b": _dep(1)})
    assert not services_waiting.ok and "a" in services_waiting.message
    s1 = st.compute_status(None, 3, ok, ok, services_waiting, now="T1")
    conds = {c["type"]: c for c in s1["conditions"]}
    assert s1["observedGeneration"] == 3 and s1["phase"] == "Progressing"
    assert conds["Ready"]["status"] == "False" and conds["ServicesReady"]["reason"] == "DeploymentsNotReady"
    s2 = st.compute_status(
        s1, 3, ok, ok, st.check_services({"a": _dep(0, gen=2, observed=1), "b": _dep(1)}), now="T2"
    )
    assert {c["type"]: c for c in s2["conditions"]}["Ready"]["lastTransitionTime"] == "T1"
    s3 = st.compute_status(s2, 4, ok, ok, st.check_services({"a": _dep(1), "b": _dep(1)}), now="T3")
    c3 = {c["type"]: c for c in s3["conditions"]}
    assert (
        s3["phase"] == "Ready"
        and c3["Ready"]["status"] == "True"
        and c3["Ready"]["lastTransitionTime"] == "T3"
    )
    assert c3["KafkaReady"]["lastTransitionTime"] == "T1"
    assert st.status_changes(s3, s3) == {}
    assert [c["type"] for c in st.flipped(s2, s3)] == ["Ready", "ServicesReady"]


def test_a_refused_child_makes_ready_false_and_holds_the_observed_generation() -> None:
    ok = st.Check(True, "Fine", "fine")
    applied = st.compute_status(None, 3, ok, ok, ok, now="T1")
    assert applied["observedGeneration"] == 3 and applied["phase"] == "Ready"
    refused = st.compute_status(applied, 4, ok, ok, ok, now="T2",
                                apply_errors=["Deployment/p-feed-api-read: admission webhook denied it"])
    ready = {c["type"]: c for c in refused["conditions"]}["Ready"]
    assert refused["observedGeneration"] == 3  # generation 4 is not what runs
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed") and "denied it" in ready["message"]
    assert refused["phase"] == "Failed"
    again = st.compute_status(refused, 4, ok, ok, ok, now="T3")
    assert again["observedGeneration"] == 4 and again["phase"] == "Ready"


def test_kafka_checks() -> None:
    refused = st.check_external(st.ExternalKafkaOutcome(reachable=True, refused={"t": (8, 4)}))
    assert refused.reason == "PartitionShrinkRefused" and "t has 8 partitions, spec asks 4" in refused.message
    assert (
        st.check_external(st.ExternalKafkaOutcome(reachable=False, error="boom")).reason == "KafkaUnreachable"
    )
    assert st.check_strimzi(None, {}, strimzi_installed=False).reason == "StrimziNotInstalled"
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert st.check_strimzi(ready, {"t1": ready, "t2": None}).reason == "TopicsNotReady"
    assert st.check_strimzi(ready, {"t1": ready}).ok


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "culture_operator", "--help"], capture_output=True, text=True, check=True
    )
    assert "--standalone" in out.stdout and "--peering" in out.stdout


def test_pure_modules_do_no_io() -> None:
    """The builders, status arithmetic, compare, spec and CRD modules import neither kopf nor API clients."""
    import ast
    from pathlib import Path

    pkg = Path(crd.__file__).parent
    pure = [pkg / f"{name}.py" for name in ("status", "compare", "spec", "crd")]
    for path in [*sorted((pkg / "builders").glob("*.py")), *pure]:
        name = path.relative_to(pkg)
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {
            m
            for m in imported
            if m.split(".")[0] in ("kopf", "aiokafka", "urllib3", "requests")
            or m.startswith(("kubernetes.client", "kubernetes.config", "culture_operator.kube"))
        }
        assert not bad, f"{name}.py imports {bad}"


@pytest.mark.parametrize(("argv", "namespaces", "clusterwide"), [
    ([], (), True),
    (["--all-namespaces"], (), True),
    (["-n", "a", "--namespace", "b"], ["a", "b"], False),
])
def test_the_command_line_scopes_kopf_as_it_expects(
        monkeypatch: pytest.MonkeyPatch, argv: list[str], namespaces: object, clusterwide: bool) -> None:
    """kopf needs a collection of namespaces (None crashed the cluster-wide operator at start-up)."""
    import kopf
    from kopf._cogs.structs import references

    from culture_operator.__main__ import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(kopf, "run", lambda **kw: seen.update(kw))
    monkeypatch.setattr(kopf, "configure", lambda **kw: None)
    assert main(argv) == 0
    assert seen["namespaces"] == namespaces and seen["clusterwide"] is clusterwide
    references.select_specific_namespaces(seen["namespaces"])  # what kopf does first with them


def test_managed_databases_answer_queries_fit_a_laptop_and_keep_their_data_as_deleteclaim_says() -> None:
    """The managed databases' pods: readiness is a query (the image's own client, or `culture-db ready`
    where the local image has it), JVM heaps are small, MongoDB is the one member of a replica set
    with its key copied for mongod; deleteClaim false keeps the volume and the credentials (no owner),
    true deletes both with the platform."""
    import base64

    items = children({"databases": {db: {"mode": "managed"} for db in ("postgres", "mongo", "cassandra",
                                                                      "neo4j", "redis")}})
    sets = by_name(items, "StatefulSet")
    for db in ("postgres", "mongo", "cassandra", "neo4j", "redis"):
        sts = sets[f"demo-{db}"]
        c = sts["spec"]["template"]["spec"]["containers"][0]
        probe = c["readinessProbe"]["exec"]["command"]
        assert probe[:2] == ["sh", "-c"] and ("culture-db ready" in probe[2]) is (db in b.DRIVER_READY), db
        assert b.DATABASE_IMAGES[db].ready and probe[2].endswith(b.DATABASE_IMAGES[db].ready), db
        assert {"name": "CULTURE_DATABASE", "value": db} in c["env"], db
        assert c["startupProbe"]["tcpSocket"] == {"port": db}, db
        assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain", db
        secret = by_name(items, "Secret")[f"demo-{db}-credentials"]
        assert "ownerReferences" not in secret["metadata"], db

    def env_of(db: str) -> dict[str, str | None]:
        container = sets[f"demo-{db}"]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    env = env_of("cassandra")
    assert (env["MAX_HEAP_SIZE"], env["HEAP_NEWSIZE"]) == ("512M", "128M")
    env = env_of("neo4j")
    assert env["NEO4J_server_memory_heap_max__size"] == "512m"
    mongo = sets["demo-mongo"]["spec"]["template"]["spec"]
    args = mongo["containers"][0]["args"]
    assert args[args.index("--replSet") + 1] == "rs0" and "--keyFile" in args
    assert mongo["initContainers"][0]["name"] == "keyfile"
    url = base64.b64decode(by_name(items, "Secret")["demo-mongo-credentials"]["data"]["url"]).decode()
    assert url.endswith("?authSource=admin&directConnection=true")
    assert b.mongo_keyfile("pw") == b.mongo_keyfile("pw") != b.mongo_keyfile("other")

    gone = children({"databases": {"postgres": {"mode": "managed", "deleteClaim": True}}})
    assert by_name(gone, "StatefulSet")["demo-postgres"]["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete", "whenScaled": "Retain"}
    secret = by_name(gone, "Secret")["demo-postgres-credentials"]
    assert secret["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert secret["metadata"]["annotations"][b.DELETE_WITH_PLATFORM] == "true"
