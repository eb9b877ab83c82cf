"""The metrics endpoint of a role process: Prometheus' text format on `GET /metrics`.

Every role registers its metrics in prometheus_client's default registry (the event router's
handler counters and latencies, the catalog cache's hits, misses and hit ratio, ...). `culture serve`
serves that registry over HTTP when CULTURE_METRICS_PORT is set; in a cluster the operator sets it on
every pod (port `metrics`, with the prometheus.io/* scrape annotations). Unset, nothing listens: on a
developer machine many roles share one host and would fight over one fixed port.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("culture_runtime")


class MetricsSettings(BaseSettings):
    """Where the role serves its metrics, from CULTURE_METRICS_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_METRICS_")

    host: str = Field("127.0.0.1", description="address of the metrics endpoint; 0.0.0.0 inside a pod")
    port: int | None = Field(None, ge=0, le=65535,
                             description="port of GET /metrics (0 picks a free one); unset: no endpoint")


def serve_metrics(settings: MetricsSettings | None = None,
                  registry: CollectorRegistry = REGISTRY) -> tuple[str, int] | None:
    """Start the metrics endpoint in a daemon thread when a port is set; its (host, port), else None.

    OSError when the port cannot be bound (taken, not permitted).
    """
    settings = settings or MetricsSettings()
    if settings.port is None:
        return None
    server: Any
    server, _thread = start_http_server(settings.port, addr=settings.host, registry=registry)
    host, port = server.server_address[:2]
    log.info("metrics on http://%s:%d/metrics", host, port)
    return str(host), int(port)
