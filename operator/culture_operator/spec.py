"""The typed CulturePlatform spec: the single source of truth for the CRD schema and the builders.

The pydantic models carry every description, default and bound; `crd.py` turns them into the
CRD's structural OpenAPI schema, so `kubectl explain cp.spec...` and the operator never disagree.
Cross-field rules are written twice on purpose: once as CEL (`x-kubernetes-validations`, so the API
server rejects a bad object before it is stored) and once as a pydantic validator (so unit tests and
the builders see the same rules).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

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
    "chat": ("api-write", "api-read", "relay"),
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

#: database -> the keys of its connection Secret the services read (an external database's Secret
#: must have them; a managed one's has them beside `username` and `password`): a URL, except for
#: Cassandra, whose driver takes contact points and a port
CONNECTION_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("url",), "mongo": ("url",), "cassandra": ("contactPoints", "port"), "neo4j": ("url",),
    "redis": ("url",),
}


def connection_keys_text(db: str) -> str:
    """How the CRD describes a database's connection Secret keys."""
    return " and ".join(f"`{k}`" for k in CONNECTION_KEYS[db])


class Upstream(NamedTuple):
    """A gRPC service one service's roles call (the gateway's upstreams aside: it is the edge)."""

    setting: str  #: the caller's setting (CULTURE_<SERVICE>_<SETTING>) that holds the address
    callers: tuple[str, ...]  #: the caller's roles that dial it
    service: str
    role: str
    why: str


#: service -> the other services' gRPC roles it calls. The caller cannot work without them, so the
#: spec refuses a platform that enables the caller and disables the callee (CEL and pydantic), the
#: caller's pods get the address, and the callee's NetworkPolicy admits the calling roles.
SERVICE_UPSTREAMS: dict[str, tuple[Upstream, ...]] = {
    "feed": (Upstream("graph_read", ("worker",), "graph", "api-read",
                      "the feed worker asks the graph's FollowersInterestedIn for the followers a review "
                      "fans out to"),),
}

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


#: Kafka versions Strimzi 1.2 runs (its kafka-versions.yaml: supported: true); 4.3.1 is its default.
STRIMZI_KAFKA_VERSIONS = ("4.2.0", "4.2.1", "4.3.0", "4.3.1")
#: A KRaft metadata version in the form Strimzi reports it in `status.kafkaMetadataVersion`: 4.3-IV0.
METADATA_VERSION = r"^[0-9]+\.[0-9]+-IV[0-9]+$"
#: The metadata version of each Kafka minor Strimzi 1.2 runs (its kafka-versions.yaml): platforms stored
#: before the pattern existed carry the short form ("4.3", the old default); the operator reads it as this.
METADATA_OF_MINOR = {"4.2": "4.2-IV1", "4.3": "4.3-IV0"}
#: Kafka 4 supports KRaft metadata versions from 3.3-IV3 on.
MIN_METADATA_VERSION = (3, 3, 3)
MIN_INSYNC = "min.insync.replicas"
#: A topic config value (bounded, so the CEL rules reading them have a bounded cost).
ConfigValue = Annotated[str, Field(max_length=1024)]


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

def _enabled_cel(service: str) -> str:
    """CEL: whether `service` is enabled (an absent service or `enabled` is the default, true)."""
    return f"(!has(self.{service}) || !has(self.{service}.enabled) || self.{service}.enabled)"


def _dependency_message(caller: str, upstream: Upstream) -> str:
    return (f"services.{upstream.service}.enabled must be true while services.{caller} is enabled: "
            f"{upstream.why}")


