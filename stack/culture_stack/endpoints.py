"""The local stack's endpoints as the services' settings: the CULTURE_* variables of
culture_runtime.settings.PlatformSettings that point at the servers `culture stack up` runs.

The services have no defaults for these (a production default must not point at a developer's
machine); `culture dev up`, the tests and the benchmarks pass them explicitly from here.
"""

from __future__ import annotations

import os
from typing import Any

from culture_runtime.settings import PlatformSettings
from culture_stack.ports import CASSANDRA, HOST, KAFKA, REDIS, SMTP
from culture_stack.servers import mongo, neo4j, postgres


def platform_env() -> dict[str, str]:
    """{CULTURE_*: value} of every PlatformSettings endpoint, for the local stack (the values the
    servers also write into <state>/stack.json)."""
    return {
        "CULTURE_KAFKA_BOOTSTRAP": f"{HOST}:{KAFKA}",
        "CULTURE_POSTGRES_DSN": postgres.dsn(),
        "CULTURE_MONGO_URI": mongo.URI,
        "CULTURE_REDIS_URL": f"redis://{HOST}:{REDIS}/0",
        "CULTURE_CASSANDRA_CONTACT_POINTS": HOST,
        "CULTURE_CASSANDRA_PORT": str(CASSANDRA),
        # the credentials travel in the URI, as in the operator's connection Secrets
        "CULTURE_NEO4J_URI": neo4j.URI.replace("bolt://", f"bolt://{neo4j.USER}:{neo4j.PASSWORD}@", 1),
        "CULTURE_SMTP_HOST": HOST,
        "CULTURE_SMTP_PORT": str(SMTP),
    }


def with_platform_env(env: dict[str, str]) -> dict[str, str]:
    """`env` plus the stack's endpoints for every variable `env` does not set itself."""
    return {**platform_env(), **env}


def platform_settings(**overrides: Any) -> PlatformSettings:
    """PlatformSettings for the local stack: the CULTURE_* environment and `overrides` win over the
    stack's values."""
    prefix = "CULTURE_"
    stack = {name.removeprefix(prefix).lower(): value for name, value in platform_env().items()
             if name not in os.environ}
    return PlatformSettings(**{**stack, **overrides})
