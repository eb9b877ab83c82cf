"""Pure builders: a typed CulturePlatform spec in, the list of child manifests (dicts) out.

No I/O and no kopf here: everything the builders need that is not in the spec (the owner's uid,
the generated database passwords) is passed in, so the same input always gives the same output.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from culture_operator.spec import (
    EVENT_TOPICS,
    GROUP,
    KIND,
    SERVICE_DATABASES,
    SERVICE_ROLES,
    VERSION,
    CulturePlatformSpec,
    Resources,
)

#: The one place the Strimzi API version lives (Strimzi 1.x serves kafka.strimzi.io/v1 only).
STRIMZI_API_VERSION = "kafka.strimzi.io/v1"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"
KAFKA_PLAIN_PORT = 9092

MANAGER = "culture-operator"
PART_OF = "culture-platform"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
WIRING_HASH = f"{GROUP}/wiring-hash"
HTTP_PORT = 8080
APP_UID = 10001


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


@dataclasses.dataclass(frozen=True)
class DatabaseImage:
    """How a managed database runs: image, port, data path and the user it runs as."""

    image: str
    port: int
    data_path: str
    uid: int
    username: str
    read_only_root: bool
    #: extra writable directories (emptyDir) a read-only root filesystem needs
    writable: tuple[str, ...] = ("/tmp",)


DATABASE_IMAGES: dict[str, DatabaseImage] = {
    "postgres": DatabaseImage(
        "postgres:17-alpine",
        5432,
        "/var/lib/postgresql/data",
        70,
        "culture",
        True,
        ("/tmp", "/var/run/postgresql"),
    ),
    "mongo": DatabaseImage("mongo:8.0", 27017, "/data/db", 999, "culture", True),
    # Cassandra and Neo4j rewrite their config files at start, so their root filesystem stays writable.
    "cassandra": DatabaseImage("cassandra:5.0", 9042, "/var/lib/cassandra", 999, "cassandra", False),
    "neo4j": DatabaseImage("neo4j:5-community", 7687, "/data", 7474, "neo4j", False),
    "redis": DatabaseImage("redis:7-alpine", 6379, "/data", 999, "default", True),
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


def _meta(owner: Owner, name: str, app: str, component: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, app, component),
        "ownerReferences": [owner.reference()],
    }
    meta.update(extra)
    return meta


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        amounts = getattr(res, kind)
        values = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v is not None}
        if values:
            out[kind] = values
    return out


def _container_security(read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# -- names ---------------------------------------------------------------------------------------------


def wiring_name(owner: Owner) -> str:
    """The ConfigMap every service pod reads its wiring from."""
    return f"{owner.name}-wiring"


def deployment_name(owner: Owner, service: str, role: str) -> str:
    """The Deployment (and Service, PDB) of one role of one service."""
    return f"{owner.name}-{service}-{role}"


def database_name(owner: Owner, db: str) -> str:
    """The StatefulSet and headless Service of a managed database."""
    return f"{owner.name}-{db}"


def database_secret_name(owner: Owner, spec: CulturePlatformSpec, db: str) -> str:
    """The Secret holding a database's connection `url` (generated for managed, the user's for external)."""
    dbspec = spec.database(db)
    if dbspec.mode == "external" and dbspec.secretRef is not None:
        return dbspec.secretRef.name
    return f"{owner.name}-{db}-credentials"


def kafka_cluster_name(owner: Owner) -> str:
    """The Strimzi Kafka (and the value of its strimzi.io/cluster label)."""
    return f"{owner.name}-kafka"


def topic_name(spec: CulturePlatformSpec, topic: str) -> str:
    """The Kafka topic an event topic maps to (with the platform's prefix)."""
    return f"{spec.kafka.topicPrefix}{topic}"


def env_key(*parts: str) -> str:
    """An environment variable name: CULTURE_ + parts, upper case, [-.] as underscores."""
    return "CULTURE_" + "_".join(p.upper().replace("-", "_").replace(".", "_") for p in parts)


# -- topics ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TopicWanted:
    """One Kafka topic as the spec asks for it."""

    event: str
    name: str
    partitions: int
    replicas: int
    config: dict[str, str]


def wanted_topics(spec: CulturePlatformSpec) -> list[TopicWanted]:
    """Every event topic with its partitions, replicas and config (defaults, then overrides)."""
    out = []
    defaults = spec.kafka.topics
    for event in EVENT_TOPICS:
        o = spec.kafka.topicOverrides.get(event)
        out.append(
            TopicWanted(
                event=event,
                name=topic_name(spec, event),
                partitions=(o.partitions if o and o.partitions else defaults.partitions),
                replicas=(o.replicas if o and o.replicas else defaults.replicas),
                config={**defaults.config, **(o.config if o else {})},
            )
        )
    return out


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    """What to do on an external Kafka: create, grow; and what is refused (never shrink silently)."""

    create: list[TopicWanted]
    grow: dict[str, int]  # topic -> new partition count
    refused: dict[str, tuple[int, int]]  # topic -> (existing, asked)

    @property
    def empty(self) -> bool:
        """Nothing to create or grow."""
        return not self.create and not self.grow


def plan_topics(wanted: list[TopicWanted], existing: Mapping[str, int]) -> TopicPlan:
    """Compare the wanted topics with the existing partition counts (topic -> partitions)."""
    create, grow, refused = [], {}, {}
    for t in wanted:
        have = existing.get(t.name)
        if have is None:
            create.append(t)
        elif t.partitions > have:
            grow[t.name] = t.partitions
        elif t.partitions < have:
            refused[t.name] = (have, t.partitions)
    return TopicPlan(create=create, grow=grow, refused=refused)


# -- wiring ----------------------------------------------------------------------------------------------


def kafka_bootstrap(owner: Owner, spec: CulturePlatformSpec) -> str:
    """The bootstrap servers the services use."""
    if spec.kafka.mode == "external":
        return ",".join(spec.kafka.bootstrapServers)
    # Strimzi's bootstrap Service is <cluster>-kafka-bootstrap
    return f"{kafka_cluster_name(owner)}-kafka-bootstrap.{owner.namespace}.svc:{KAFKA_PLAIN_PORT}"


def build_wiring(owner: Owner, spec: CulturePlatformSpec) -> dict[str, Any]:
    """The ConfigMap with what every service reads: Kafka, topic names, gRPC endpoints, DB hosts."""
    data: dict[str, str] = {
        env_key("platform"): owner.name,
        env_key("kafka", "bootstrap", "servers"): kafka_bootstrap(owner, spec),
        env_key("kafka", "topic", "prefix"): spec.kafka.topicPrefix,
    }
    for t in wanted_topics(spec):
        data[env_key("topic", t.event)] = t.name
    for service, roles in SERVICE_ROLES.items():
        if not spec.service_enabled(service):
            continue
        for role in roles:
            if role.startswith("api"):
                data[env_key(service, role, "addr")] = (
                    f"{deployment_name(owner, service, role)}.{owner.namespace}.svc:{spec.grpcPort}"
                )
    for db in spec.databases_in_use():
        data[env_key(db, "secret")] = database_secret_name(owner, spec, db)
        if spec.database(db).mode == "managed":
            data[env_key(db, "host")] = f"{database_name(owner, db)}.{owner.namespace}.svc"
            data[env_key(db, "port")] = str(DATABASE_IMAGES[db].port)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, wiring_name(owner), "culture-platform", "wiring"),
        "data": data,
    }