class _ServicesBase(_Model):
    """The services' cross-field rule: every service an enabled service calls is enabled too."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(f"!{_enabled_cel(caller)} || {_enabled_cel(up.service)}",
                     _dependency_message(caller, up), f".{up.service}.enabled")
                for caller, ups in SERVICE_UPSTREAMS.items()
                for up in ups
            ]
        }
    )

    @model_validator(mode="after")
    def _dependencies(self) -> _ServicesBase:
        for caller, ups in SERVICE_UPSTREAMS.items():
            for up in ups:
                if getattr(self, caller).enabled and not getattr(self, up.service).enabled:
                    raise ValueError(_dependency_message(caller, up))
        return self


Services: type[_Model] = create_model(  # type: ignore[call-overload]
    "Services",
    __base__=_ServicesBase,
    __doc__="Every service of the platform, each with the replicas and resources of each role.",
    **{
        s: (m, Field(default_factory=m, description=f"The {s} service and its roles."))
        for s, m in SERVICE_MODELS.items()
    },
)


def _min_insync_ok(config: str, replicas: str) -> str:
    """CEL: the min.insync.replicas of `config` (a map) is absent, or a whole number <= `replicas`."""
    value = f"{config}['{MIN_INSYNC}']"
    return (f"!('{MIN_INSYNC}' in {config}) || ({value}.matches('^[0-9]+$') && "
            f"int({value}) >= 1 && int({value}) <= {replicas})")


MIN_INSYNC_MESSAGE = (
    f"{MIN_INSYNC} must be a whole number from 1 to the topic's replicas: a topic with fewer in-sync "
    "replicas than that refuses every acks=all produce"
)


def _check_min_insync(config: dict[str, str], replicas: int, where: str) -> None:
    value = config.get(MIN_INSYNC)
    if value is not None and not (value.isdigit() and 1 <= int(value) <= replicas):
        raise ValueError(f"{where}: {MIN_INSYNC_MESSAGE} ({MIN_INSYNC}={value!r}, replicas={replicas})")


class TopicSettings(_Model):
    """Partitions, replicas and config given to every event topic unless overridden."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("!has(self.config) || " + _min_insync_ok("self.config", "self.replicas"),
                     MIN_INSYNC_MESSAGE, ".config"),
            ]
        }
    )

    partitions: int = Field(3, ge=1, le=1000, description="Partitions of each topic.")
    replicas: int = Field(
        1, ge=1, le=10,
        description="Replication factor of each topic; fixed once the platform exists (Strimzi's topic "
        "operator cannot change it), at most kafka.strimzi.replicas in mode strimzi.",
    )
    config: dict[str, ConfigValue] = Field(
        default_factory=dict,
        max_length=50,
        description='Topic-level Kafka config, e.g. retention.ms: "604800000". In mode strimzi, '
        f"{MIN_INSYNC} defaults to replicas - 1 (at least 1) per topic.",
    )

    @model_validator(mode="after")
    def _check(self) -> TopicSettings:
        _check_min_insync(self.config, self.replicas, "topics.config")
        return self


class TopicOverride(_Model):
    """Settings of one topic that differ from the defaults."""

    partitions: int | None = Field(None, ge=1, le=1000, description="Partitions of this topic.")
    replicas: int | None = Field(
        None, ge=1, le=10, description="Replication factor of this topic (fixed once the platform exists)."
    )
    config: dict[str, ConfigValue] = Field(
        default_factory=dict, max_length=50, description="Topic-level Kafka config merged over the defaults."
    )


class SecretRef(_Model):
    """A Secret in the CulturePlatform's namespace."""

    name: str = Field(..., min_length=1, max_length=253, description="Name of the Secret.")


def _mv(part: int) -> str:
    """CEL: part 0 (major), 1 (minor) or 2 (IV level) of self.metadataVersion, as an int."""
    if part == 2:
        return "int(self.metadataVersion.split('-IV')[1])"
    return f"int(self.metadataVersion.split('-')[0].split('.')[{part}])"


def _v(part: int) -> str:
    return f"int(self.version.split('.')[{part}])"


#: CEL: the versions are absent (the API server checks the rules against the `{}` default before nested
#: defaulting) or malformed (the field's pattern or enum reports it): the rules stay quiet
_WELL_FORMED = ("!has(self.metadataVersion) || !has(self.version) || "
                "!self.metadataVersion.matches('" + METADATA_VERSION.replace("\\", "\\\\") + "') || "
                "!self.version.matches('^[0-9]+\\\\.[0-9]+\\\\.[0-9]+$')")


