"""Against Strimzi 1.2.0's REAL CRDs (generated from its API model, see culture_stack.cluster.strimzi_crds):
every example and every spec the e2e tests use, with all the children the operator builds for it, passes
strict server-side validation; and every spec the CulturePlatform CRD accepts is one Strimzi and Kafka
can run: the API server refuses the others, naming the field and the rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Kubectl, Operator, install_crds
from test_operator_e2e import children, platform, small_spec

from culture_events.testing import wait_until_sync
from culture_operator import builders as b
from culture_operator.spec import EVENT_TOPICS, parse_spec

pytestmark = pytest.mark.e2e

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
STRIMZI_KINDS = "kafkas.kafka.strimzi.io,kafkanodepools.kafka.strimzi.io,kafkatopics.kafka.strimzi.io"


@pytest.fixture(autouse=True)
def these_crds(k: Kubectl, strimzi_crd_files: list[Path]) -> None:
    """This checkout's CRDs again before each test: the control plane is shared with other checkouts,
    whose tests apply their own versions of the same CRDs."""
    install_crds(k, strimzi_crd_files)


def strimzi_spec(prefix: str, **kafka: Any) -> dict[str, Any]:
    """The small platform of test_operator_e2e with a Strimzi Kafka."""
    spec = small_spec(prefix)
    spec["kafka"] = {"mode": "strimzi", "topicPrefix": f"{prefix}.", **kafka}
    return spec


def dry_run(k: Kubectl, obj: dict[str, Any]) -> Any:
    """Strict server-side validation of one object (unknown fields are errors), nothing stored."""
    return k.run("apply", "--dry-run=server", "--validate=strict", "--server-side", "--force-conflicts",
                 "--field-manager=check", "-f", "-", stdin=json.dumps(obj), check=False)


def assert_valid(k: Kubectl, obj: dict[str, Any]) -> None:
    proc = dry_run(k, obj)
    assert proc.returncode == 0, f"{obj['kind']} {obj['metadata'].get('name')} refused: {proc.stderr}"
    assert "Warning" not in proc.stderr, proc.stderr  # e.g. an unknown field reported, not refused


def assert_all_valid(k: Kubectl, objs: list[dict[str, Any]]) -> None:
    """assert_valid of many objects in one kubectl call (a List; kubectl names each refused item)."""
    assert_valid(k, {"apiVersion": "v1", "kind": "List", "metadata": {"name": f"{len(objs)} objects"},
                     "items": objs})


def assert_refused(proc: Any, field: str, words: str) -> None:
    assert proc.returncode != 0, f"accepted, should be refused at {field}"
    assert field in proc.stderr and words in proc.stderr, proc.stderr


def every_child(name: str, namespace: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """What the operator's pure builders make of a spec (the reconcile applies exactly these)."""
    parsed = parse_spec(spec)
    return b.build_children(b.Owner(name, namespace, "00000000-0000-0000-0000-000000000001"), parsed,
                            dict.fromkeys(b.managed_databases(parsed), "pw"),
                            b.SigningKey.from_seed(bytes(32)), client_address_key="x")


