"""Notifier settings: CULTURE_NOTIFIER_* environment variables (Redis and Kafka from PlatformSettings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from culture_runtime.worker import WorkerSettings


class NotifierSettings(WorkerSettings):
    """CULTURE_NOTIFIER_* settings."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_NOTIFIER_", extra="ignore")

    consumer_group: str = Field("notifier", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    job_ttl_seconds: int = Field(7 * 86400, ge=60, description="job record lifetime after a change")
    watch_max_seconds: float = Field(600.0, gt=0, description="longest a WatchJob stream stays open")
