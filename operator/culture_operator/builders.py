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

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# the services' own settings class: env names are derived from it, never spelled twice
from culture_identity.settings import encode_private_key
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
from culture_runtime.settings import PlatformSettings

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


# -- the environment the services read ---------------------------------------------------------------
#
# Every CULTURE_* name a pod gets is one a settings class of the services reads. The shared endpoints come
# from `culture_runtime.settings.PlatformSettings` itself; the per-service prefixes are the `env_prefix` of
# IdentitySettings, CatalogSettings, ..., GrpcServerSettings and GatewaySettings (the operator does not
# import those: they pull in the gRPC and Kafka stacks). tests/operator checks every name against the
# classes, and that every role gets what it needs.

#: env_prefix of each service's settings class (culture_<service>/settings.py)
SERVICE_ENV_PREFIX: dict[str, str] = {
    s: f"CULTURE_{s.upper()}_" for s in ("identity", "catalog", "notifier", "mailer", "gateway")
}
#: env_prefix of culture_grpc.server.GrpcServerSettings (every gRPC role)
GRPC_ENV_PREFIX = "CULTURE_GRPC_"
#: the services whose settings are culture_runtime.worker.WorkerSettings (consumer group, topic partitions)
WORKER_SETTINGS_SERVICES = ("catalog", "notifier", "mailer")
#: the services whose settings have `topic_partitions` (the partitions of topics they create themselves)
TOPIC_PARTITIONS_SERVICES = ("identity", *WORKER_SETTINGS_SERVICES)


def platform_env(field: str) -> str:
    """The variable PlatformSettings reads `field` from (KeyError when it has no such field)."""
    if field not in PlatformSettings.model_fields:
        raise KeyError(f"PlatformSettings has no field {field!r}")
    return str(PlatformSettings.model_config.get("env_prefix", "")).upper() + field.upper()


def service_env(service: str, field: str) -> str:
    """The variable the settings class of `service` (or `grpc`) reads `field` from."""
    prefix = GRPC_ENV_PREFIX if service == "grpc" else SERVICE_ENV_PREFIX[service]
    return prefix + field.upper()


#: database -> (Secret key, PlatformSettings field) of each value its users read from the database's Secret
DATABASE_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "postgres": (("url", "postgres_dsn"),),
    "mongo": (("url", "mongo_uri"),),
    "redis": (("url", "redis_url"),),
    "neo4j": (("url", "neo4j_uri"),),
    # the Cassandra driver takes contact points and a port, not a URL
    "cassandra": (("contactPoints", "cassandra_contact_points"), ("port", "cassandra_port")),
}

#: gateway upstream setting -> (service, role) it points at
GATEWAY_UPSTREAMS: dict[str, tuple[str, str]] = {
    "identity-write": ("identity", "api-write"),
    "identity-read": ("identity", "api-read"),
    "notifier": ("notifier", "api-read"),
    "catalog-write": ("catalog", "api-write"),
    "catalog-read": ("catalog", "api-read"),
}

#: the keys of the identity signing-key Secret
SIGNING_KEY_KEYS = {
    "signing-key": "signing_key",
    "signing-key-id": "signing_key_id",
    "verification-keys": "verification_keys",
}


def topic_namespace(spec: CulturePlatformSpec) -> str:
    """CULTURE_TOPIC_NAMESPACE: services name topics `<namespace>.<topic>`, the operator `<prefix><topic>`."""
    return spec.kafka.topicPrefix.removesuffix(".")


def consumer_group(spec: CulturePlatformSpec, service: str) -> str:
    """A worker's consumer group: the service name, with the platform's prefix (so shared Kafkas are safe)."""
    return f"{spec.kafka.topicPrefix}{service}"


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
    """The ConfigMap with what every service pod reads: Kafka, the topic namespace, the SMTP server.

    Database endpoints and keys are in Secrets (see `build_deployment`), role specifics in each Deployment.
    """
    data: dict[str, str] = {
        platform_env("kafka_bootstrap"): kafka_bootstrap(owner, spec),
        platform_env("topic_namespace"): topic_namespace(spec),
    }
    if spec.service_enabled("mailer"):
        data[platform_env("smtp_host")] = spec.smtp.host
        data[platform_env("smtp_port")] = str(spec.smtp.port)
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


