"""Catalog settings: CULTURE_CATALOG_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from culture_runtime.worker import WorkerSettings


class CatalogSettings(WorkerSettings):
    """CULTURE_CATALOG_* settings (the Mongo URI and Kafka come from PlatformSettings)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_CATALOG_", extra="ignore")

    consumer_group: str = Field("catalog", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    database: str = Field("catalog", pattern=r"^[A-Za-z0-9_-]{1,63}$", description="MongoDB database")
    outbox_collection: str = Field("catalog_outbox", min_length=1, description="the outbox collection")
    relay_batch_size: int = Field(500, ge=1, le=10000)
    relay_poll_seconds: float = Field(1.0, gt=0, le=60, description="polling fallback of the relay")
    relay_lease_seconds: float = Field(60.0, gt=1, le=3600,
                                       description="how long a relay holds claimed outbox documents")
    cache_ttl_seconds: float = Field(300.0, gt=0, le=86400,
                                     description="TTL of a cached work (jittered +-15%)")
    cache_prefix: str = Field("catalog:", max_length=64, description="prefix of the cache's Redis keys")
    cache_enabled: bool = Field(True, description="read GetWork/BatchGetWorks through Redis")
