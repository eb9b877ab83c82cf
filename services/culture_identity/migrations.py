"""Versioned, idempotent schema migrations, applied at start-up by every role.

An ordered list of (version, name, statements); a table records what was applied. Concurrent
starts (api-write, api-read and relay starting together, several replicas) serialise on a
session advisory lock, so each migration runs exactly once. Append new migrations; never edit one
that has shipped.
"""

from __future__ import annotations

import dataclasses
import logging

import asyncpg

from culture_events.outbox.postgres import PostgresOutbox

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "identity_schema_migrations"
OUTBOX_TABLE = "identity_outbox"


@dataclasses.dataclass(frozen=True)
class Migration:
    """One schema change: applied in one transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


def outbox_of(schema: str) -> PostgresOutbox:
    """The identity outbox (schema-qualified, so the relay's own connections find it)."""
    return PostgresOutbox(f"{schema}.{OUTBOX_TABLE}")


def migrations(schema: str) -> list[Migration]:
    """Every migration, in order (pure: the SQL for a schema)."""
    return [
        Migration(1, "users", (
            "CREATE TABLE identity_users ("
            " user_id uuid PRIMARY KEY,"
            " username text NOT NULL CONSTRAINT identity_users_username_key UNIQUE,"
            " email text NOT NULL CONSTRAINT identity_users_email_key UNIQUE,"
            " display_name text NOT NULL,"
            " password_hash text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())",
        )),
        Migration(2, "refresh tokens", (
            "CREATE TABLE identity_refresh_tokens ("
            " token_hash bytea PRIMARY KEY,"
            " user_id uuid NOT NULL REFERENCES identity_users (user_id) ON DELETE CASCADE,"
            # tokens of one login chain share a family: a reused (stolen) token revokes the family
            " family_id uuid NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " expires_at timestamptz NOT NULL,"
            " used_at timestamptz,"
            " revoked_at timestamptz)",
            "CREATE INDEX identity_refresh_tokens_family ON identity_refresh_tokens (family_id)",
        )),
        Migration(3, "outbox", tuple(outbox_of(schema).base_schema_sql())),
        # the relay leases rows and counts refused publishes (dead entries) instead of holding a
        # transaction across the publish
        Migration(4, "outbox relay bookkeeping", tuple(outbox_of(schema).relay_schema_sql())),
    ]


def pending(applied: set[int], all_migrations: list[Migration]) -> list[Migration]:
    """The migrations still to apply, in order; refuses a database newer than this code."""
    known = {m.version for m in all_migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise RuntimeError(f"the database has identity migrations {unknown} this build does not know; "
                           "run a newer build (or the wrong CULTURE_IDENTITY_DB_SCHEMA?)")
    return [m for m in sorted(all_migrations, key=lambda m: m.version) if m.version not in applied]


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Apply what is missing in `schema` (created if needed). Returns the versions applied now."""
    lock = f"culture-identity-migrations:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                           " version int PRIMARY KEY, name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())")
        applied = {r["version"] for r in await conn.fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")}
        done = []
        for migration in pending(applied, migrations(schema)):
            async with conn.transaction():
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                                   migration.version, migration.name)
            log.info("identity: applied migration %d (%s) in schema %s",
                     migration.version, migration.name, schema)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)
