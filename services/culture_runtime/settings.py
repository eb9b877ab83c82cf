"""Settings every service reads: where the platform's servers are.

Parsed once from CULTURE_* environment variables into a typed object. There are no defaults for the
endpoints: a role names the ones it uses (`PlatformSettings.require`), and starting it without them
fails with the list of missing variables. In a cluster the operator sets them; on a developer
machine `culture dev up` and the tests pass the local stack's (culture_stack.endpoints).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingSettings(ValueError):
    """Settings a role needs are not set; the message names each variable and what it is."""


class PlatformSettings(BaseSettings):
    """Endpoints of the shared infrastructure (CULTURE_KAFKA_BOOTSTRAP, CULTURE_POSTGRES_DSN, ...)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_", extra="ignore")

    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers (host:port,...)")
    postgres_dsn: str | None = Field(None, description="PostgreSQL DSN (postgresql://user:pw@host:port/db)")
    mongo_uri: str | None = Field(None, description="MongoDB connection string (mongodb://host:port/...)")
    redis_url: str | None = Field(None, description="Redis URL (redis://host:port/db)")
    cassandra_contact_points: str | None = Field(None, description="comma-separated Cassandra hosts")
    cassandra_port: int = Field(9042, ge=1, le=65535, description="Cassandra's CQL port")
    neo4j_uri: str | None = Field(None, description="Neo4j Bolt URI (bolt://host:port)")
    smtp_host: str | None = Field(None, description="SMTP server for outgoing mail")
    smtp_port: int = Field(25, ge=1, le=65535, description="port of the SMTP server")
    client_address_key: SecretStr | None = Field(
        None, min_length=16, description="key of the HMAC the gateway signs client addresses with and "
        "identity verifies (culture_contracts.client_address); unset: identity ignores forwarded addresses "
        "and limits per caller")
    topic_namespace: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                                 description="prefix of every event topic ('<ns>.identity.user-registered'), "
                                 "so several installations or test runs can share one Kafka; empty for the "
                                 "plain names. Every service of one installation must agree on it.")

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable `field` is read from (KeyError when there is no such field)."""
        if field not in cls.model_fields:
            raise KeyError(f"PlatformSettings has no field {field!r}")
        return str(cls.model_config.get("env_prefix", "")).upper() + field.upper()

    def require(self, *fields: str) -> PlatformSettings:
        """Self, when every one of `fields` is set; else MissingSettings naming each missing variable."""
        missing = [f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            lines = "\n".join(f"  {self.env_name(f)}: {PlatformSettings.model_fields[f].description}"
                              for f in missing)
            raise MissingSettings(f"missing settings (environment variables):\n{lines}")
        return self

    def topic(self, name: str) -> str:
        """The topic `name` (e.g. topic_of(UserRegistered)) in this installation's namespace."""
        return f"{self.topic_namespace}.{name}" if self.topic_namespace else name
