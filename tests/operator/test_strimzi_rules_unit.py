"""The rules that keep every accepted spec runnable by Strimzi and Kafka (their pydantic side, the CRD's
CEL text, the derived names); tests/operator/test_strimzi_real_crds.py proves the CEL on the API server."""

from __future__ import annotations

import re

import pydantic
import pytest

from culture_operator import builders as b
from culture_operator import crd
from culture_operator.spec import EVENT_TOPICS, MIN_INSYNC_MESSAGE, STRIMZI_KAFKA_VERSIONS, parse_spec

pytestmark = pytest.mark.unit


def topics_of(raw: dict, name: str = "demo") -> dict[str, dict]:
    spec = parse_spec(raw)
    owner = b.Owner(name, "ns", "uid")
    return {t["spec"]["topicName"]: t["spec"] for t in b.build_children(
        owner, spec, dict.fromkeys(b.managed_databases(spec), "pw")) if t["kind"] == "KafkaTopic"}


def test_every_accepted_name_gives_broker_pods_within_a_dns_label() -> None:
    limit = b.strimzi_max_name_length()
    assert limit == 21
    for n in range(1, limit + 1):
        owner = b.Owner("a" * n, "ns", "uid")
        assert len(b.broker_pod_name(owner, 99)) <= 63
        b.check_name(owner, parse_spec({}))
    too_long = b.Owner("a" * (limit + 1), "ns", "uid")
    assert len(b.broker_pod_name(too_long, 99)) > 63
    with pytest.raises(ValueError, match=re.escape("at most 21 characters when spec.kafka.mode is strimzi")):
        b.check_name(too_long, parse_spec({}))
    # external mode: no broker pods, the CRD's 40 characters apply
    b.check_name(b.Owner("a" * 40, "ns", "uid"),
                 parse_spec({"kafka": {"mode": "external", "bootstrapServers": ["k:9092"]}}))
    rules = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert any("size(self.metadata.name) <= 21" in r["rule"] and "'strimzi'" in r["rule"] for r in rules)


def test_topic_replicas_within_brokers_in_strimzi_mode() -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape("topics.replicas 3 exceeds")):
        parse_spec({"kafka": {"topics": {"replicas": 3}}})
    with pytest.raises(pydantic.ValidationError, match=re.escape("chat.message-sent.replicas 4 exceeds")):
        parse_spec({"kafka": {"strimzi": {"replicas": 3}, "topics": {"replicas": 3},
                              "topicOverrides": {"chat.message-sent": {"replicas": 4}}}})
    parse_spec({"kafka": {"strimzi": {"replicas": 3}, "topics": {"replicas": 3}}})
    # an external Kafka's size is not known here
    parse_spec({"kafka": {"mode": "external", "bootstrapServers": ["k:9092"], "topics": {"replicas": 3}}})


def test_min_insync_within_replicas() -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(MIN_INSYNC_MESSAGE)):
        parse_spec({"kafka": {"topics": {"config": {"min.insync.replicas": "2"}}}})
    with pytest.raises(pydantic.ValidationError, match=re.escape(MIN_INSYNC_MESSAGE)):
        parse_spec({"kafka": {"topics": {"config": {"min.insync.replicas": "two"}}}})
    # an override with fewer replicas inherits the default's min.insync.replicas: refused too
    with pytest.raises(pydantic.ValidationError, match=re.escape("topicOverrides.feed.feed-created")):
        parse_spec({"kafka": {"strimzi": {"replicas": 3},
                              "topics": {"replicas": 3, "config": {"min.insync.replicas": "2"}},
                              "topicOverrides": {"feed.feed-created": {"replicas": 1}}}})
    parse_spec({"kafka": {"strimzi": {"replicas": 3},
                          "topics": {"replicas": 3, "config": {"min.insync.replicas": "2"}},
                          "topicOverrides": {"feed.feed-created": {"replicas": 1,
                                                                   "config": {"min.insync.replicas": "1"}}}}})


