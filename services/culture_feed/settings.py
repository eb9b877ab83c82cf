"""Feed settings: CULTURE_FEED_* environment variables."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from culture_runtime.cassandra import CassandraSettings
from culture_runtime.settings import MissingSettings
from culture_runtime.worker import WorkerSettings


class FeedSettings(WorkerSettings, CassandraSettings):
    """CULTURE_FEED_* settings (Cassandra's contact points and Kafka come from PlatformSettings; the
    keyspace's replication and the driver's knobs from CassandraSettings)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_FEED_", extra="ignore")

    consumer_group: str = Field("feed", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    graph_read: str | None = Field(None, description="host:port of the graph's api-read (the worker asks it "
                                   "for the followers interested in a review's genres)")
    keyspace: str = Field("culture_feed", pattern=r"^[a-z][a-z0-9_]{0,47}$", description="Cassandra keyspace")
    follow_pointer: bool = Field(True, description="use the keyspace and consumer group a rebuild "
                                 "(`culture replay feed`) recorded in this keyspace's meta table, if any "
                                 "(culture_feed.pointer)")
    bucket_seconds: int = Field(30 * 86400, ge=60, le=366 * 86400,
                                description="time span of one timeline partition; fixed once the keyspace "
                                "holds data (the start-up refuses a different value)")
    item_ttl_days: int = Field(90, ge=0, le=3650, description="timeline items expire after this many days "
                               "(0: never)")
    write_concurrency: int = Field(256, ge=1, le=1024,
                                   description="timeline writes in flight per fan-out batch")
    celebrity_threshold: int = Field(10_000, ge=1, le=100_000_000,
                                     description="an author with more interested followers than this gets "
                                     "no copies; readers merge their reviews in at read time")
    celebrity_cache_seconds: float = Field(5.0, ge=0, le=3600,
                                           description="how long api-read caches the set of celebrities")
    backfill_items: int = Field(20, ge=0, le=1000,
                                description="on a new follow, copy this many recent reviews of the followee")
    interested_page_size: int = Field(1000, ge=1, le=5000,
                                      description="followers asked from the graph per page during fan-out")
    refused_usernames: str = Field(
        "", max_length=1000,
        description="admission policy: a regular expression; users whose username matches it in full get "
        "no feed (FeedCreationFailed), e.g. '(admin|root|support)' or 'svc-.*' for service accounts. "
        "Empty: refuse none")
    graph_timeout_seconds: float = Field(10.0, gt=0, le=600, description="limit on one graph call")

    @field_validator("refused_usernames")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def require(self, *fields: str) -> FeedSettings:
        """Self when every one of `fields` is set; else MissingSettings naming each variable."""
        missing = [f for f in fields if getattr(self, f) in (None, "")]
        if missing:
            lines = "\n".join(f"  CULTURE_FEED_{f.upper()}: {FeedSettings.model_fields[f].description}"
                              for f in missing)
            raise MissingSettings(f"missing settings (environment variables):\n{lines}")
        return self
