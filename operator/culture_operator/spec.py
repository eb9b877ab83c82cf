"""The typed CulturePlatform spec: the single source of truth for the CRD schema and the builders.

The pydantic models carry every description, default and bound; `crd.py` turns them into the
CRD's structural OpenAPI schema, so `kubectl explain cp.spec...` and the operator never disagree.
Cross-field rules are written twice on purpose: once as CEL (`x-kubernetes-validations`, so the API
server rejects a bad object before it is stored) and once as a pydantic validator (so unit tests and
the builders see the same rules).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

GROUP = "platform.culture.dev"
VERSION = "v1alpha1"
KIND = "CulturePlatform"
PLURAL = "cultureplatforms"
SINGULAR = "cultureplatform"
SHORT_NAMES = ("cp",)
CATEGORIES = ("culture", "all-culture")

#: Every event topic the platform exchanges, in the order of ARCHITECTURE.md.
#: Prefer the contracts' table when it exists; until then this list is the operator's own copy.
try:  # pragma: no cover - depends on what else is in the checkout
    from culture_contracts.topics import ALL_TOPICS as _CONTRACT_TOPICS  # type: ignore[import-not-found]

    EVENT_TOPICS: tuple[str, ...] = tuple(str(t) for t in _CONTRACT_TOPICS)
except ImportError:
    EVENT_TOPICS = (
        "identity.user-registered",
        "catalog.profile-created",
        "catalog.review-created",
        "catalog.profile-marked-incomplete",
        "graph.follow-created",
        "graph.follow-removed",
        "feed.feed-created",
        "feed.creation-failed",
        "chat.message-sent",
    )

#: service -> its roles (each role is a separate Deployment), from ARCHITECTURE.md.
SERVICE_ROLES: dict[str, tuple[str, ...]] = {
    "identity": ("api-write", "api-read", "relay"),
    "catalog": ("api-write", "api-read", "worker", "relay"),
    "feed": ("api-read", "worker"),
    "graph": ("api-write", "api-read", "worker", "relay"),
    "chat": ("api-write", "api-read"),
    "notifier": ("worker", "api-read"),
    "mailer": ("worker",),
    "gateway": ("api",),
}

#: service -> the databases it reads and writes.
#: (identity: Redis counts failed logins; catalog: Redis is the hot-metadata cache; mailer: Redis is
#: its sent-mail ledger; feed: Redis pub/sub carries its "new items" notices; gateway: Redis pub/sub
#: carries the pushed job updates.)
SERVICE_DATABASES: dict[str, tuple[str, ...]] = {
    "identity": ("postgres", "redis"),
    "catalog": ("mongo", "redis"),
    "feed": ("cassandra", "redis"),
    "graph": ("neo4j",),
    "chat": ("cassandra", "redis"),
    "notifier": ("redis",),
    "mailer": ("redis",),
    "gateway": ("redis",),
}

DATABASES: tuple[str, ...] = ("postgres", "mongo", "cassandra", "neo4j", "redis")

ROLE_DESCRIPTIONS = {
    "api-write": "the gRPC command side (writes the service's store and its outbox)",
    "api-read": "the gRPC query side (serves read models)",
    "worker": "the Kafka consumers (projections, sagas, notifications)",
    "relay": "the outbox relay (publishes outbox rows to Kafka)",
    "api": "the HTTP/JSON edge for the browser",
}

#: Kubernetes quantity, e.g. 500m, 1, 256Mi, 1Gi.
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One CEL validation rule in the CRD's `x-kubernetes-validations` shape."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class _Model(BaseModel):
    """Base: camelCase names as in every Kubernetes API, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ResourceAmounts(_Model):
    """An amount of CPU and memory."""

    cpu: str | None = Field(None, pattern=QUANTITY, description="CPU as a Kubernetes quantity, e.g. 250m.")
    memory: str | None = Field(
        None, pattern=QUANTITY, description="Memory as a Kubernetes quantity, e.g. 256Mi."
    )


class Resources(_Model):
    """Compute resources of one container."""

    requests: ResourceAmounts = Field(
        default_factory=ResourceAmounts, description="What the scheduler reserves for the container."
    )
    limits: ResourceAmounts = Field(
        default_factory=ResourceAmounts, description="The most the container may use."
    )


class RoleSpec(_Model):
    """One role of a service, deployed as its own Deployment."""

    replicas: int = Field(1, ge=0, le=100, description="Number of pods of this role (0 stops the role).")
    resources: Resources = Field(
        default_factory=Resources, description="CPU and memory requests and limits of the role's container."
    )


