"""The IdentityService servicer: gRPC requests -> validation, store, tokens, rate limiting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid

import argon2
import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2

from culture.identity.v1 import identity_pb2, identity_pb2_grpc
from culture_contracts import client_address
from culture_events import correlation
from culture_grpc.errors import AlreadyExists, ServiceError, Unauthenticated, invalid_argument, not_found
from culture_identity import tokens
from culture_identity.ratelimit import LoginLimiter, RegistrationLimiter
from culture_identity.settings import IdentitySettings
from culture_identity.store import DuplicateField, IdentityStore, RefreshRejected, UserRow
from culture_identity.validation import normalize_email, normalize_username, validate_registration

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = "wrong login or password"


class ResourceExhausted(ServiceError):
    """Too many attempts; the details carry google.rpc.RetryInfo."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def too_many_attempts(retry_after: int, what: str = "login attempts") -> ResourceExhausted:
    """RESOURCE_EXHAUSTED with RetryInfo(retry_delay) for the client's backoff."""
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after))
    return ResourceExhausted(f"too many {what}; retry in {retry_after}s", details=[info])


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def user_message(user: UserRow) -> identity_pb2.User:
    """The public view of an account (never the hash)."""
    return identity_pb2.User(user_id=user.user_id, username=user.username, email=user.email,
                             display_name=user.display_name, create_time=_ts(user.created_at))