def wiring_hash(wiring: dict[str, Any]) -> str:
    """A short digest of the wiring: a pod-template annotation, so pods restart when it changes."""
    return hashlib.sha256(json.dumps(wiring["data"], sort_keys=True).encode()).hexdigest()[:16]


# -- services ------------------------------------------------------------------------------------------


def _grpc_probe(port: int, period: int, delay: int) -> dict[str, Any]:
    return {
        "grpc": {"port": port},
        "periodSeconds": period,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def build_deployment(
    owner: Owner, spec: CulturePlatformSpec, service: str, role: str, wiring_digest: str
) -> dict[str, Any]:
    """The Deployment of one role: `culture serve SERVICE --role ROLE`, hardened, with gRPC probes."""
    rs = spec.role(service, role)
    name = deployment_name(owner, service, role)
    lbl = labels(owner, service, role)
    selector = {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)}
    ports = [{"name": "grpc", "containerPort": spec.grpcPort, "protocol": "TCP"}]
    if service == "gateway":
        ports.append({"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"})
    env: list[dict[str, Any]] = [
        {"name": env_key("service"), "value": service},
        {"name": env_key("role"), "value": role},
        {"name": env_key("grpc", "port"), "value": str(spec.grpcPort)},
    ]
    for db in SERVICE_DATABASES[service]:
        env.append(
            {
                "name": env_key(db, "url"),
                "valueFrom": {"secretKeyRef": {"name": database_secret_name(owner, spec, db), "key": "url"}},
            }
        )
    container: dict[str, Any] = {
        "name": service,
        "image": spec.image,
        "imagePullPolicy": spec.imagePullPolicy,
        "args": ["serve", service, "--role", role],
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": wiring_name(owner)}}],
        "env": env,
        "readinessProbe": _grpc_probe(spec.grpcPort, period=5, delay=2),
        "livenessProbe": _grpc_probe(spec.grpcPort, period=10, delay=15),
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    resources = _resources(rs.resources)
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(owner, name, service, role),
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": lbl, "annotations": {WIRING_HASH: wiring_digest}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(APP_UID),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def build_service(owner: Owner, spec: CulturePlatformSpec, service: str, role: str) -> dict[str, Any]:
    """The ClusterIP Service in front of an api role."""
    lbl = labels(owner, service, role)
    ports = [
        {
            "name": "grpc",
            "port": spec.grpcPort,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "grpc",
        }
    ]
    if service == "gateway":
        ports.append({"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, deployment_name(owner, service, role), service, role),
        "spec": {
            "type": "ClusterIP",
            "selector": {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)},
            "ports": ports,
        },
    }


def build_pdb(owner: Owner, service: str, role: str) -> dict[str, Any]:
    """A PodDisruptionBudget: at most one pod of a multi-replica role down at a time."""
    lbl = labels(owner, service, role)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(owner, deployment_name(owner, service, role), service, role),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)}},
        },
    }