def _service_model(service: str, roles: tuple[str, ...]) -> type[_Model]:
    """The spec of one service: `enabled` plus one RoleSpec per role, keyed by the role name."""
    fields: dict[str, Any] = {
        "enabled": (
            bool,
            Field(True, description=f"Deploy the {service} service; false removes all its children."),
        )
    }
    for role in roles:
        fields[role.replace("-", "_")] = (
            RoleSpec,
            Field(
                default_factory=RoleSpec,
                alias=role,
                description=f"The {role} role: {ROLE_DESCRIPTIONS[role]}.",
            ),
        )
    model = create_model(  # type: ignore[call-overload]
        f"{service.capitalize()}Service", __base__=_Model, __doc__=f"The {service} service.", **fields
    )
    return model


SERVICE_MODELS: dict[str, type[_Model]] = {s: _service_model(s, r) for s, r in SERVICE_ROLES.items()}

Services: type[_Model] = create_model(  # type: ignore[call-overload]
    "Services",
    __base__=_Model,
    __doc__="Every service of the platform, each with the replicas and resources of each role.",
    **{
        s: (m, Field(default_factory=m, description=f"The {s} service and its roles."))
        for s, m in SERVICE_MODELS.items()
    },
)


class TopicSettings(_Model):
    """Partitions, replicas and config given to every event topic unless overridden."""

    partitions: int = Field(3, ge=1, le=1000, description="Partitions of each topic.")
    replicas: int = Field(1, ge=1, le=10, description="Replication factor of each topic.")
    config: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description='Topic-level Kafka config, e.g. retention.ms: "604800000".',
    )


class TopicOverride(_Model):
    """Settings of one topic that differ from the defaults."""

    partitions: int | None = Field(None, ge=1, le=1000, description="Partitions of this topic.")
    replicas: int | None = Field(None, ge=1, le=10, description="Replication factor of this topic.")
    config: dict[str, str] = Field(
        default_factory=dict, max_length=50, description="Topic-level Kafka config merged over the defaults."
    )


class SecretRef(_Model):
    """A Secret in the CulturePlatform's namespace."""

    name: str = Field(..., min_length=1, max_length=253, description="Name of the Secret.")


class StrimziSpec(_Model):
    """The KRaft Kafka cluster the operator asks Strimzi for (mode strimzi)."""

    version: str = Field("4.3.1", description="Kafka version Strimzi runs (Strimzi 1.2 runs 4.3.1).")
    metadataVersion: str = Field("4.3", description="KRaft metadata version of the cluster.")
    replicas: int = Field(
        1, ge=1, le=9, description="Nodes of the single dual-role (controller+broker) KafkaNodePool."
    )
    storage: str = Field("10Gi", pattern=QUANTITY, description="Persistent volume size of each Kafka node.")
    deleteClaim: bool = Field(False, description="Delete the Kafka volumes when the cluster is deleted.")
    resources: Resources = Field(default_factory=Resources, description="Resources of each Kafka node.")