class StrimziSpec(_Model):
    """The KRaft Kafka cluster the operator asks Strimzi for (mode strimzi)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    f"{_WELL_FORMED} || {_mv(0)} < {_v(0)} || ({_mv(0)} == {_v(0)} && {_mv(1)} <= {_v(1)})",
                    "metadataVersion must not be newer than the Kafka version (e.g. 4.3-IV0 for 4.3.x)",
                    ".metadataVersion",
                ),
                _cel(
                    f"{_WELL_FORMED} || {_mv(0)} > {MIN_METADATA_VERSION[0]} || "
                    f"({_mv(0)} == {MIN_METADATA_VERSION[0]} && "
                    f"({_mv(1)} > {MIN_METADATA_VERSION[1]} || ({_mv(1)} == {MIN_METADATA_VERSION[1]} && "
                    f"{_mv(2)} >= {MIN_METADATA_VERSION[2]})))",
                    "metadataVersion must be at least 3.3-IV3 (the oldest KRaft metadata Kafka 4 supports)",
                    ".metadataVersion",
                ),
            ]
        }
    )

    version: Literal[STRIMZI_KAFKA_VERSIONS] = Field(  # type: ignore[valid-type]
        "4.3.1", json_schema_extra={"maxLength": 20},
        description="Kafka version Strimzi runs: one Strimzi 1.2 supports (its default: 4.3.1)."
    )
    metadataVersion: str = Field(
        "4.3-IV0",
        pattern=METADATA_VERSION,
        max_length=20,
        description="KRaft metadata version of the cluster, in the form Strimzi reports in "
        "status.kafkaMetadataVersion (e.g. 4.3-IV0); not newer than the Kafka version.",
    )
    replicas: int = Field(
        1, ge=1, le=9, description="Nodes of the single dual-role (controller+broker) KafkaNodePool."
    )
    storage: str = Field("10Gi", pattern=QUANTITY, description="Persistent volume size of each Kafka node.")
    deleteClaim: bool = Field(False, description="Delete the Kafka volumes when the cluster is deleted.")
    resources: Resources = Field(default_factory=Resources, description="Resources of each Kafka node.")

    @field_validator("metadataVersion", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return METADATA_OF_MINOR.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> StrimziSpec:
        m = re.match(r"^([0-9]+)\.([0-9]+)-IV([0-9]+)$", self.metadataVersion)
        assert m  # the field's pattern
        mv = tuple(int(g) for g in m.groups())
        v = tuple(int(p) for p in self.version.split("."))
        if mv[:2] > v[:2]:
            raise ValueError(
                f"metadataVersion {self.metadataVersion} is newer than the Kafka version {self.version}"
            )
        if mv < MIN_METADATA_VERSION:
            raise ValueError(f"metadataVersion {self.metadataVersion} is older than 3.3-IV3")
        return self


def _effective(kafka: str, topic: str, field: str, default: int) -> str:
    """CEL: a topic's `field` as the KafkaSpec `kafka` gives it (its override, else the default). The
    API server also checks the rules against the schema's `{}` defaults, before nested defaulting: every
    field read is guarded with has()."""
    o = f"{kafka}.topicOverrides[{topic}]"
    return (f"((has({kafka}.topicOverrides) && {topic} in {kafka}.topicOverrides && has({o}.{field})) "
            f"? {o}.{field} : ((has({kafka}.topics) && has({kafka}.topics.{field})) "
            f"? {kafka}.topics.{field} : {default}))")


def _override_min_insync_ok() -> str:
    """CEL: every override's effective min.insync.replicas (its own, else the default's) fits its
    effective replicas."""
    o = "self.topicOverrides[t]"
    replicas = f"(has({o}.replicas) ? {o}.replicas : self.topics.replicas)"
    own = f"has({o}.config) && '{MIN_INSYNC}' in {o}.config"
    return (f"!has(self.topicOverrides) || self.topicOverrides.all(t, ({own}) ? "
            f"({_min_insync_ok(f'{o}.config', replicas)}) : "
            f"(!has(self.topics.config) || {_min_insync_ok('self.topics.config', replicas)}))")


_EVENT_TOPICS_CEL = str(list(EVENT_TOPICS)).replace('"', "'")
_TOPIC_REPLICAS = TopicSettings.model_fields["replicas"].default


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
                _cel(
                    "!has(self.mode) || self.mode != 'strimzi' || "
                    "self.topics.replicas <= self.strimzi.replicas",
                    "topics.replicas must not exceed strimzi.replicas (the number of brokers) in mode "
                    "strimzi",
                    ".topics.replicas",
                ),
                _cel(
                    "!has(self.mode) || self.mode != 'strimzi' || !has(self.topicOverrides) || "
                    "self.topicOverrides.all(t, !has(self.topicOverrides[t].replicas) || "
                    "self.topicOverrides[t].replicas <= self.strimzi.replicas)",
                    "topicOverrides replicas must not exceed strimzi.replicas (the number of brokers) in "
                    "mode strimzi",
                    ".topicOverrides",
                ),
                _cel(_override_min_insync_ok(), "topicOverrides: " + MIN_INSYNC_MESSAGE, ".topicOverrides"),
                # transition rule (runs on updates only): replicas of an existing topic are fixed
                _cel(
                    _EVENT_TOPICS_CEL + ".all(e, " + _effective("self", "e", "replicas", _TOPIC_REPLICAS)
                    + " == " + _effective("oldSelf", "e", "replicas", _TOPIC_REPLICAS) + ")",
                    "topic replicas cannot change once the platform exists (Strimzi's topic operator refuses "
                    "it without Cruise Control; an external Kafka keeps the topics it has)",
                    ".topics.replicas",
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
            "Kafka; empty or ending in a dot (e.g. `demo.`): the services read it as their topic namespace. "
            "Fixed once the platform exists (it names the topics and consumer groups)."
        ),
        json_schema_extra={"x-kubernetes-validations": [_cel(
            "self == oldSelf",
            "topicPrefix cannot change once the platform exists: it names the existing topics (Strimzi's "
            "topic operator refuses a KafkaTopic whose topicName changes) and consumer groups",
        )]},
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
        brokers = self.strimzi.replicas
        for event, o in self.topicOverrides.items():
            replicas = o.replicas or self.topics.replicas
            if self.mode == "strimzi" and replicas > brokers:
                raise ValueError(
                    f"topicOverrides.{event}.replicas {replicas} exceeds strimzi.replicas {brokers}"
                )
            _check_min_insync({**self.topics.config, **o.config}, replicas, f"topicOverrides.{event}")
        if self.mode == "strimzi" and self.topics.replicas > brokers:
            raise ValueError(f"topics.replicas {self.topics.replicas} exceeds strimzi.replicas {brokers}")
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
            "external: an existing server whose connection Secret is named by secretRef (its keys: see "
            "the database's own description)."
        ),
    )
    storage: str = Field("1Gi", pattern=QUANTITY, description="Size of the data volume (managed).")
    image: str | None = Field(
        None,
        description=(
            "Container image of the database (managed). Default: the official image (postgres:17-alpine, "
            "mongo:8.0, cassandra:5.0, neo4j:5-community, redis:7-alpine); the local node's values name "
            "the image `culture cluster images` builds (127.0.0.1:5000/culture/databases)."
        ),
    )
    deleteClaim: bool = Field(
        False,
        description=(
            "managed: what deleting the CulturePlatform does to the data. false (default): the data volume "
            "and the generated credentials Secret stay, so a CulturePlatform re-created under the same "
            "name finds its data and its password; true: both are deleted with it."
        ),
    )
    secretRef: SecretRef | None = Field(
        None, description="The connection Secret of an external database (keys: `url`, the DSN; for "
        "cassandra `contactPoints` and `port`)."
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
        d: (DatabaseSpec, Field(default_factory=DatabaseSpec,
                                description=f"The {d} database; its connection Secret's keys: "
                                f"{connection_keys_text(d)}."))
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
