"""Strimzi's resources: the KRaft Kafka, its node pool, one KafkaTopic per event topic."""

from __future__ import annotations

from typing import Any

from culture_operator.builders.names import (
    Owner,
    _meta,
    kafka_client_selector,
    kafka_cluster_name,
    node_pool_name,
)
from culture_operator.builders.pods import _resources
from culture_operator.builders.topics import TopicWanted
from culture_operator.spec import MIN_INSYNC, CulturePlatformSpec

#: The one place the Strimzi API version lives (Strimzi 1.x serves kafka.strimzi.io/v1 only).
STRIMZI_API_VERSION = "kafka.strimzi.io/v1"


STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"


KAFKA_PLAIN_PORT = 9092


def build_kafka(owner: Owner, spec: CulturePlatformSpec) -> dict[str, Any]:
    """The KRaft Kafka (no replicas/storage here: node pools declare them), with the topic operator."""
    st = spec.kafka.strimzi
    rf = min(3, st.replicas)
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "Kafka",
        "metadata": _meta(owner, kafka_cluster_name(owner), "kafka", "kafka"),
        "spec": {
            "kafka": {
                "version": st.version,
                "metadataVersion": st.metadataVersion,
                # Strimzi turns networkPolicyPeers into the listeners' NetworkPolicies: only the
                # platform's workers and relays (network.py) may reach the brokers
                "listeners": [
                    {"name": "plain", "port": KAFKA_PLAIN_PORT, "type": "internal", "tls": False,
                     "networkPolicyPeers": [kafka_client_selector(owner)]},
                    {"name": "tls", "port": 9093, "type": "internal", "tls": True,
                     "networkPolicyPeers": [kafka_client_selector(owner)]},
                ],
                "config": {
                    "offsets.topic.replication.factor": rf,
                    "transaction.state.log.replication.factor": rf,
                    "transaction.state.log.min.isr": max(1, rf - 1),
                    "default.replication.factor": rf,
                    "min.insync.replicas": max(1, rf - 1),
                    "auto.create.topics.enable": False,
                },
            },
            # KafkaTopics are only reconciled when the topic operator runs
            "entityOperator": {"topicOperator": {}},
        },
    }


def build_node_pool(owner: Owner, spec: CulturePlatformSpec) -> dict[str, Any]:
    """The dual-role (controller + broker) KafkaNodePool bound to the Kafka by strimzi.io/cluster."""
    st = spec.kafka.strimzi
    meta = _meta(owner, node_pool_name(owner), "kafka", "kafka-node-pool")
    meta["labels"][STRIMZI_CLUSTER_LABEL] = kafka_cluster_name(owner)
    pool: dict[str, Any] = {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": meta,
        "spec": {
            "replicas": st.replicas,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": st.storage,
                        "deleteClaim": st.deleteClaim,
                        "kraftMetadata": "shared",
                    }
                ],
            },
        },
    }
    resources = _resources(st.resources)
    if resources:
        pool["spec"]["resources"] = resources
    return pool


def kafka_topic_resource_name(owner: Owner, topic: TopicWanted) -> str:
    """KafkaTopic object name: owner-prefixed (several platforms per namespace), DNS-safe."""
    return f"{owner.name}-{topic.event}".lower()


def build_kafka_topic(owner: Owner, topic: TopicWanted) -> dict[str, Any]:
    """One KafkaTopic for the Strimzi topic operator."""
    meta = _meta(owner, kafka_topic_resource_name(owner, topic), "kafka", "kafka-topic")
    meta["labels"][STRIMZI_CLUSTER_LABEL] = kafka_cluster_name(owner)
    body: dict[str, Any] = {
        "topicName": topic.name,
        "partitions": topic.partitions,
        "replicas": topic.replicas,
    }
    # The brokers' default min.insync.replicas follows the cluster's size (build_kafka): a topic with
    # fewer replicas than that would refuse every acks=all produce, so each topic says its own.
    body["config"] = {MIN_INSYNC: str(max(1, topic.replicas - 1)), **topic.config}
    return {"apiVersion": STRIMZI_API_VERSION, "kind": "KafkaTopic", "metadata": meta, "spec": body}
