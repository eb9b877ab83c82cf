"""Gateway settings: CULTURE_GATEWAY_* environment variables, parsed once and validated."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

UPSTREAMS = ("identity-write", "identity-read", "notifier", "catalog-write", "catalog-read", "graph-write",
             "graph-read", "feed-read", "chat-write", "chat-read")
#: required unless configured otherwise (the catalog's, graph's, feed's and chat's routes answer 503
#: while they are away)
DEFAULT_REQUIRED = ("identity-write", "identity-read", "notifier")


class GatewaySettings(BaseSettings):
    """Where the gateway listens, where its upstreams are, and its limits."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_GATEWAY_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 inside a pod")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port")
    # no defaults: an upstream is where this installation runs it (the operator and `culture dev up`
    # pass each); one not in required_upstreams may stay unset (its routes then answer 503)
    identity_write: str | None = Field(None, description="host:port of identity api-write")
    identity_read: str | None = Field(None, description="host:port of identity api-read")
    notifier: str | None = Field(None, description="host:port of notifier api-read")
    catalog_write: str | None = Field(None, description="host:port of catalog api-write")
    catalog_read: str | None = Field(None, description="host:port of catalog api-read")
    graph_write: str | None = Field(None, description="host:port of graph api-write")
    graph_read: str | None = Field(None, description="host:port of graph api-read")
    feed_read: str | None = Field(None, description="host:port of feed api-read")
    chat_write: str | None = Field(None, description="host:port of chat api-write")
    chat_read: str | None = Field(None, description="host:port of chat api-read")
    required_upstreams: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED),
        description="upstreams that must be SERVING for /healthz to say ready (JSON list)")
    max_body_bytes: int = Field(16 * 1024, ge=256, le=10 * 1024 * 1024, description="larger bodies get 413")
    max_json_depth: int = Field(32, ge=2, le=256, description="bodies nesting arrays/objects deeper get 400")
    rpc_timeout_seconds: float = Field(10.0, gt=0, le=120, description="deadline of unary upstream calls")
    long_poll_max_seconds: float = Field(30.0, gt=0, le=300, description="upper bound of ?wait= on /status")
    heartbeat_seconds: float = Field(15.0, gt=0, le=300, description="SSE/WebSocket keep-alive interval")
    health_interval_seconds: float = Field(1.0, gt=0, le=60, description="upstream health check interval")
    drain_seconds: float = Field(0.0, ge=0, le=60, description="/healthz says 503 this long before stopping")
    trust_forwarded_for: bool = Field(False, description="client address from X-Forwarded-For (proxies)")
    trusted_proxies: int = Field(
        1, ge=1, le=10, description="with trust_forwarded_for: how many proxies in front of the gateway "
        "append to X-Forwarded-For; the client is the rightmost entry they did not write")
    chat_prefix: str = Field("chat:", max_length=64, pattern=r"^[A-Za-z0-9:_.-]*$",
                             description="prefix of the chat's Redis channels and keys (the chat service's "
                             "CULTURE_CHAT_REDIS_PREFIX)")
    presence_ttl_seconds: float = Field(30.0, ge=1, le=600,
                                        description="a WebSocket user counts as online this long after the "
                                        "gateway last refreshed them; a socket that dies silently shows "
                                        "offline within it")
    ws_ping_interval_seconds: float = Field(10.0, gt=0, le=300, description="WebSocket ping interval")
    ws_ping_timeout_seconds: float = Field(10.0, gt=0, le=300,
                                           description="a WebSocket whose pong is this late is closed")
    ws_per_message_deflate: bool = Field(False, description="offer the permessage-deflate extension to "
                                         "WebSocket clients; off: chat frames are small, and compressing "
                                         "each costs CPU on the send path and a zlib context per socket")

    @field_validator("required_upstreams")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(UPSTREAMS))
        if unknown:
            raise ValueError(f"unknown upstreams {unknown}; choose from {list(UPSTREAMS)}")
        return value

    @field_validator("identity_write", "identity_read", "notifier", "catalog_write", "catalog_read",
                     "graph_write", "graph_read", "feed_read", "chat_write", "chat_read")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _required_set(self) -> GatewaySettings:
        missing = [f"CULTURE_GATEWAY_{name.upper().replace('-', '_')}" for name in self.required_upstreams
                   if self.upstream(name) is None]
        if missing:
            raise ValueError(f"missing settings: {', '.join(missing)} (host:port of each required upstream; "
                             "CULTURE_GATEWAY_REQUIRED_UPSTREAMS names the required ones)")
        if self.ws_ping_interval_seconds + self.ws_ping_timeout_seconds > self.presence_ttl_seconds:
            raise ValueError("CULTURE_GATEWAY_WS_PING_INTERVAL_SECONDS + CULTURE_GATEWAY_WS_PING_TIMEOUT_"
                             "SECONDS must not exceed CULTURE_GATEWAY_PRESENCE_TTL_SECONDS (a dead socket "
                             "must be noticed before its presence lapses)")
        return self

    def upstream(self, name: str) -> str | None:
        """host:port of the upstream `name` ("identity-write", ...), None when not configured."""
        return getattr(self, name.replace("-", "_"))