def client_ip_of(context: grpc.aio.ServicerContext, key: bytes | None) -> str:
    """The browser's address as the gateway signed it (culture_contracts.client_address), else the
    gRPC peer's own address: an address any caller could write into its metadata counts for nothing."""
    if key is not None:
        for name, value in context.invocation_metadata() or ():
            if name == client_address.METADATA_KEY:
                text = value if isinstance(value, str) else value.decode(errors="replace")
                if (address := client_address.verify(text, key)) is not None:
                    return address
    peer = context.peer() or "unknown"  # e.g. "ipv4:10.0.0.7:51234"
    return peer.rsplit(":", 1)[0]


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    """Serves IdentityService. With `writes=False` (the api-read role) only the read RPCs work."""

    def __init__(self, settings: IdentitySettings, store: IdentityStore,
                 signer: tokens.TokenSigner | tokens.TokenVerifier,
                 limiter: LoginLimiter | None, *, writes: bool = True,
                 registrations: RegistrationLimiter | None = None,
                 client_address_key: bytes | None = None) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.limiter = limiter
        self.registrations = registrations
        self.client_address_key = client_address_key
        self.writes = writes
        self.hasher = argon2.PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism, type=argon2.Type.ID)
        # verified against when the login is unknown, so both failures take the same time
        self._dummy_hash = self.hasher.hash(uuid.uuid4().hex)

    def _require_write_role(self, method: str) -> None:
        if not self.writes:
            raise NotImplementedError(f"{method} is served by the identity api-write role")

    def _sign(self, user: UserRow) -> tuple[str, dt.datetime]:
        if not isinstance(self.signer, tokens.TokenSigner):  # a verify-only role holds no private key
            raise NotImplementedError("signing tokens is done by the identity api-write role")
        return self.signer.sign(user.user_id, user.username)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)  # CPU-bound: keep the loop free

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
            return False

    async def Register(self, request: identity_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> identity_pb2.RegisterResponse:
        self._require_write_role("Register")
        reg, violations = validate_registration(request.username, request.email, request.password,
                                                request.display_name,
                                                password_min_length=self.settings.password_min_length)
        if reg is None:
            raise invalid_argument(violations, "the registration has invalid fields")
        # counted before the (costly) hash; a refused attempt costs one Redis round trip
        if self.registrations is not None and (
                wait := await self.registrations.attempt(client_ip_of(context, self.client_address_key))):
            raise too_many_attempts(wait, "registrations from this address")
        job_id = correlation.current() or uuid.uuid4().hex
        password_hash = await self._hash(reg.password)
        with correlation.bound(job_id):  # the outbox row carries the job id as correlation id
            try:
                user = await self.store.create_user(reg.username, reg.email, reg.display_name, password_hash)
            except DuplicateField as exc:
                bad = error_details_pb2.BadRequest(field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=exc.field,
                                                                description=f"this {exc.field} is taken")])
                message = f"an account with this {exc.field} exists already"
                raise AlreadyExists(message, details=[bad]) from exc
        log.info("identity: registered user %s (job %s)", user.user_id, job_id)
        return identity_pb2.RegisterResponse(user=user_message(user), job_id=job_id)

    async def _token_pair(self, user: UserRow, family_id: str | None = None) -> identity_pb2.TokenPair:
        access, access_exp = self._sign(user)
        refresh = tokens.new_refresh_token()
        refresh_exp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        await self.store.add_refresh_token(tokens.hash_refresh_token(refresh), user.user_id, refresh_exp,
                                           family_id)
        return identity_pb2.TokenPair(access_token=access, access_token_expire_time=_ts(access_exp),
                                      refresh_token=refresh, refresh_token_expire_time=_ts(refresh_exp))

    async def Login(self, request: identity_pb2.LoginRequest,
                    context: grpc.aio.ServicerContext) -> identity_pb2.LoginResponse:
        self._require_write_role("Login")
        login = normalize_email(request.login) if "@" in request.login else normalize_username(request.login)
        ip = client_ip_of(context, self.client_address_key)
        # counted first (one atomic INCR): a burst of guesses cannot all pass a check made before any
        # of them is counted
        if self.limiter is not None and (wait := await self.limiter.attempt(login, ip)):
            raise too_many_attempts(wait)
        try:
            user = await self.store.user_by_login(login) if login else None
            ok = await self._verify(user.password_hash if user else self._dummy_hash, request.password)
        except Exception:
            if self.limiter is not None:
                with contextlib.suppress(Exception):  # best effort: the caller sees the first error
                    await self.limiter.undecided(login, ip)
            raise
        if not ok or user is None:
            raise Unauthenticated(WRONG_CREDENTIALS)
        if self.limiter is not None:
            await self.limiter.succeeded(login, ip)
        if self.hasher.check_needs_rehash(user.password_hash):
            await self.store.update_password_hash(user.user_id, await self._hash(request.password))
        return identity_pb2.LoginResponse(tokens=await self._token_pair(user), user=user_message(user))

    async def Refresh(self, request: identity_pb2.RefreshRequest,
                      context: grpc.aio.ServicerContext) -> identity_pb2.RefreshResponse:
        self._require_write_role("Refresh")
        if not request.refresh_token:
            raise Unauthenticated("refresh token missing")
        new_refresh = tokens.new_refresh_token()
        refresh_exp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.refresh_token_ttl_seconds)
        try:
            user = await self.store.rotate_refresh_token(tokens.hash_refresh_token(request.refresh_token),
                                                         tokens.hash_refresh_token(new_refresh), refresh_exp)
        except RefreshRejected as exc:
            raise Unauthenticated("refresh token invalid, expired or already used; log in again") from exc
        access, access_exp = self._sign(user)
        return identity_pb2.RefreshResponse(tokens=identity_pb2.TokenPair(
            access_token=access, access_token_expire_time=_ts(access_exp),
            refresh_token=new_refresh, refresh_token_expire_time=_ts(refresh_exp)))

    async def ValidateToken(self, request: identity_pb2.ValidateTokenRequest,
                            context: grpc.aio.ServicerContext) -> identity_pb2.ValidateTokenResponse:
        try:
            claims = self.signer.verify(request.access_token)
        except tokens.InvalidToken as exc:
            log.info("identity: rejected access token: %s", exc)
            raise Unauthenticated("access token invalid or expired") from exc
        return identity_pb2.ValidateTokenResponse(user_id=claims.user_id, username=claims.username,
                                                  issue_time=_ts(claims.issued_at),
                                                  expire_time=_ts(claims.expires_at))

    async def GetUser(self, request: identity_pb2.GetUserRequest,
                      context: grpc.aio.ServicerContext) -> identity_pb2.GetUserResponse:
        user = await self.store.user_by_id(request.user_id)
        if user is None:
            raise not_found("user", request.user_id)
        return identity_pb2.GetUserResponse(user=user_message(user))
