"""PostgreSQL pieces of the event library (asyncpg): the Deduplicator's processed-id store."""

from __future__ import annotations

import re

import asyncpg

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresProcessedStore:
    """Deduplicator store in a table `(key text primary key, expires_at timestamptz)`.

    `seen` ignores expired rows; `mark` inserts or refreshes; expired rows are purged every
    `purge_every` marks, so the table stays small without a separate job.
    """

    def __init__(self, pool: asyncpg.Pool, *, table: str = "processed_messages", ttl: int = 7 * 24 * 3600,
                 purge_every: int = 1000) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"table name {table!r}: use lowercase letters, digits and _")
        self.pool = pool
        self.table = table
        self.ttl = ttl
        self.purge_every = purge_every
        self._marks = 0

    async def create_table(self) -> None:
        """Create the table if missing (idempotent; migrations may do it instead)."""
        await self.pool.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(key text PRIMARY KEY, expires_at timestamptz NOT NULL)")

    async def seen(self, key: str) -> bool:
        """Whether the key was marked within the TTL."""
        row = await self.pool.fetchval(
            f"SELECT 1 FROM {self.table} WHERE key = $1 AND expires_at > now()", key)
        return row is not None

    async def mark(self, key: str) -> None:
        """Record the key for the TTL."""
        await self.pool.execute(
            f"INSERT INTO {self.table} (key, expires_at) VALUES ($1, now() + make_interval(secs => $2)) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at", key, float(self.ttl))
        self._marks += 1
        if self._marks % self.purge_every == 0:
            await self.pool.execute(f"DELETE FROM {self.table} WHERE expires_at <= now()")