class KafkaSpec(_Model):
    """Where the event topics live and how they are created."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.mode) || self.mode != 'external' || "
                    "(has(self.bootstrapServers) && size(self.bootstrapServers) > 0)",
                    "bootstrapServers is required when mode is external",
                    ".bootstrapServers",
                ),
                _cel(
                    "!has(self.topicOverrides) || self.topicOverrides.all(t, t in "
                    + str(list(EVENT_TOPICS)).replace('"', "'")
                    + ")",
                    "topicOverrides keys must be event topic names: " + ", ".join(EVENT_TOPICS),
                    ".topicOverrides",
                ),
            ]
        }
    )

    mode: Literal["strimzi", "external"] = Field(
        "strimzi",
        description=(
            "strimzi: the operator creates a KRaft Kafka, a dual-role KafkaNodePool and one KafkaTopic per "
            "event topic (needs the Strimzi operator); external: an existing Kafka at bootstrapServers, "
            "topics created through the Kafka admin API."
        ),
    )
    bootstrapServers: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="host:port of the external Kafka's brokers (required when mode is external).",
    )
    topicPrefix: str = Field(
        "",
        max_length=100,
        pattern=r"^([a-zA-Z0-9._-]*\.)?$",
        description=(
            "Prepended to every topic name and consumer group, so several platforms can share one external "
            "Kafka; empty or ending in a dot (e.g. `demo.`): the services read it as their topic namespace."
        ),
    )
    topics: TopicSettings = Field(
        default_factory=TopicSettings, description="Partitions, replicas and config of every event topic."
    )
    topicOverrides: dict[str, TopicOverride] = Field(
        default_factory=dict,
        max_length=len(EVENT_TOPICS),
        description="Per-topic settings, keyed by event topic name.",
    )
    strimzi: StrimziSpec = Field(default_factory=StrimziSpec, description="The Strimzi Kafka (mode strimzi).")

    @model_validator(mode="after")
    def _check(self) -> KafkaSpec:
        if self.mode == "external" and not self.bootstrapServers:
            raise ValueError("bootstrapServers is required when mode is external")
        unknown = sorted(set(self.topicOverrides) - set(EVENT_TOPICS))
        if unknown:
            raise ValueError(f"topicOverrides names unknown topics {unknown}")
        return self


class DatabaseSpec(_Model):
    """One database: run by the operator (managed) or an existing one (external)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.mode) || self.mode != 'external' || has(self.secretRef)",
                    "secretRef is required when mode is external",
                    ".secretRef",
                )
            ]
        }
    )

    mode: Literal["managed", "external"] = Field(
        "managed",
        description=(
            "managed: a StatefulSet, a headless Service and a Secret with generated credentials; "
            "external: an existing server whose connection Secret (key `url`) is named by secretRef."
        ),
    )
    storage: str = Field("1Gi", pattern=QUANTITY, description="Size of the data volume (managed).")
    image: str | None = Field(None, description="Container image of the database (managed); a sane default.")
    secretRef: SecretRef | None = Field(
        None, description="The connection Secret of an external database; its key `url` is the DSN."
    )
    resources: Resources = Field(default_factory=Resources, description="Resources of the database pod.")

    @model_validator(mode="after")
    def _check(self) -> DatabaseSpec:
        if self.mode == "external" and self.secretRef is None:
            raise ValueError("secretRef is required when mode is external")
        return self


Databases: type[_Model] = create_model(  # type: ignore[call-overload]
    "Databases",
    __base__=_Model,
    __doc__="The databases; only those an enabled service uses are deployed or checked.",
    **{
        d: (DatabaseSpec, Field(default_factory=DatabaseSpec, description=f"The {d} database."))
        for d in DATABASES
    },
)


class SmtpSpec(_Model):
    """The mail server the mailer sends the welcome mail through."""

    host: str = Field(
        "localhost", min_length=1, max_length=253, description="Host name or address of the SMTP server."
    )
    port: int = Field(25, ge=1, le=65535, description="Port of the SMTP server.")
    startTLS: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    secretRef: SecretRef | None = Field(
        None, description="A Secret with keys `username` and `password` for SMTP AUTH; none: no AUTH."
    )


class CulturePlatformSpec(_Model):
    """A whole CulturePlatform installation: Kafka, databases and services."""

    image: str = Field(
        "ghcr.io/culture-platform/culture:0.1.0",
        min_length=1,
        description="Container image of the services; pods run `culture serve SERVICE --role ROLE`.",
    )
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Pull policy of the service containers."
    )
    grpcPort: int = Field(50051, ge=1024, le=65535, description="gRPC port every service pod listens on.")
    nodeSelector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels every pod of the platform (services and managed databases) must match, "
        "as a Kubernetes nodeSelector; empty: any node.",
    )
    kafka: KafkaSpec = Field(default_factory=KafkaSpec, description="Kafka and the event topics.")
    databases: Databases = Field(default_factory=Databases, description="The databases of the services.")
    services: Services = Field(default_factory=Services, description="The services and their roles.")
    smtp: SmtpSpec = Field(default_factory=SmtpSpec, description="The SMTP server of the mailer.")

    def role(self, service: str, role: str) -> RoleSpec:
        """The spec of one role of one service."""
        return getattr(getattr(self.services, service), role.replace("-", "_"))

    def service_enabled(self, service: str) -> bool:
        """Whether the service is deployed at all."""
        return bool(getattr(self.services, service).enabled)

    def database(self, name: str) -> DatabaseSpec:
        """The spec of one database."""
        return getattr(self.databases, name)

    def databases_in_use(self) -> list[str]:
        """The databases some enabled service needs, in DATABASES order."""
        used = {d for s in SERVICE_ROLES if self.service_enabled(s) for d in SERVICE_DATABASES[s]}
        return [d for d in DATABASES if d in used]


def parse_spec(raw: dict[str, Any] | None) -> CulturePlatformSpec:
    """The typed spec of a CulturePlatform object's `spec` (raises pydantic.ValidationError)."""
    return CulturePlatformSpec.model_validate(raw or {})
