"""Mailer settings: CULTURE_MAILER_* environment variables (SMTP and Redis come from PlatformSettings)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from culture_runtime.worker import WorkerSettings


class MailerSettings(WorkerSettings):
    """CULTURE_MAILER_* settings."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_MAILER_", extra="ignore")

    consumer_group: str = Field("mailer", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    sender: str = Field("CulturePlatform <welcome@culture.local>", min_length=3,
                        description="the From header of the welcome mail")
    message_id_domain: str = Field("mailer.culture.local", pattern=r"^[A-Za-z0-9.-]+$",
                                   description="right-hand side of the Message-IDs the mailer makes")
    smtp_timeout_seconds: float = Field(20.0, gt=0, le=300, description="limit on one SMTP conversation")
    # an attempt may wait for a crashed replica's per-user lock (smtp_timeout + 5 s), then send
    handler_timeout_seconds: float = Field(60.0, gt=0, le=3600, description="limit on one handler attempt")
    smtp_username: str | None = Field(None, description="SMTP AUTH user (none: no AUTH)")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password")
    smtp_starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    ledger_ttl_seconds: int = Field(30 * 86400, ge=3600,
                                    description="how long the per-user ledger is kept (> Kafka retention)")
