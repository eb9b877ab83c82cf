"""Settings every service reads: where the platform's servers are.

Parsed once from CULTURE_* environment variables into a typed object; the defaults point at the
local stack (`culture stack up`), so `culture serve` works on a developer machine with no set-up.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from culture_stack import ports


class PlatformSettings(BaseSettings):
    """Endpoints of the shared infrastructure (CULTURE_KAFKA_BOOTSTRAP, CULTURE_POSTGRES_DSN, ...)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_", extra="ignore")

    kafka_bootstrap: str = Field(f"{ports.HOST}:{ports.KAFKA}", description="Kafka bootstrap servers")
    postgres_dsn: str = Field(
        f"postgresql://culture:culture@{ports.HOST}:{ports.POSTGRES}/culture", description="PostgreSQL DSN"
    )
    mongo_uri: str = Field(f"mongodb://{ports.HOST}:{ports.MONGO}/?directConnection=true",
                           description="MongoDB connection string")
    redis_url: str = Field(f"redis://{ports.HOST}:{ports.REDIS}/0", description="Redis URL")
    cassandra_contact_points: str = Field(ports.HOST, description="comma-separated Cassandra hosts")
    cassandra_port: int = Field(ports.CASSANDRA, ge=1, le=65535)
    neo4j_uri: str = Field(f"bolt://{ports.HOST}:{ports.NEO4J_BOLT}", description="Neo4j Bolt URI")
    smtp_host: str = Field(ports.HOST, description="SMTP server for outgoing mail")
    smtp_port: int = Field(ports.SMTP, ge=1, le=65535)
    topic_namespace: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                                 description="prefix of every event topic ('<ns>.identity.user-registered'), "
                                 "so several installations or test runs can share one Kafka; empty for the "
                                 "plain names. Every service of one installation must agree on it.")

    def topic(self, name: str) -> str:
        """The topic `name` (e.g. topic_of(UserRegistered)) in this installation's namespace."""
        return f"{self.topic_namespace}.{name}" if self.topic_namespace else name
