"""The environment the services read: the wiring ConfigMap, each service's env, identity's signing key.

Every CULTURE_* name a pod gets is one a settings class of the services reads. The shared endpoints come
from `culture_runtime.settings.PlatformSettings` itself; the per-service prefixes are the `env_prefix` of
IdentitySettings, CatalogSettings, ..., GrpcServerSettings and GatewaySettings (the operator does not
import those: they pull in the gRPC and Kafka stacks). tests/operator checks every name against the
classes, and that every role gets what it needs.
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

from culture_contracts.signing_keys import encode_private_key, encode_public_key, load_private_key
from culture_operator.builders.names import (
    Owner,
    _b64,
    _meta,
    client_address_secret_name,
    database_secret_name,
    deployment_name,
    kafka_cluster_name,
    signing_key_secret_name,
    wiring_name,
)
from culture_operator.builders.strimzi import KAFKA_PLAIN_PORT
from culture_operator.spec import GROUP, SERVICE_DATABASES, SERVICE_UPSTREAMS, CulturePlatformSpec

# the services' own settings class: env names are derived from it, never spelled twice
from culture_runtime.settings import PlatformSettings

WIRING_HASH = f"{GROUP}/wiring-hash"


HTTP_PORT = 8080


#: env_prefix of each service's settings class (culture_<service>/settings.py)
SERVICE_ENV_PREFIX: dict[str, str] = {
    s: f"CULTURE_{s.upper()}_" for s in ("identity", "catalog", "feed", "graph", "notifier", "mailer",
                                              "gateway")
}


#: env_prefix of culture_grpc.server.GrpcServerSettings (every gRPC role)
GRPC_ENV_PREFIX = "CULTURE_GRPC_"

#: env_prefix of culture_runtime.metrics.MetricsSettings (every role) and the port of GET /metrics
METRICS_ENV_PREFIX = "CULTURE_METRICS_"
METRICS_PORT = 9102


#: the services whose settings are culture_runtime.worker.WorkerSettings (consumer group, topic partitions)
WORKER_SETTINGS_SERVICES = ("catalog", "feed", "graph", "notifier", "mailer")


#: the services whose settings have `topic_partitions` (the partitions of topics they create themselves)
TOPIC_PARTITIONS_SERVICES = ("identity", *WORKER_SETTINGS_SERVICES)


def platform_env(field: str) -> str:
    """The variable PlatformSettings reads `field` from (KeyError when it has no such field)."""
    return PlatformSettings.env_name(field)


def service_env(service: str, field: str) -> str:
    """The variable the settings class of `service` (or `grpc`, `metrics`) reads `field` from."""
    shared = {"grpc": GRPC_ENV_PREFIX, "metrics": METRICS_ENV_PREFIX}
    prefix = shared.get(service) or SERVICE_ENV_PREFIX[service]
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
    "graph-write": ("graph", "api-write"),
    "graph-read": ("graph", "api-read"),
    "feed-read": ("feed", "api-read"),
    "chat-write": ("chat", "api-write"),
    "chat-read": ("chat", "api-read"),
}




#: the keys of the identity signing-key Secret -> the IdentitySettings field each is passed as
SIGNING_KEY_KEYS = {
    "signing-key": "signing_key",
    "public-key": "public_key",
    "signing-key-id": "signing_key_id",
    "verification-keys": "verification_keys",
}

#: identity role -> the keys of the signing-key Secret it gets: only api-write signs (the private key);
#: api-read verifies with the public keys; the relay never touches tokens
IDENTITY_ROLE_KEYS: dict[str, tuple[str, ...]] = {
    "api-write": ("signing-key", "signing-key-id", "verification-keys"),
    "api-read": ("public-key", "signing-key-id", "verification-keys"),
    "relay": (),
}


def topic_namespace(spec: CulturePlatformSpec) -> str:
    """CULTURE_TOPIC_NAMESPACE: services name topics `<namespace>.<topic>`, the operator `<prefix><topic>`."""
    return spec.kafka.topicPrefix.removesuffix(".")


def consumer_group(spec: CulturePlatformSpec, service: str) -> str:
    """A worker's consumer group: the service name, with the platform's prefix (so shared Kafkas are safe)."""
    return f"{spec.kafka.topicPrefix}{service}"


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


def _value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret_value(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def service_address(owner: Owner, spec: CulturePlatformSpec, service: str, role: str) -> str:
    """host:port of an api role's Service, as other pods dial it."""
    return f"{deployment_name(owner, service, role)}.{owner.namespace}.svc:{spec.grpcPort}"