def test_each_kafka_topic_states_a_min_insync_its_replicas_can_meet() -> None:
    """3 brokers make the brokers' default min.insync.replicas 2: a 1-replica topic says 1."""
    topics = topics_of({"kafka": {"strimzi": {"replicas": 3},
                                  "topicOverrides": {"chat.message-sent": {"replicas": 3},
                                                     "feed.feed-created": {"replicas": 2}}}})
    assert len(topics) == len(EVENT_TOPICS)
    for name, t in topics.items():
        assert 1 <= int(t["config"]["min.insync.replicas"]) <= t["replicas"], name
    assert topics["chat.message-sent"]["config"]["min.insync.replicas"] == "2"
    assert topics["feed.feed-created"]["config"]["min.insync.replicas"] == "1"
    assert topics["graph.follow-created"]["config"]["min.insync.replicas"] == "1"
    # the user's own value wins
    mine = topics_of({"kafka": {"strimzi": {"replicas": 3}, "topics": {
        "replicas": 3, "config": {"min.insync.replicas": "3"}}}})
    assert {t["config"]["min.insync.replicas"] for t in mine.values()} == {"3"}


def test_metadata_version_in_strimzis_form() -> None:
    assert parse_spec({}).kafka.strimzi.metadataVersion == "4.3-IV0"
    # a platform stored before the pattern existed has the short form (the old default): read as Strimzi does
    old = parse_spec({"kafka": {"strimzi": {"metadataVersion": "4.3"}}})
    assert old.kafka.strimzi.metadataVersion == "4.3-IV0"
    for bad in ("4.1", "4.3-iv0", "IV0", "4.3-IV"):
        with pytest.raises(pydantic.ValidationError, match="metadataVersion"):
            parse_spec({"kafka": {"strimzi": {"metadataVersion": bad}}})
    with pytest.raises(pydantic.ValidationError, match="newer than the Kafka version"):
        parse_spec({"kafka": {"strimzi": {"version": "4.2.1", "metadataVersion": "4.3-IV0"}}})
    with pytest.raises(pydantic.ValidationError, match=re.escape("older than 3.3-IV3")):
        parse_spec({"kafka": {"strimzi": {"metadataVersion": "3.3-IV2"}}})
    parse_spec({"kafka": {"strimzi": {"version": "4.3.1", "metadataVersion": "4.2-IV1"}}})
    with pytest.raises(pydantic.ValidationError, match="version"):
        parse_spec({"kafka": {"strimzi": {"version": "3.9.0"}}})
    assert STRIMZI_KAFKA_VERSIONS[-1] == parse_spec({}).kafka.strimzi.version


def test_immutable_fields_have_transition_rules() -> None:
    kafka = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["kafka"]
    prefix_rules = kafka["properties"]["topicPrefix"]["x-kubernetes-validations"]
    assert [r["rule"] for r in prefix_rules] == ["self == oldSelf"]
    transition = [r for r in kafka["x-kubernetes-validations"] if "oldSelf" in r["rule"]]
    assert len(transition) == 1 and "topic replicas cannot change" in transition[0]["message"]
    assert all(f"'{t}'" in transition[0]["rule"] for t in EVENT_TOPICS)


async def test_the_operator_says_ready_false_naming_the_field_for_what_the_crd_would_refuse() -> None:
    """An object stored before a rule existed reaches the operator: Ready=False InvalidSpec naming the
    field and the rule, and no child is applied."""
    from test_operator_reconcile_fake import FakeKube

    from culture_operator import reconcile as rc

    cases = {
        "a" * 22: ({}, "metadata.name must be at most 21 characters when spec.kafka.mode is strimzi"),
        "demo": ({"kafka": {"topics": {"replicas": 3}}}, "topics.replicas 3 exceeds strimzi.replicas 1"),
        "demo2": ({"kafka": {"strimzi": {"replicas": 3}, "topics": {"replicas": 1, "config": {
            "min.insync.replicas": "2"}}}}, "min.insync.replicas must be a whole number from 1 to"),
    }
    for name, (spec, words) in cases.items():
        kube = FakeKube(strimzi=True)
        body = {"metadata": {"name": name, "namespace": "ns", "uid": "u", "generation": 1}, "spec": spec}
        status = await rc.reconcile(kube, body)  # type: ignore[arg-type]
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), ready
        assert words in ready["message"], ready["message"]
        assert not kube.objects
