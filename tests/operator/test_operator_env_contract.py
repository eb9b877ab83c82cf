"""The env contract between the operator and the services: every CULTURE_* variable a pod gets is one
a settings class of that pod's service reads, every role gets what it needs, and the settings classes,
fed the pod's environment, parse into the values the spec asked for."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from culture_catalog.settings import CatalogSettings
from culture_feed.settings import FeedSettings
from culture_gateway.settings import GatewaySettings
from culture_graph.settings import GraphSettings
from culture_grpc.server import GrpcServerSettings
from culture_identity.settings import IdentitySettings
from culture_identity.tokens import TokenSigner, TokenVerifier
from culture_mailer.settings import MailerSettings
from culture_notifier.settings import NotifierSettings
from culture_operator import builders as b
from culture_operator.spec import SERVICE_DATABASES, SERVICE_ROLES, parse_spec
from culture_runtime.metrics import MetricsSettings
from culture_runtime.serve import roles_of
from culture_runtime.settings import PlatformSettings

pytestmark = pytest.mark.unit

OWNER = b.Owner(name="demo", namespace="ns1", uid="uid-1")
KEY = b.SigningKey.from_seed(bytes(range(32)))
ADDRESS_KEY = "client-address-key-of-the-test"

#: the settings classes each service's processes read (besides PlatformSettings)
SERVICE_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "identity": (GrpcServerSettings, MetricsSettings, IdentitySettings),
    "catalog": (GrpcServerSettings, MetricsSettings, CatalogSettings),
    "notifier": (GrpcServerSettings, MetricsSettings, NotifierSettings),
    "mailer": (GrpcServerSettings, MetricsSettings, MailerSettings),
    "gateway": (GatewaySettings, MetricsSettings),
    "feed": (GrpcServerSettings, MetricsSettings, FeedSettings),
    "graph": (GrpcServerSettings, MetricsSettings, GraphSettings),
    "chat": (GrpcServerSettings, MetricsSettings),
}

#: endpoint variable of each database
DB_VARS = {
    "postgres": {"CULTURE_POSTGRES_DSN"},
    "mongo": {"CULTURE_MONGO_URI"},
    "redis": {"CULTURE_REDIS_URL"},
    "neo4j": {"CULTURE_NEO4J_URI"},
    "cassandra": {"CULTURE_CASSANDRA_CONTACT_POINTS", "CULTURE_CASSANDRA_PORT"},
}


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Every variable a settings class reads (prefix + field name, or the field's alias)."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif alias is not None:
            names |= {str(choice).upper() for choice in getattr(alias, "choices", [])}
        else:
            names.add(prefix + name.upper())
    return names


def required(service: str, role: str) -> set[str]:
    """What a pod of `service` cannot run correctly in a cluster without (checked by hand, not derived)."""
    need = {"CULTURE_KAFKA_BOOTSTRAP", "CULTURE_TOPIC_NAMESPACE",
            "CULTURE_METRICS_HOST", "CULTURE_METRICS_PORT"}
    for db in SERVICE_DATABASES[service]:
        need |= DB_VARS[db]
    if service == "gateway":
        need |= {"CULTURE_GATEWAY_HOST", "CULTURE_GATEWAY_PORT", "CULTURE_GATEWAY_IDENTITY_WRITE",
                 "CULTURE_GATEWAY_IDENTITY_READ", "CULTURE_GATEWAY_NOTIFIER",
                 "CULTURE_GATEWAY_REQUIRED_UPSTREAMS"}
    else:
        need |= {"CULTURE_GRPC_HOST", "CULTURE_GRPC_PORT"}
    if service == "identity" and role == "api-write":  # the only role that signs
        need |= {"CULTURE_IDENTITY_SIGNING_KEY", "CULTURE_IDENTITY_SIGNING_KEY_ID",
                 "CULTURE_IDENTITY_VERIFICATION_KEYS", "CULTURE_IDENTITY_DEV_KEYS"}
    if service == "identity" and role == "api-read":  # verifies with the public keys
        need |= {"CULTURE_IDENTITY_PUBLIC_KEY", "CULTURE_IDENTITY_SIGNING_KEY_ID",
                 "CULTURE_IDENTITY_VERIFICATION_KEYS", "CULTURE_IDENTITY_DEV_KEYS"}
    if service in ("catalog", "feed", "graph", "notifier", "mailer"):
        need.add(f"CULTURE_{service.upper()}_CONSUMER_GROUP")
    if service == "feed":
        need.add("CULTURE_FEED_GRAPH_READ")
    if service == "mailer":
        need |= {"CULTURE_SMTP_HOST", "CULTURE_SMTP_PORT"}
    return need


FULL = {
    "kafka": {"mode": "external", "bootstrapServers": ["k1:9092", "k2:9092"], "topicPrefix": "blue.",
              "topics": {"partitions": 4}},
    "databases": {"postgres": {"mode": "external", "secretRef": {"name": "pg"}},
                  "cassandra": {"mode": "external", "secretRef": {"name": "cass"}}},
    "smtp": {"host": "mail.example", "port": 587, "startTLS": True, "secretRef": {"name": "smtp"}},
}


def built(spec_raw: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    spec = parse_spec(spec_raw)
    items = b.build_children(OWNER, spec, dict.fromkeys(b.managed_databases(spec), "pw"), KEY, ADDRESS_KEY)
    wiring = next(m for m in items if m["kind"] == "ConfigMap")["data"]
    deployments = {m["metadata"]["name"]: m for m in items if m["kind"] == "Deployment"}
    return wiring, deployments, items


def container(dep: dict[str, Any]) -> dict[str, Any]:
    return dep["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("raw", [{}, FULL], ids=["managed", "external"])
def test_every_variable_a_pod_gets_is_read_by_its_service(raw: dict[str, Any]) -> None:
    wiring, deployments, _ = built(raw)
    platform = env_names(PlatformSettings)
    every = set().union(platform, *(env_names(c) for cs in SERVICE_SETTINGS.values() for c in cs))
    shared = {n for n in wiring if n.startswith("CULTURE_")}
    assert shared <= platform, "the shared ConfigMap holds PlatformSettings only"
    for service, roles in SERVICE_ROLES.items():
        reads = set().union(platform, *(env_names(c) for c in SERVICE_SETTINGS[service]))
        for role in roles:
            names = {e["name"] for e in container(deployments[f"demo-{service}-{role}"])["env"]}
            culture = {n for n in names if n.startswith("CULTURE_")}
            assert culture <= every, f"{service} {role}: nobody reads {sorted(culture - every)}"
            assert culture <= reads, f"{service} {role}: {service} does not read {sorted(culture - reads)}"
            missing = required(service, role) - culture - set(wiring)
            assert not missing, f"{service} {role} lacks {sorted(missing)}"


def test_built_roles_are_a_subset_of_the_operators_roles() -> None:
    """`culture serve` must know every role the operator deploys for a built service."""
    for service, roles in SERVICE_ROLES.items():
        assert set(roles_of(service)) <= set(roles), f"{service}: roles the operator does not deploy"


def resolve(
    env: list[dict[str, Any]], wiring: dict[str, str], secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment the kubelet would give the container."""
    out = dict(wiring)
    for e in env:
        if "value" in e:
            out[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = secrets[ref["name"]][ref["key"]]
    return out


def test_settings_parse_what_the_spec_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    wiring, deployments, items = built(FULL)
    secrets = {m["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in m["data"].items()}
               for m in items if m["kind"] == "Secret"}
    secrets["pg"] = {"url": "postgresql://u:p@db.example:5432/culture"}
    secrets["cass"] = {"contactPoints": "c1,c2", "port": "9142"}
    secrets["smtp"] = {"username": "mailer", "password": "s3cret"}

    def settings_of(name: str, *classes: type[BaseSettings]) -> list[BaseSettings]:
        with monkeypatch.context() as m:
            for var in [v for v in os.environ if v.startswith("CULTURE_")]:
                m.delenv(var)
            for k, v in resolve(container(deployments[name])["env"], wiring, secrets).items():
                m.setenv(k, v)
            return [cls() for cls in classes]

    plat, grpc_s, ident = settings_of("demo-identity-api-write", PlatformSettings, GrpcServerSettings,
                                      IdentitySettings)
    assert plat.kafka_bootstrap == "k1:9092,k2:9092"
    assert plat.topic("identity.user-registered") == "blue.identity.user-registered"
    assert plat.postgres_dsn == "postgresql://u:p@db.example:5432/culture"
    assert plat.redis_url.startswith("redis://:pw@demo-redis.ns1.svc:6379")
    assert (grpc_s.host, grpc_s.port) == ("0.0.0.0", 50051)
    assert ident.dev_keys is False and ident.signing_key_id == KEY.key_id
    assert plat.client_address_key is not None and plat.client_address_key.get_secret_value() == ADDRESS_KEY
    (gateway_platform,) = settings_of("demo-gateway-api", PlatformSettings)
    assert gateway_platform.client_address_key == plat.client_address_key  # gateway signs, identity checks
    assert ident.private_key().public_key() == ident.public_keys()[KEY.key_id]
    # identity api-read: no private key, yet it verifies what api-write signs
    (reader,) = settings_of("demo-identity-api-read", IdentitySettings)
    assert reader.signing_key is None and reader.dev_keys is False
    with pytest.raises(ValueError, match="verify tokens, not sign"):
        reader.private_key()
    token, _ = TokenSigner(KEY.key_id, ident.private_key(), ident.public_keys()).sign("u-1", "reader")
    assert TokenVerifier(reader.public_keys()).verify(token).user_id == "u-1"
    (relay,) = settings_of("demo-identity-relay", IdentitySettings)
    assert relay.signing_key is None and relay.public_key is None

    plat, catalog = settings_of("demo-catalog-worker", PlatformSettings, CatalogSettings)
    assert plat.mongo_uri.startswith("mongodb://culture:pw@demo-mongo.ns1.svc:27017")
    assert catalog.consumer_group == "blue.catalog" and catalog.topic_partitions == 4

    plat, mailer = settings_of("demo-mailer-worker", PlatformSettings, MailerSettings)
    assert (plat.smtp_host, plat.smtp_port) == ("mail.example", 587)
    assert mailer.smtp_starttls and mailer.smtp_username == "mailer"
    assert mailer.smtp_password is not None and mailer.smtp_password.get_secret_value() == "s3cret"

    (gateway,) = settings_of("demo-gateway-api", GatewaySettings)
    assert (gateway.host, gateway.port) == ("0.0.0.0", b.HTTP_PORT)
    assert gateway.identity_read == "demo-identity-api-read.ns1.svc:50051"
    assert gateway.notifier == "demo-notifier-api-read.ns1.svc:50051"
    assert gateway.catalog_write == "demo-catalog-api-write.ns1.svc:50051"
    assert gateway.graph_read == "demo-graph-api-read.ns1.svc:50051"
    assert gateway.feed_read == "demo-feed-api-read.ns1.svc:50051"
    assert gateway.chat_write == "demo-chat-api-write.ns1.svc:50051"
    assert sorted(gateway.required_upstreams) == [
        "catalog-read", "catalog-write", "chat-read", "chat-write", "feed-read", "graph-read", "graph-write",
        "identity-read", "identity-write", "notifier"]

    plat, graph = settings_of("demo-graph-worker", PlatformSettings, GraphSettings)
    assert plat.neo4j_uri.startswith("bolt://neo4j:pw@demo-neo4j.ns1.svc:7687")
    assert graph.consumer_group == "blue.graph" and graph.topic_partitions == 4

    plat, feed = settings_of("demo-feed-worker", PlatformSettings, FeedSettings)
    assert (plat.cassandra_contact_points, plat.cassandra_port) == ("c1,c2", 9142)
    assert feed.consumer_group == "blue.feed" and feed.topic_partitions == 4
    assert feed.graph_read == "demo-graph-api-read.ns1.svc:50051"


def test_gateway_requires_only_enabled_upstreams_and_is_probed_over_http() -> None:
    disabled = {"enabled": False}
    off = {"notifier": disabled, "catalog": disabled, "graph": disabled, "feed": disabled, "chat": disabled}
    _, deployments, items = built({"services": off})
    c = container(deployments["demo-gateway-api"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert json.loads(env["CULTURE_GATEWAY_REQUIRED_UPSTREAMS"]) == ["identity-write", "identity-read"]
    assert "CULTURE_GATEWAY_CATALOG_WRITE" not in env
    assert "CULTURE_GATEWAY_NOTIFIER" not in env
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert [p["name"] for p in c["ports"]] == ["http", "metrics"]
    svc = next(m for m in items if m["kind"] == "Service" and m["metadata"]["name"] == "demo-gateway-api")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]


def signing_key_refs(dep: dict[str, Any]) -> dict[str, str]:
    """env name -> key, of every variable a Deployment takes from the signing-key Secret (env and envFrom)."""
    c = container(dep)
    assert not [f for f in c.get("envFrom", []) if "secretRef" in f], "no Secret is passed whole"
    volumes = dep["spec"]["template"]["spec"].get("volumes", [])
    assert not [v for v in volumes if "secret" in v], "no Secret is mounted"
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in c["env"]
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "demo-identity-signing-key"}


def test_signing_key_secret_and_only_identity_api_write_reads_the_private_key() -> None:
    _, deployments, items = built({})
    secret = next(m for m in items if m["metadata"]["name"] == "demo-identity-signing-key")
    assert b.SigningKey.from_secret_data(secret["data"]) == KEY
    assert base64.b64decode(secret["data"]["public-key"]).decode() == KEY.public
    refs = {name: signing_key_refs(dep) for name, dep in deployments.items()}
    assert refs.pop("demo-identity-api-write") == {
        "CULTURE_IDENTITY_SIGNING_KEY": "signing-key", "CULTURE_IDENTITY_SIGNING_KEY_ID": "signing-key-id",
        "CULTURE_IDENTITY_VERIFICATION_KEYS": "verification-keys"}
    # api-read verifies tokens with the public key; the relay and every other role get nothing of it
    assert refs.pop("demo-identity-api-read") == {
        "CULTURE_IDENTITY_PUBLIC_KEY": "public-key", "CULTURE_IDENTITY_SIGNING_KEY_ID": "signing-key-id",
        "CULTURE_IDENTITY_VERIFICATION_KEYS": "verification-keys"}
    assert not any(refs.values()), "only identity's api roles read the signing-key Secret"


def test_client_address_key_only_where_it_is_used() -> None:
    _, deployments, _ = built({})
    users = {name for name, dep in deployments.items()
             if any(e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "demo-client-address-key"
                    for e in container(dep)["env"])}
    assert users == {"demo-gateway-api", "demo-identity-api-write"}
    # no identity, no key Secret; none given (a caller that leaves it alone), none built
    _, _, items = built({"services": {"identity": {"enabled": False}}})
    assert not [m for m in items if m["metadata"]["name"] == "demo-identity-signing-key"]
    spec = parse_spec({})
    items = b.build_children(OWNER, spec, dict.fromkeys(b.managed_databases(spec), "pw"))
    assert not [m for m in items if m["metadata"]["name"] == "demo-identity-signing-key"]