def test_the_installed_strimzi_crds_are_strimzis_own(k: Kubectl, strimzi_crd_files: list[Path]) -> None:
    kafka = k.json("crd", "kafkas.kafka.strimzi.io")
    assert kafka["metadata"]["labels"] == {"app": "strimzi", "strimzi.io/crd-install": "true"}
    assert [v["name"] for v in kafka["spec"]["versions"]] == ["v1"]
    listener = kafka["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "kafka"]["properties"]["listeners"]["items"]
    assert listener["properties"]["name"]["pattern"] == "^[a-z0-9]{1,11}$"  # detail a fixture would lack
    assert len(strimzi_crd_files) == 5 and all(p.stat().st_size > 1000 for p in strimzi_crd_files)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_and_all_its_children_validate_strictly(k: Kubectl, namespace: str,
                                                              example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    doc["metadata"]["namespace"] = namespace
    assert_valid(k, doc)
    kids = every_child(doc["metadata"]["name"], namespace, doc["spec"])
    if doc["spec"]["kafka"].get("mode", "strimzi") == "strimzi":
        assert {"Kafka", "KafkaNodePool", "KafkaTopic"} <= {c["kind"] for c in kids}
    assert_all_valid(k, kids)


def test_every_spec_the_e2e_tests_use_validates_with_its_children(k: Kubectl, namespace: str,
                                                                   unique: str) -> None:
    p5 = small_spec(unique)  # test_strimzi_children_validate_against_the_strimzi_schema's
    p5["kafka"] = {"mode": "strimzi", "strimzi": {"replicas": 3}, "topicOverrides": {
        "feed.feed-created": {"partitions": 8, "config": {"retention.ms": "1000"}}}}
    # every field of kafka.strimzi set, so each part of the Kafka and the node pool is checked
    big = strimzi_spec(unique, strimzi={"replicas": 3, "version": "4.3.1", "metadataVersion": "4.3-IV0",
                                        "storage": "50Gi", "deleteClaim": True,
                                        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                                                      "limits": {"cpu": "2", "memory": "2Gi"}}},
                       topics={"replicas": 3, "config": {"min.insync.replicas": "2"}},
                       topicOverrides={"chat.message-sent": {"replicas": 1}})
    specs = {"small": small_spec(unique), "p5": p5, "big": big}
    specs["big"]["kafka"]["topicOverrides"]["chat.message-sent"]["config"] = {"min.insync.replicas": "1"}
    for name, spec in specs.items():
        assert_all_valid(k, [platform(name, namespace, spec), *every_child(name, namespace, spec)])


def test_a_long_name_in_strimzi_mode_is_refused(k: Kubectl, namespace: str, unique: str) -> None:
    """Strimzi names broker pods <cluster>-<pool>-<id> = <name>-kafka-<name>-dual-role-<id>: a DNS label."""
    limit = b.strimzi_max_name_length()
    longest, too_long = "a" * limit, "a" * (limit + 1)
    assert len(b.broker_pod_name(b.Owner(longest, namespace, ""), 99)) <= 63
    assert_valid(k, platform(longest, namespace, strimzi_spec(unique)))
    proc = dry_run(k, platform(too_long, namespace, strimzi_spec(unique)))
    assert_refused(proc, "CulturePlatform", f"metadata.name must be at most {limit} characters when "
                   "spec.kafka.mode is strimzi")
    # the default mode is strimzi: a spec without kafka is refused the same way
    assert_refused(dry_run(k, platform(too_long, namespace, {})), "CulturePlatform",
                   "spec.kafka.mode is strimzi")
    # an external Kafka has no broker pods: the 40 characters of the other children apply
    assert_valid(k, platform("a" * 40, namespace, small_spec(unique)))


def test_topic_replicas_beyond_the_brokers_are_refused(k: Kubectl, namespace: str, unique: str) -> None:
    proc = dry_run(k, platform("r1", namespace, strimzi_spec(unique, topics={"replicas": 3})))
    assert_refused(proc, "spec.kafka.topics.replicas", "must not exceed strimzi.replicas")
    proc = dry_run(k, platform("r2", namespace, strimzi_spec(
        unique, strimzi={"replicas": 3}, topics={"replicas": 3},
        topicOverrides={"chat.message-sent": {"replicas": 5}})))
    assert_refused(proc, "spec.kafka.topicOverrides", "must not exceed strimzi.replicas")
    assert_valid(k, platform("r3", namespace, strimzi_spec(unique, strimzi={"replicas": 3},
                                                           topics={"replicas": 3})))


def test_min_insync_beyond_the_replicas_is_refused(k: Kubectl, namespace: str, unique: str) -> None:
    proc = dry_run(k, platform("m1", namespace, strimzi_spec(
        unique, strimzi={"replicas": 3}, topics={"replicas": 1, "config": {"min.insync.replicas": "2"}})))
    assert_refused(proc, "spec.kafka.topics.config", "min.insync.replicas must be a whole number from 1 to")
    # an override with fewer replicas inherits the default min.insync.replicas
    proc = dry_run(k, platform("m2", namespace, strimzi_spec(
        unique, strimzi={"replicas": 3}, topics={"replicas": 3, "config": {"min.insync.replicas": "2"}},
        topicOverrides={"feed.feed-created": {"replicas": 1}})))
    assert_refused(proc, "spec.kafka.topicOverrides", "min.insync.replicas must be a whole number from 1 to")
    proc = dry_run(k, platform("m3", namespace, small_spec(unique, kafka={
        "mode": "external", "bootstrapServers": ["k:9092"],
        "topics": {"config": {"min.insync.replicas": "x"}}})))
    assert_refused(proc, "spec.kafka.topics.config", "min.insync.replicas")


def test_one_replica_topics_on_three_brokers_accept_acks_all(
    k: Kubectl, namespace: str, operator: Operator, unique: str
) -> None:
    """3 brokers make the brokers' default min.insync.replicas 2: each 1-replica KafkaTopic the operator
    writes must say min.insync.replicas 1 (else every acks=all produce to it fails)."""
    k.run("create", "secret", "generic", "cassandra-conn", "-n", namespace, "--from-literal=url=cassandra://db")
    spec = strimzi_spec(unique, strimzi={"replicas": 3}, topics={"replicas": 1},
                        topicOverrides={"chat.message-sent": {"replicas": 3}})
    k.apply(platform("i1", namespace, spec))
    got = wait_until_sync(
        lambda: (c := children(k, namespace, "i1", STRIMZI_KINDS)) and len(c) == 2 + len(EVENT_TOPICS) and c,
        60, "the Strimzi children")
    broker_default = got[("Kafka", "i1-kafka")]["spec"]["kafka"]["config"]["min.insync.replicas"]
    assert broker_default == 2
    topics = {o["spec"]["topicName"]: o["spec"] for (kind, _), o in got.items() if kind == "KafkaTopic"}
    for name, t in topics.items():
        own = (t.get("config") or {}).get("min.insync.replicas")
        assert own is not None, f"{name}: {t['replicas']} replica(s), brokers' min.insync.replicas 2"
        assert 1 <= int(own) <= t["replicas"], (name, t)
    assert topics[f"{unique}.chat.message-sent"]["config"]["min.insync.replicas"] == "2"
    assert_all_valid(k, [{"apiVersion": o["apiVersion"], "kind": o["kind"],
                          "metadata": {"name": o["metadata"]["name"], "namespace": namespace},
                          "spec": o["spec"]} for o in got.values()])


def test_topic_prefix_and_topic_replicas_are_immutable(k: Kubectl, namespace: str, unique: str) -> None:
    spec = strimzi_spec(unique, strimzi={"replicas": 3}, topics={"replicas": 2})
    k.apply(platform("u1", namespace, spec))

    def update(change: dict[str, Any]) -> Any:
        return k.run("patch", "cp", "u1", "-n", namespace, "--type=merge", "-p",
                     json.dumps({"spec": {"kafka": change}}), check=False)

    assert_refused(update({"topicPrefix": f"{unique}x."}), "spec.kafka.topicPrefix",
                   "topicPrefix cannot change")
    assert_refused(update({"topics": {"replicas": 3}}), "spec.kafka.topics.replicas",
                   "topic replicas cannot change")
    assert_refused(update({"topicOverrides": {"graph.follow-created": {"replicas": 1}}}),
                   "spec.kafka.topics.replicas", "topic replicas cannot change")
    # fewer brokers than the topics' replicas: refused on update too
    assert_refused(update({"strimzi": {"replicas": 1}}), "spec.kafka.topics.replicas",
                   "must not exceed strimzi.replicas")
    # what keeps every topic's replicas is fine: an override with the same replicas, more partitions
    ok = update({"topicOverrides": {"graph.follow-created": {"replicas": 2, "partitions": 6}}})
    assert ok.returncode == 0, ok.stderr
    stored = k.json("cp", "u1", "-n", namespace)["spec"]["kafka"]
    assert stored["topicPrefix"] == f"{unique}." and stored["topics"]["replicas"] == 2
    override = stored["topicOverrides"]["graph.follow-created"]
    assert (override["replicas"], override["partitions"]) == (2, 6)


def test_metadata_version_in_the_form_strimzi_reports(k: Kubectl, namespace: str, unique: str) -> None:
    cases = {
        "4.3": "should match",  # the short form Strimzi does not report
        "4.3-iv0": "should match",
    }
    for value, words in cases.items():
        proc = dry_run(k, platform("v1", namespace, strimzi_spec(unique, strimzi={"metadataVersion": value})))
        assert_refused(proc, "spec.kafka.strimzi.metadataVersion", words)
    proc = dry_run(k, platform("v2", namespace, strimzi_spec(
        unique, strimzi={"version": "4.2.1", "metadataVersion": "4.3-IV0"})))
    assert_refused(proc, "spec.kafka.strimzi.metadataVersion", "must not be newer than the Kafka version")
    proc = dry_run(k, platform("v3", namespace, strimzi_spec(unique, strimzi={"metadataVersion": "3.3-IV2"})))
    assert_refused(proc, "spec.kafka.strimzi.metadataVersion", "at least 3.3-IV3")
    proc = dry_run(k, platform("v4", namespace, strimzi_spec(unique, strimzi={"version": "3.9.0"})))
    assert_refused(proc, "spec.kafka.strimzi.version", "Unsupported value")
    stored = copy.deepcopy(strimzi_spec(unique, strimzi={"version": "4.3.1", "metadataVersion": "4.2-IV1"}))
    assert_valid(k, platform("v5", namespace, stored))
    default = k.run("apply", "-f", "-", stdin=json.dumps(platform("v6", namespace, strimzi_spec(unique))))
    assert default.returncode == 0
    assert k.json("cp", "v6", "-n", namespace)["spec"]["kafka"]["strimzi"]["metadataVersion"] == "4.3-IV0"