# -- databases -----------------------------------------------------------------------------------------


def database_url(owner: Owner, db: str, password: str) -> str:
    """The connection URL of a managed database, as the services read it from the Secret's `url`."""
    img = DATABASE_IMAGES[db]
    host = f"{database_name(owner, db)}.{owner.namespace}.svc:{img.port}"
    return {
        "postgres": f"postgresql://{img.username}:{password}@{host}/culture",
        "mongo": f"mongodb://{img.username}:{password}@{host}/?authSource=admin",
        "cassandra": f"cassandra://{img.username}:{password}@{host}",
        "neo4j": f"bolt://{img.username}:{password}@{host}",
        "redis": f"redis://:{password}@{host}/0",
    }[db]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_database_secret(owner: Owner, db: str, password: str) -> dict[str, Any]:
    """The generated credentials of a managed database (`data`, so it compares with what is stored)."""
    img = DATABASE_IMAGES[db]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(owner, f"{owner.name}-{db}-credentials", db, "database"),
        "type": "Opaque",
        "data": {
            "username": _b64(img.username),
            "password": _b64(password),
            "url": _b64(database_url(owner, db, password)),
        },
    }


def build_database_service(owner: Owner, db: str) -> dict[str, Any]:
    """The headless Service giving the database pod a stable DNS name."""
    lbl = labels(owner, db, "database")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, database_name(owner, db), db, "database"),
        "spec": {
            "clusterIP": "None",
            "selector": {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)},
            "ports": [{"name": db, "port": DATABASE_IMAGES[db].port, "targetPort": db, "protocol": "TCP"}],
        },
    }