def service_env_vars(
    owner: Owner, spec: CulturePlatformSpec, service: str, role: str
) -> list[dict[str, Any]]:
    """The env of the pods of one role of `service` beyond the shared wiring ConfigMap.

    Secrets go only where they are used: identity's private signing key to its api-write role alone."""
    env: list[dict[str, Any]] = []
    if service == "gateway":
        # the gateway is HTTP only (uvicorn); it reaches its upstreams through their Services
        env += [_value(service_env("gateway", "host"), "0.0.0.0"),
                _value(service_env("gateway", "port"), str(HTTP_PORT))]
        required = []
        for upstream, (svc, svc_role) in GATEWAY_UPSTREAMS.items():
            if spec.service_enabled(svc):
                env.append(_value(service_env("gateway", upstream.replace("-", "_")),
                                  service_address(owner, spec, svc, svc_role)))
                required.append(upstream)
        env.append(_value(service_env("gateway", "required_upstreams"), json.dumps(required)))
    else:
        # 127.0.0.1 (the default) would be unreachable for the kubelet's gRPC probes and the Services
        env += [_value(service_env("grpc", "host"), "0.0.0.0"),
                _value(service_env("grpc", "port"), str(spec.grpcPort))]
    # every role serves GET /metrics (Prometheus) on its pod IP
    env += [_value(service_env("metrics", "host"), "0.0.0.0"),
            _value(service_env("metrics", "port"), str(METRICS_PORT))]
    for db in SERVICE_DATABASES[service]:
        for key, field in DATABASE_ENV[db]:
            env.append(_secret_value(platform_env(field), database_secret_name(owner, spec, db), key))
    if (service, role) in CLIENT_ADDRESS_ROLES:
        # optional: without the Secret, identity ignores forwarded addresses (and says so in its log)
        env.append({"name": platform_env("client_address_key"), "valueFrom": {"secretKeyRef": {
            "name": client_address_secret_name(owner), "key": CLIENT_ADDRESS_KEY, "optional": True}}})
    if service == "identity" and (keys := IDENTITY_ROLE_KEYS[role]):
        secret = signing_key_secret_name(owner)
        env += [_secret_value(service_env("identity", SIGNING_KEY_KEYS[key]), secret, key) for key in keys]
        # never a generated key on the pod's (read-only) disk: each replica would sign with its own
        env.append(_value(service_env("identity", "dev_keys"), "false"))
    for up in SERVICE_UPSTREAMS.get(service, ()):  # the spec refuses a disabled upstream of an enabled caller
        address = service_address(owner, spec, up.service, up.role)
        env.append(_value(service_env(service, up.setting), address))
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


#: the services that share the client-address key: the gateway signs, identity verifies
CLIENT_ADDRESS_SERVICES = ("gateway", "identity")
#: the roles that get it: identity checks forwarded addresses only where it limits logins and registrations
CLIENT_ADDRESS_ROLES = (("gateway", "api"), ("identity", "api-write"))
#: the key of the client-address Secret's data
CLIENT_ADDRESS_KEY = "key"


def build_client_address_secret(owner: Owner, key: str) -> dict[str, Any]:
    """The Secret with the HMAC key of client addresses (generated once, kept across reconciles)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(owner, client_address_secret_name(owner), "gateway", "client-address-key"),
        "type": "Opaque",
        "data": {CLIENT_ADDRESS_KEY: _b64(key)},
    }


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """identity's JWT signing key as its Secret holds it (the forms CULTURE_IDENTITY_* accept)."""

    #: base64url of the Ed25519 private key's 32-byte seed (or PEM, when put in the Secret by hand)
    private: str
    key_id: str
    #: JSON {kid: public key}: older keys still accepted after a rotation
    verification_keys: str = "{}"

    @property
    def public(self) -> str:
        """base64url of the public key: what a verify-only role (identity api-read) gets."""
        return encode_public_key(load_private_key(self.private).public_key())

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
            # derived from signing-key on every reconcile: a key replaced by hand gets its public half
            "public-key": _b64(key.public),
            "signing-key-id": _b64(key.key_id),
            "verification-keys": _b64(key.verification_keys),
        },
    }
