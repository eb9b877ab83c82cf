"""Pure builders: a typed CulturePlatform spec in, the list of child manifests (dicts) out.

No I/O and no kopf here: everything the builders need that is not in the spec (the owner's uid,
the generated database passwords) is passed in, so the same input always gives the same output.
One module per kind of thing built: `names` (names, labels, the selector), `pods` (what every pod
shares), `environment` (the wiring ConfigMap, each service's env, identity's signing key),
`workloads` (the services' Deployments, Services, PDBs),
`network` (NetworkPolicies), `databases` (managed databases), `strimzi`
(Kafka, node pool, KafkaTopics), `topics` (the topics wanted, the plan for an external Kafka). This
module assembles them (`build_children`) and re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from culture_operator.builders.databases import (
    DATABASE_IMAGES,
    DELETE_WITH_PLATFORM,
    DRIVER_READY,
    DatabaseImage,
    build_database_secret,
    build_database_service,
    build_database_statefulset,
    database_url,
    mongo_keyfile,
)
from culture_operator.builders.environment import (
    CLIENT_ADDRESS_KEY,
    CLIENT_ADDRESS_SERVICES,
    DATABASE_ENV,
    GATEWAY_UPSTREAMS,
    GRPC_ENV_PREFIX,
    HTTP_PORT,
    IDENTITY_ROLE_KEYS,
    SERVICE_ENV_PREFIX,
    SIGNING_KEY_KEYS,
    TOPIC_PARTITIONS_SERVICES,
    WIRING_HASH,
    WORKER_SETTINGS_SERVICES,
    SigningKey,
    build_client_address_secret,
    build_signing_key_secret,
    build_wiring,
    consumer_group,
    kafka_bootstrap,
    platform_env,
    service_address,
    service_env,
    service_env_vars,
    topic_namespace,
    wiring_hash,
)
from culture_operator.builders.names import (
    KAFKA_CLIENT_ROLES,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_VERSION,
    MANAGER,
    PART_OF,
    Owner,
    broker_pod_name,
    check_name,
    client_address_secret_name,
    credentials_secret_name,
    database_name,
    database_secret_name,
    deployment_name,
    kafka_client_selector,
    kafka_cluster_name,
    labels,
    node_pool_name,
    owner_selector,
    selector_labels,
    signing_key_secret_name,
    strimzi_max_name_length,
    topic_name,
    wiring_name,
)
from culture_operator.builders.network import (
    NETWORK_POLICY_API_VERSION,
    build_network_policies,
)
from culture_operator.builders.pods import (
    APP_UID,
)
from culture_operator.builders.strimzi import (
    KAFKA_PLAIN_PORT,
    STRIMZI_API_VERSION,
    STRIMZI_CLUSTER_LABEL,
    build_kafka,
    build_kafka_topic,
    build_node_pool,
    kafka_topic_resource_name,
)
from culture_operator.builders.topics import (
    TopicPlan,
    TopicWanted,
    plan_topics,
    wanted_topics,
)
from culture_operator.builders.workloads import (
    build_deployment,
    build_pdb,
    build_service,
)
from culture_operator.spec import SERVICE_ROLES, CulturePlatformSpec

# -- everything ------------------------------------------------------------------------------------------


def build_children(
    owner: Owner,
    spec: CulturePlatformSpec,
    passwords: Mapping[str, str],
    signing_key: SigningKey | None = None,
    client_address_key: str | None = None,
) -> list[dict[str, Any]]:
    """Every child the spec asks for, in apply order (Secrets and config before their users).

    `passwords` maps each managed database in use to its password (the caller keeps the existing one
    or generates one); a missing one is a programming error. `signing_key` is identity's token key
    (the caller keeps the live one or generates one); None leaves its Secret out of the children.
    `client_address_key` is the gateway's and identity's HMAC key for client addresses, likewise.
    """
    children: list[dict[str, Any]] = []
    wiring = build_wiring(owner, spec)
    children.append(wiring)
    if signing_key is not None and spec.service_enabled("identity"):
        children.append(build_signing_key_secret(owner, signing_key))
    if client_address_key is not None and any(spec.service_enabled(s) for s in CLIENT_ADDRESS_SERVICES):
        children.append(build_client_address_secret(owner, client_address_key))
    for db in spec.databases_in_use():
        if spec.database(db).mode != "managed":
            continue
        children.append(build_database_secret(owner, db, passwords[db],
                                              delete_with_platform=spec.database(db).deleteClaim))
        children.append(build_database_service(owner, db))
        children.append(build_database_statefulset(owner, spec, db))
    if spec.kafka.mode == "strimzi":
        children.append(build_kafka(owner, spec))
        children.append(build_node_pool(owner, spec))
        children.extend(build_kafka_topic(owner, t) for t in wanted_topics(spec))
    digest = wiring_hash(wiring)
    for service, roles in SERVICE_ROLES.items():
        if not spec.service_enabled(service):
            continue
        for role in roles:
            children.append(build_deployment(owner, spec, service, role, digest))
            if role.startswith("api"):
                children.append(build_service(owner, spec, service, role))
            if spec.role(service, role).replicas > 1:
                children.append(build_pdb(owner, service, role))
    children.extend(build_network_policies(owner, spec))
    return children


def managed_databases(spec: CulturePlatformSpec) -> list[str]:
    """The managed databases in use: the ones that need a generated password."""
    return [db for db in spec.databases_in_use() if spec.database(db).mode == "managed"]


def child_key(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name): how children are matched between desired and existing."""
    return (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


__all__ = [
    "APP_UID",
    "CLIENT_ADDRESS_KEY",
    "CLIENT_ADDRESS_SERVICES",
    "DATABASE_ENV",
    "DATABASE_IMAGES",
    "DELETE_WITH_PLATFORM",
    "DRIVER_READY",
    "GATEWAY_UPSTREAMS",
    "GRPC_ENV_PREFIX",
    "HTTP_PORT",
    "IDENTITY_ROLE_KEYS",
    "KAFKA_CLIENT_ROLES",
    "KAFKA_PLAIN_PORT",
    "LABEL_COMPONENT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "LABEL_PART_OF",
    "LABEL_VERSION",
    "MANAGER",
    "NETWORK_POLICY_API_VERSION",
    "PART_OF",
    "SERVICE_ENV_PREFIX",
    "SIGNING_KEY_KEYS",
    "STRIMZI_API_VERSION",
    "STRIMZI_CLUSTER_LABEL",
    "TOPIC_PARTITIONS_SERVICES",
    "WIRING_HASH",
    "WORKER_SETTINGS_SERVICES",
    "DatabaseImage",
    "Owner",
    "SigningKey",
    "TopicPlan",
    "TopicWanted",
    "broker_pod_name",
    "build_children",
    "build_client_address_secret",
    "build_database_secret",
    "build_database_service",
    "build_database_statefulset",
    "build_deployment",
    "build_kafka",
    "build_kafka_topic",
    "build_network_policies",
    "build_node_pool",
    "build_pdb",
    "build_service",
    "build_signing_key_secret",
    "build_wiring",
    "check_name",
    "child_key",
    "client_address_secret_name",
    "consumer_group",
    "credentials_secret_name",
    "database_name",
    "database_secret_name",
    "database_url",
    "deployment_name",
    "kafka_bootstrap",
    "kafka_client_selector",
    "kafka_cluster_name",
    "kafka_topic_resource_name",
    "labels",
    "managed_databases",
    "mongo_keyfile",
    "node_pool_name",
    "owner_selector",
    "plan_topics",
    "platform_env",
    "selector_labels",
    "service_address",
    "service_env",
    "service_env_vars",
    "signing_key_secret_name",
    "strimzi_max_name_length",
    "topic_name",
    "topic_namespace",
    "wanted_topics",
    "wiring_hash",
    "wiring_name",
]
