"""The accounts database (asyncpg): users, refresh tokens, and the outbox row written with a user."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import asyncpg

from culture.events.v1 import identity_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events import codec
from culture_identity.migrations import migrate, outbox_of
from culture_runtime.startup import until_reachable

_USER_COLUMNS = "user_id, username, email, display_name, password_hash, created_at"


@dataclasses.dataclass(frozen=True)
class UserRow:
    """An account as stored."""

    user_id: str
    username: str
    email: str
    display_name: str
    password_hash: str
    created_at: dt.datetime


class DuplicateField(Exception):
    """A unique field (username or email) is taken."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is taken")
        self.field = field


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked or was used before."""


def _user(row: asyncpg.Record) -> UserRow:
    return UserRow(str(row["user_id"]), row["username"], row["email"], row["display_name"],
                   row["password_hash"], row["created_at"])


class IdentityStore:
    """All SQL of the identity service, on a pool whose search_path is the configured schema."""

    def __init__(self, dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10,
                 registered_topic: str = topic_of(identity_events_pb2.UserRegistered)) -> None:
        self.dsn = dsn
        self.schema = schema
        self.registered_topic = registered_topic
        self.outbox = outbox_of(schema)
        self._min, self._max = min_size, max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("IdentityStore is not connected")
        return self._pool

    async def connect(self) -> None:
        """Open the pool and apply pending migrations."""
        try:
            # a PostgreSQL that is starting (or a busy node) is waited for; one that stays away is not
            self._pool = await until_reachable("identity: PostgreSQL", lambda: asyncpg.create_pool(
                self.dsn, min_size=self._min, max_size=self._max, timeout=10,
                server_settings={"search_path": self.schema, "application_name": "culture-identity"}),
                transient=(OSError, TimeoutError, asyncpg.CannotConnectNowError,
                           asyncpg.TooManyConnectionsError))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise RuntimeError(f"cannot connect to PostgreSQL ({exc!r}); check CULTURE_POSTGRES_DSN "
                               "(locally: `culture stack up postgres`)") from exc
        async with self.pool.acquire() as conn:
            await migrate(conn, self.schema)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        await self.pool.fetchval("SELECT 1")

    async def create_user(self, username: str, email: str, display_name: str, password_hash: str) -> UserRow:
        """Insert the user and its UserRegistered outbox row in ONE transaction.

        The event carries the correlation id in effect (the job id) via the outbox publisher.
        Raises DuplicateField naming the taken field.
        """
        user_id = str(uuid.uuid4())
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO identity_users (user_id, username, email, display_name, password_hash) "
                    f"VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}",
                    uuid.UUID(user_id), username, email, display_name, password_hash)
            except asyncpg.UniqueViolationError as exc:
                field = "email" if "email" in (exc.constraint_name or "") else "username"
                raise DuplicateField(field) from exc
            user = _user(row)
            event = identity_events_pb2.UserRegistered(
                user_id=user.user_id, username=user.username, email=user.email,
                display_name=user.display_name)
            event.register_time.FromDatetime(user.created_at)
            await self.outbox.publisher(conn).publish(self.registered_topic,
                                                      codec.encode(event, key=key_of(event)))
        return user

    async def user_by_id(self, user_id: str) -> UserRow | None:
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM identity_users WHERE user_id = $1",
                                       uuid.UUID(user_id))
        return _user(row) if row else None

    async def user_by_login(self, login: str) -> UserRow | None:
        """By email when the login contains '@', else by username (both stored lowercased)."""
        column = "email" if "@" in login else "username"
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM identity_users WHERE {column} = $1",
                                       login)
        return _user(row) if row else None

    async def update_password_hash(self, user_id: str, password_hash: str) -> None:
        """Store a re-hash (after the hashing parameters were raised)."""
        await self.pool.execute("UPDATE identity_users SET password_hash = $2 WHERE user_id = $1",
                                uuid.UUID(user_id), password_hash)

    async def add_refresh_token(self, token_hash: bytes, user_id: str, expires_at: dt.datetime,
                                family_id: str | None = None) -> None:
        await self.pool.execute(
            "INSERT INTO identity_refresh_tokens (token_hash, user_id, family_id, expires_at) "
            "VALUES ($1, $2, $3, $4)",
            token_hash, uuid.UUID(user_id), uuid.UUID(family_id) if family_id else uuid.uuid4(), expires_at)

    async def rotate_refresh_token(self, old_hash: bytes, new_hash: bytes,
                                   expires_at: dt.datetime) -> UserRow:
        """Mark `old_hash` used and store `new_hash` in its family, atomically; the user it belongs to.

        A token presented a second time means it leaked: the whole family is revoked.
        """
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT user_id, family_id, expires_at, used_at, revoked_at FROM identity_refresh_tokens "
                    "WHERE token_hash = $1 FOR UPDATE", old_hash)
                if row is None:
                    raise RefreshRejected("unknown refresh token")
                reused = row["used_at"] is not None
                if not reused and row["revoked_at"] is None and row["expires_at"] > dt.datetime.now(dt.UTC):
                    await conn.execute(
                        "UPDATE identity_refresh_tokens SET used_at = now() WHERE token_hash = $1", old_hash)
                    await conn.execute(
                        "INSERT INTO identity_refresh_tokens (token_hash, user_id, family_id, expires_at) "
                        "VALUES ($1, $2, $3, $4)", new_hash, row["user_id"], row["family_id"], expires_at)
                    user = await conn.fetchrow(
                        f"SELECT {_USER_COLUMNS} FROM identity_users WHERE user_id = $1", row["user_id"])
                    return _user(user)
            if reused:  # revoke outside the failed branch's transaction so the revocation commits
                await conn.execute("UPDATE identity_refresh_tokens SET revoked_at = now() "
                                   "WHERE family_id = $1 AND revoked_at IS NULL", row["family_id"])
            raise RefreshRejected("refresh token expired, revoked or already used")