def _http_probe(path: str, period: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret_value(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def signing_key_secret_name(owner: Owner) -> str:
    """The Secret with identity's token signing key (generated by the operator when absent)."""
    return f"{owner.name}-identity-signing-key"


def service_address(owner: Owner, spec: CulturePlatformSpec, service: str, role: str) -> str:
    """host:port of an api role's Service, as other pods dial it."""
    return f"{deployment_name(owner, service, role)}.{owner.namespace}.svc:{spec.grpcPort}"


def service_env_vars(owner: Owner, spec: CulturePlatformSpec, service: str) -> list[dict[str, Any]]:
    """The env of every pod of `service` beyond the shared wiring ConfigMap (same for all its roles)."""
    env: list[dict[str, Any]] = []
    if service == "gateway":
        # the gateway is HTTP only (uvicorn); it reaches its upstreams through their Services
        env += [_value(service_env("gateway", "host"), "0.0.0.0"),
                _value(service_env("gateway", "port"), str(HTTP_PORT))]
        required = []
        for upstream, (svc, role) in GATEWAY_UPSTREAMS.items():
            if spec.service_enabled(svc):
                env.append(_value(service_env("gateway", upstream.replace("-", "_")),
                                  service_address(owner, spec, svc, role)))
                required.append(upstream)
        env.append(_value(service_env("gateway", "required_upstreams"), json.dumps(required)))
    else:
        # 127.0.0.1 (the default) would be unreachable for the kubelet's gRPC probes and the Services
        env += [_value(service_env("grpc", "host"), "0.0.0.0"),
                _value(service_env("grpc", "port"), str(spec.grpcPort))]
    for db in SERVICE_DATABASES[service]:
        for key, field in DATABASE_ENV[db]:
            env.append(_secret_value(platform_env(field), database_secret_name(owner, spec, db), key))
    if service == "identity":
        secret = signing_key_secret_name(owner)
        env += [
            _secret_value(service_env("identity", field), secret, key)
            for key, field in SIGNING_KEY_KEYS.items()
        ]
        # never a generated key on the pod's (read-only) disk: each replica would sign with its own
        env.append(_value(service_env("identity", "dev_keys"), "false"))
    if service in WORKER_SETTINGS_SERVICES:
        env.append(_value(service_env(service, "consumer_group"), consumer_group(spec, service)))
    if service in TOPIC_PARTITIONS_SERVICES:
        env.append(_value(service_env(service, "topic_partitions"), str(spec.kafka.topics.partitions)))
    if service == "mailer":
        env.append(_value(service_env("mailer", "smtp_starttls"), str(spec.smtp.startTLS).lower()))
        if spec.smtp.secretRef is not None:
            env += [_secret_value(service_env("mailer", f"smtp_{key}"), spec.smtp.secretRef.name, key)
                    for key in ("username", "password")]
    return env


def _placement(spec: CulturePlatformSpec) -> dict[str, Any]:
    """Pod-spec fields that choose nodes (absent when the spec leaves placement to the scheduler)."""
    return {"nodeSelector": dict(spec.nodeSelector)} if spec.nodeSelector else {}


def build_deployment(
    owner: Owner, spec: CulturePlatformSpec, service: str, role: str, wiring_digest: str
) -> dict[str, Any]:
    """The Deployment of one role: `culture serve SERVICE --role ROLE`, hardened, with probes.

    gRPC roles are probed through the standard gRPC health service; the gateway (HTTP) through
    `/healthz` (ready only while its upstreams are SERVING) and, for liveness, its open port.
    """
    rs = spec.role(service, role)
    name = deployment_name(owner, service, role)
    lbl = labels(owner, service, role)
    selector = {k: lbl[k] for k in (LABEL_NAME, LABEL_INSTANCE, LABEL_COMPONENT)}
    if service == "gateway":
        ports = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
        readiness = _http_probe("/healthz", period=5, delay=2)
        liveness = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "initialDelaySeconds": 0,
                    "timeoutSeconds": 2, "failureThreshold": 3}
    else:
        ports = [{"name": "grpc", "containerPort": spec.grpcPort, "protocol": "TCP"}]
        readiness = _grpc_probe(spec.grpcPort, period=5, delay=2)
        liveness = _grpc_probe(spec.grpcPort, period=10, delay=0)
    env: list[dict[str, Any]] = [
        # uid 10001 has no passwd entry: HOME would be /, on the read-only root filesystem
        {"name": "HOME", "value": "/tmp"},
        *service_env_vars(owner, spec, service),
    ]
    container: dict[str, Any] = {
        "name": service,
        "image": spec.image,
        "imagePullPolicy": spec.imagePullPolicy,
        "args": ["serve", service, "--role", role],
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": wiring_name(owner)}}],
        "env": env,
        # a cold Python start on a busy node can take a while: the startup probe covers it, so the
        # liveness probe does not restart a pod that is merely slow to import
        "startupProbe": {**liveness, "initialDelaySeconds": 2, "periodSeconds": 2, "failureThreshold": 90},
        "readinessProbe": readiness,
        "livenessProbe": liveness,
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
                    **_placement(spec),
                },
            },
        },
    }