def _database_env(owner: Owner, db: str) -> list[dict[str, Any]]:
    secret = f"{owner.name}-{db}-credentials"

    def ref(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": secret, "key": key}}

    if db == "postgres":
        return [
            {"name": "POSTGRES_USER", "valueFrom": ref("username")},
            {"name": "POSTGRES_PASSWORD", "valueFrom": ref("password")},
            {"name": "POSTGRES_DB", "value": "culture"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ]
    if db == "mongo":
        return [
            {"name": "MONGO_INITDB_ROOT_USERNAME", "valueFrom": ref("username")},
            {"name": "MONGO_INITDB_ROOT_PASSWORD", "valueFrom": ref("password")},
        ]
    if db == "neo4j":
        return [
            {"name": "NEO4J_PASSWORD", "valueFrom": ref("password")},
            {"name": "NEO4J_AUTH", "value": "neo4j/$(NEO4J_PASSWORD)"},
        ]
    if db == "redis":
        return [{"name": "REDIS_PASSWORD", "valueFrom": ref("password")}]
    return [
        {"name": "CASSANDRA_CLUSTER_NAME", "value": owner.name},
        {"name": "MAX_HEAP_SIZE", "value": "1G"},
        {"name": "HEAP_NEWSIZE", "value": "200M"},
    ]


def build_database_statefulset(owner: Owner, spec: CulturePlatformSpec, db: str) -> dict[str, Any]:
    """One-replica StatefulSet of a managed database with a PVC of the spec's size."""
    dbspec = spec.database(db)
    img = DATABASE_IMAGES[db]
    lbl = labels(owner, db, "database")
    mounts = [{"name": "data", "mountPath": img.data_path}]
    volumes: list[dict[str, Any]] = []
    for i, path in enumerate(img.writable):
        mounts.append({"name": f"scratch-{i}", "mountPath": path})
        volumes.append({"name": f"scratch-{i}", "emptyDir": {}})
    container: dict[str, Any] = {
        "name": db,
        "image": dbspec.image or img.image,
        "ports": [{"name": db, "containerPort": img.port, "protocol": "TCP"}],
        "env": _database_env(owner, db),
        "readinessProbe": {"tcpSocket": {"port": db}, "periodSeconds": 5, "initialDelaySeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": db}, "periodSeconds": 10, "initialDelaySeconds": 60},
        "securityContext": _container_security(img.read_only_root),
        "volumeMounts": mounts,
    }
    if db == "redis":
        container["args"] = ["redis-server", "--requirepass", "$(REDIS_PASSWORD)", "--appendonly", "yes"]
    resources = _resources(dbspec.resources)
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(owner, database_name(owner, db), db, "database"),
        "spec": {
            "serviceName": database_name(owner, db),
            "replicas": 1,
            "selector": {"matchLabels": {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)}},
            "template": {
                "metadata": {"labels": lbl},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(img.uid),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": dbspec.storage}},
                    },
                }
            ],
        },
    }


# -- Strimzi -------------------------------------------------------------------------------------------


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
                "listeners": [
                    {"name": "plain", "port": KAFKA_PLAIN_PORT, "type": "internal", "tls": False},
                    {"name": "tls", "port": 9093, "type": "internal", "tls": True},
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
    meta = _meta(owner, f"{owner.name}-dual-role", "kafka", "kafka-node-pool")
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
    if topic.config:
        body["config"] = dict(topic.config)
    return {"apiVersion": STRIMZI_API_VERSION, "kind": "KafkaTopic", "metadata": meta, "spec": body}


# -- everything ------------------------------------------------------------------------------------------


def build_children(
    owner: Owner, spec: CulturePlatformSpec, passwords: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every child the spec asks for, in apply order (Secrets and config before their users).

    `passwords` maps each managed database in use to its password (the caller keeps the existing one
    or generates one); a missing one is a programming error.
    """
    children: list[dict[str, Any]] = []
    wiring = build_wiring(owner, spec)
    children.append(wiring)
    for db in spec.databases_in_use():
        if spec.database(db).mode != "managed":
            continue
        children.append(build_database_secret(owner, db, passwords[db]))
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
    return children


def managed_databases(spec: CulturePlatformSpec) -> list[str]:
    """The managed databases in use: the ones that need a generated password."""
    return [db for db in spec.databases_in_use() if spec.database(db).mode == "managed"]


def child_key(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, name): how children are matched between desired and existing."""
    return (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])
