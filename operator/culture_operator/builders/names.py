"""Names, labels and metadata of the children: one place for the `app.kubernetes.io/*` labels and the
selector built from them."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from culture_operator.spec import GROUP, KIND, VERSION, CulturePlatformSpec

MANAGER = "culture-operator"


PART_OF = "culture-platform"


LABEL_NAME = "app.kubernetes.io/name"


LABEL_INSTANCE = "app.kubernetes.io/instance"


LABEL_COMPONENT = "app.kubernetes.io/component"


LABEL_PART_OF = "app.kubernetes.io/part-of"


LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"


LABEL_VERSION = "app.kubernetes.io/version"


def owner_selector(platform: str) -> str:
    """The label selector of every child of one CulturePlatform (used for listing and pruning)."""
    return f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_INSTANCE}={platform}"


@dataclasses.dataclass(frozen=True)
class Owner:
    """The CulturePlatform object the children belong to."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """The controller ownerReference every child carries (the GC deletes children with it)."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(owner: Owner, name: str, component: str) -> dict[str, str]:
    """The recommended `app.kubernetes.io/*` labels of one child."""
    return {
        LABEL_NAME: name,
        LABEL_INSTANCE: owner.name,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGER,
    }


def selector_labels(owner: Owner, name: str, component: str) -> dict[str, str]:
    """The labels that pick the pods of one child (a Deployment's or StatefulSet's selector, a Service's
    and a PodDisruptionBudget's): the stable subset of `labels` (no part-of, no managed-by)."""
    full = labels(owner, name, component)
    return {k: full[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)}


def _meta(owner: Owner, name: str, app: str, component: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, app, component),
        "ownerReferences": [owner.reference()],
    }
    meta.update(extra)
    return meta


#: the roles that talk to Kafka (consume or publish events)
KAFKA_CLIENT_ROLES = ("worker", "relay")


def kafka_client_selector(owner: Owner) -> dict[str, Any]:
    """The pods allowed on Kafka's listeners: this platform's workers and relays."""
    return {"podSelector": {"matchLabels": {LABEL_INSTANCE: owner.name, LABEL_MANAGED_BY: MANAGER},
                            "matchExpressions": [{"key": LABEL_COMPONENT, "operator": "In",
                                                  "values": list(KAFKA_CLIENT_ROLES)}]}}


def wiring_name(owner: Owner) -> str:
    """The ConfigMap every service pod reads its wiring from."""
    return f"{owner.name}-wiring"


def deployment_name(owner: Owner, service: str, role: str) -> str:
    """The Deployment (and Service, PDB) of one role of one service."""
    return f"{owner.name}-{service}-{role}"


def database_name(owner: Owner, db: str) -> str:
    """The StatefulSet and headless Service of a managed database."""
    return f"{owner.name}-{db}"


def credentials_secret_name(owner: Owner, db: str) -> str:
    """The generated credentials (and connection keys) of a managed database."""
    return f"{owner.name}-{db}-credentials"


def database_secret_name(owner: Owner, spec: CulturePlatformSpec, db: str) -> str:
    """The Secret holding a database's connection `url` (generated for managed, the user's for external)."""
    dbspec = spec.database(db)
    if dbspec.mode == "external" and dbspec.secretRef is not None:
        return dbspec.secretRef.name
    return credentials_secret_name(owner, db)


def kafka_cluster_name(owner: Owner) -> str:
    """The Strimzi Kafka (and the value of its strimzi.io/cluster label)."""
    return f"{owner.name}-kafka"


def node_pool_name(owner: Owner) -> str:
    """The dual-role KafkaNodePool (owner-prefixed: several platforms per namespace)."""
    return f"{owner.name}-dual-role"


#: Kubernetes' limit of a DNS label: a pod's name is its hostname, a label value has the same bound
DNS_LABEL_MAX = 63
#: digits kept for Strimzi's node ids in the broker pod names (a pool of at most 9 nodes uses ids 0-8;
#: one more digit leaves room for ids Strimzi moves past while scaling)
NODE_ID_DIGITS = 2


def broker_pod_name(owner: Owner, node_id: int) -> str:
    """The name (and hostname) Strimzi gives a broker pod: <cluster>-<pool>-<node id>."""
    return f"{kafka_cluster_name(owner)}-{node_pool_name(owner)}-{node_id}"


def strimzi_max_name_length() -> int:
    """The longest CulturePlatform name whose broker pods' names stay within a DNS label."""
    n = 1
    while len(broker_pod_name(Owner("x" * (n + 1), "", ""), 10**NODE_ID_DIGITS - 1)) <= DNS_LABEL_MAX:
        n += 1
    return n


def check_name(owner: Owner, spec: CulturePlatformSpec) -> None:
    """Raise ValueError when the platform's name makes a derived name too long (the CRD's rule, again)."""
    limit = strimzi_max_name_length()
    if spec.kafka.mode == "strimzi" and len(owner.name) > limit:
        raise ValueError(
            f"metadata.name must be at most {limit} characters when spec.kafka.mode is strimzi: broker pod "
            f"{broker_pod_name(owner, 0)} exceeds {DNS_LABEL_MAX} characters"
        )


def topic_name(spec: CulturePlatformSpec, topic: str) -> str:
    """The Kafka topic an event topic maps to (with the platform's prefix)."""
    return f"{spec.kafka.topicPrefix}{topic}"


def client_address_secret_name(owner: Owner) -> str:
    """The Secret with the key the gateway signs client addresses with and identity verifies them with."""
    return f"{owner.name}-client-address-key"


def signing_key_secret_name(owner: Owner) -> str:
    """The Secret with identity's token signing key (generated by the operator when absent)."""
    return f"{owner.name}-identity-signing-key"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