def build_service(owner: Owner, spec: CulturePlatformSpec, service: str, role: str) -> dict[str, Any]:
    """The ClusterIP Service in front of an api role."""
    lbl = labels(owner, service, role)
    if service == "gateway":
        ports = [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]
    else:
        ports = [
            {
                "name": "grpc",
                "port": spec.grpcPort,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        ]
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
            # what the services read for Cassandra (see DATABASE_ENV)
            **(
                {
                    "contactPoints": _b64(f"{database_name(owner, db)}.{owner.namespace}.svc"),
                    "port": _b64(str(img.port)),
                }
                if db == "cassandra"
                else {}
            ),
        },
    }


# -- identity's signing key ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """identity's JWT signing key as its Secret holds it (the forms CULTURE_IDENTITY_* accept)."""

    #: base64url of the Ed25519 private key's 32-byte seed
    private: str
    key_id: str
    #: JSON {kid: public key}: older keys still accepted after a rotation
    verification_keys: str = "{}"

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A new key from 32 random bytes; its id is derived from the public key (stable, unique)."""
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(
            private=encode_private_key(private),  # the form identity's settings parse
            key_id="op-" + hashlib.sha256(public).hexdigest()[:12],
        )

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str] | None) -> SigningKey | None:
        """The key a live Secret (`data`, base64) holds; None when it has none (then generate one)."""
        data = data or {}
        if not data.get("signing-key") or not data.get("signing-key-id"):
            return None

        def text(key: str, default: str) -> str:
            return base64.b64decode(data[key]).decode() if data.get(key) else default

        return cls(text("signing-key", ""), text("signing-key-id", ""), text("verification-keys", "{}"))


def build_signing_key_secret(owner: Owner, key: SigningKey) -> dict[str, Any]:
    """The Secret identity's pods read their signing key from (kept across reconciles, rotatable by hand)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(owner, signing_key_secret_name(owner), "identity", "signing-key"),
        "type": "Opaque",
        "data": {
            "signing-key": _b64(key.private),
            "signing-key-id": _b64(key.key_id),
            "verification-keys": _b64(key.verification_keys),
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
                    **_placement(spec),
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
    owner: Owner,
    spec: CulturePlatformSpec,
    passwords: Mapping[str, str],
    signing_key: SigningKey | None = None,
) -> list[dict[str, Any]]:
    """Every child the spec asks for, in apply order (Secrets and config before their users).

    `passwords` maps each managed database in use to its password (the caller keeps the existing one
    or generates one); a missing one is a programming error. `signing_key` is identity's token key
    (the caller keeps the live one or generates one); None leaves its Secret out of the children.
    """
    children: list[dict[str, Any]] = []
    wiring = build_wiring(owner, spec)
    children.append(wiring)
    if signing_key is not None and spec.service_enabled("identity"):
        children.append(build_signing_key_secret(owner, signing_key))
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
