"""Abuse limits (issue #13): registrations limited per client address, login and registration
counters that a burst cannot slip past, and a client address identity believes only when the gateway
signed it (taken from the rightmost X-Forwarded-For entry the gateway's own proxy wrote)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from culture.identity.v1 import identity_pb2, identity_pb2_grpc
from culture_contracts import client_address
from culture_identity.ratelimit import FixedWindow, RegistrationLimiter

from .conftest import (
    CLIENT_ADDRESS_KEY,
    MAX_LOGIN_FAILURES,
    MAX_REGISTRATIONS_PER_ADDRESS,
    SliceRun,
    new_account,
)
from .conftest import (
    client_address as new_address,
)

pytestmark = pytest.mark.integration


async def test_a_burst_of_registrations_from_one_address_gets_exactly_the_limit(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    burst = MAX_REGISTRATIONS_PER_ADDRESS + 6
    replies = await asyncio.gather(*(http.post("/api/register", json=new_account(f"{unique}_{i}"))
                                     for i in range(burst)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [201] * MAX_REGISTRATIONS_PER_ADDRESS + [429] * 6, [r.text for r in replies]
    limited = next(r for r in replies if r.status_code == 429)
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    # another address is not held up by this one's limit
    other = await http.post("/api/register", json=new_account(f"{unique}_o"),
                            headers={"X-Forwarded-For": new_address()})
    assert other.status_code == 201, other.text


async def test_a_burst_of_wrong_passwords_gets_exactly_the_limit(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    assert (await http.post("/api/register", json=account)).status_code == 201
    replies = await asyncio.gather(*(http.post("/api/login", json={"login": unique, "password": f"wrong {i}"})
                                     for i in range(MAX_LOGIN_FAILURES + 7)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [401] * MAX_LOGIN_FAILURES + [429] * 7, codes


async def test_spoofed_leftmost_forwarded_for_entries_share_the_clients_limit(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    assert (await http.post("/api/register", json=account)).status_code == 201
    real = new_address()
    codes = []
    for _ in range(MAX_LOGIN_FAILURES + 1):
        # the client writes whatever it likes on the left; our one proxy appends the real address
        spoofed = f"{new_address()}, {real}"
        reply = await http.post("/api/login", json={"login": unique, "password": "wrong"},
                                headers={"X-Forwarded-For": spoofed})
        codes.append(reply.status_code)
    assert codes == [401] * MAX_LOGIN_FAILURES + [429], codes


async def test_identity_believes_only_addresses_the_gateway_signed(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    assert (await http.post("/api/register", json=account)).status_code == 201
    port = slice_run.supervisor.child("identity", "api-write").port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)

        async def login(metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
            try:
                await identity.Login(identity_pb2.LoginRequest(login=unique, password="wrong"),
                                     metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        # a pod that names a new address on every call (the old x-client-ip, or an unsigned or forged
        # x-client-address) is limited as itself: its own peer address
        forged = [(("x-client-ip", new_address()),),
                  ((client_address.METADATA_KEY, new_address()),),
                  ((client_address.METADATA_KEY, client_address.sign(new_address(), b"not the key" * 3)),)]
        codes = [await login(forged[i % len(forged)]) for i in range(MAX_LOGIN_FAILURES + 1)]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * MAX_LOGIN_FAILURES + [
            grpc.StatusCode.RESOURCE_EXHAUSTED], codes
        # an address the gateway signed (the run's key) is believed: it has its own count
        key = CLIENT_ADDRESS_KEY.encode()
        signed = ((client_address.METADATA_KEY, client_address.sign(new_address(), key)),)
        assert await login(signed) == grpc.StatusCode.UNAUTHENTICATED
        stale = ((client_address.METADATA_KEY, client_address.sign(new_address(), key, now=1_000_000)),)
        assert await login(stale) == grpc.StatusCode.RESOURCE_EXHAUSTED  # too old: the peer's count


async def test_the_counter_lets_exactly_the_limit_through_a_concurrent_burst(slice_run: SliceRun) -> None:
    redis = aioredis.Redis.from_url(slice_run.platform.redis_url)
    try:
        window = FixedWindow(redis, limit=10, window=60)
        key = f"culture:test:burst:{uuid.uuid4().hex}"
        verdicts = await asyncio.gather(*(window.hit(key) for _ in range(50)))
        assert sum(v.allowed for v in verdicts) == 10
        assert sorted(v.count for v in verdicts) == list(range(1, 51))
        assert all(0 < v.retry_after <= 60 for v in verdicts if not v.allowed)
        assert 0 < await redis.ttl(key) <= 60
        await redis.delete(key)
    finally:
        await redis.aclose()


async def test_platforms_sharing_a_redis_count_registrations_apart(slice_run: SliceRun) -> None:
    """Two identity deployments on one Redis, each with its own limits prefix: one using up its
    registrations from an address leaves the other's count for that address untouched."""
    tag = uuid.uuid4().hex
    first, second = (RegistrationLimiter(slice_run.platform.redis_url, per_address=2, total=100, window=60,
                                         prefix=f"culture:test:{tag}:{name}:") for name in ("a", "b"))
    try:
        assert [await first.attempt("127.0.0.1") for _ in range(3)][:2] == [0, 0]
        assert await first.attempt("127.0.0.1") > 0  # the first platform's address is used up
        assert await second.attempt("127.0.0.1") == 0  # the second one's is not
    finally:
        await _drop_keys(slice_run, f"culture:test:{tag}:*")
        for limiter in (first, second):
            await limiter.close()


async def _drop_keys(slice_run: SliceRun, pattern: str) -> None:
    redis = aioredis.Redis.from_url(slice_run.platform.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(pattern)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def test_attempts_the_user_store_could_not_check_do_not_count(slice_run: SliceRun) -> None:
    """Logins tried while PostgreSQL is away are counted (first) and given back once they failed
    undecided: an outage must not lock people out; wrong passwords still count."""
    from culture_identity.ratelimit import LoginLimiter

    tag = uuid.uuid4().hex
    limiter = LoginLimiter(slice_run.platform.redis_url, max_failures=2, window=60,
                           prefix=f"culture:test:{tag}:")
    try:
        for _ in range(5):  # five attempts the store could not check
            assert await limiter.attempt("ada", "127.0.0.1") == 0
            await limiter.undecided("ada", "127.0.0.1")
        assert [await limiter.attempt("ada", "127.0.0.1") for _ in range(2)] == [0, 0]  # two wrong ones
        assert await limiter.attempt("ada", "127.0.0.1") > 0  # the third is refused
        await limiter.undecided("bob", "127.0.0.1")  # nothing counted: nothing to give back
        assert await limiter.attempt("bob", "127.0.0.1") == 0
    finally:
        await _drop_keys(slice_run, f"culture:test:{tag}:*")
        await limiter.close()
