"""Chat settings: CULTURE_CHAT_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from culture_runtime.cassandra import CassandraSettings


class ChatSettings(CassandraSettings):
    """CULTURE_CHAT_* settings (Cassandra's contact points, Redis and Kafka come from PlatformSettings;
    the keyspace's replication and the driver's knobs from CassandraSettings)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_CHAT_", extra="ignore")

    keyspace: str = Field("culture_chat", pattern=r"^[a-z][a-z0-9_]{0,47}$", description="Cassandra keyspace")
    bucket_seconds: int = Field(10 * 86400, ge=60, le=366 * 86400,
                                description="time span of one message partition; fixed once the keyspace "
                                "holds data (the start-up refuses a different value)")
    redis_prefix: str = Field("chat:", max_length=64, pattern=r"^[A-Za-z0-9:_.-]*$",
                              description="prefix of the chat's Redis channels and keys (the gateway's "
                              "CULTURE_GATEWAY_CHAT_PREFIX must match)")
    outbox_shards: int = Field(8, ge=1, le=256, description="outbox partitions (a conversation's events "
                               "stay in one, in order); fixed once the keyspace holds data")
    outbox_ttl_days: int = Field(7, ge=1, le=90, description="outbox entries expire after this many days")
    outbox_grace_seconds: float = Field(3.0, ge=0.5, le=60, description="the relay publishes an entry once "
                                        "it is this old (a slower write would be passed by the cursor; "
                                        "the outbox write's own timeout stays below it)")
    client_id_ttl_seconds: int = Field(86400, ge=60, le=30 * 86400,
                                       description="how long a client message id is claimed in Redis: a "
                                       "retried send within it is always a no-op (culture_chat.claims)")
    relay_poll_seconds: float = Field(0.5, gt=0, le=60, description="how often the relay looks for entries")
    relay_batch_size: int = Field(500, ge=1, le=5000, description="entries per relay round")
    relay_lease_seconds: int = Field(30, ge=5, le=600, description="how long a relay holds an outbox shard "
                                     "without renewing it")
    topic_partitions: int = Field(3, ge=1, le=1000, description="partitions of chat.message-sent when the "
                                  "relay creates it")
