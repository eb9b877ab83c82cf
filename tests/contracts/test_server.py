"""The shared server bootstrap, exercised with real grpc clients over loopback (no stack servers).

A trivial servicer stands in for a service: health, reflection, correlation ids, error mapping,
the default deadline and server streaming must all work through the standard interceptor chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from culture.identity.v1 import identity_pb2, identity_pb2_grpc
from culture.notifier.v1 import notifier_pb2, notifier_pb2_grpc
from culture_events import correlation
from culture_grpc import (
    CORRELATION_ID_KEY,
    GrpcServer,
    GrpcServerSettings,
    field_violations_of,
    insecure_channel,
    invalid_argument,
    not_found,
    status_details_of,
)

pytestmark = pytest.mark.unit

IDENTITY = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"]
NOTIFIER = notifier_pb2.DESCRIPTOR.services_by_name["NotifierService"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LEAKY_SECRET = "hunter2"
# user ids are UUIDs by contract: these stand for a known user, an unknown one, a slow store
U1 = "00000000-0000-4000-8000-000000000001"
MISSING = "00000000-0000-4000-8000-00000000dead"
SLOW_STORE = "00000000-0000-4000-8000-000000000510"
STORE_AWAY = "00000000-0000-4000-8000-000000000503"
REGISTERED: list[str] = []  # the usernames TrivialIdentity.Register was called with


class TrivialIdentity(identity_pb2_grpc.IdentityServiceServicer):
    """Answers from memory; each RPC exercises one path of the interceptor chain."""

    async def GetUser(self, request: identity_pb2.GetUserRequest, context: grpc.aio.ServicerContext):
        if request.user_id == MISSING:
            raise not_found("user", request.user_id)
        if request.user_id == SLOW_STORE:
            raise TimeoutError("the store did not answer")
        if request.user_id == STORE_AWAY:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        # Echo the correlation id in effect, so the test sees what the servicer saw.
        return identity_pb2.GetUserResponse(
            user=identity_pb2.User(user_id=request.user_id, display_name=correlation.current() or "")
        )

    async def Register(self, request: identity_pb2.RegisterRequest, context: grpc.aio.ServicerContext):
        REGISTERED.append(request.username)
        if request.username == "admin":  # a rule of the domain, not of the contract
            raise invalid_argument({"username": "is reserved"})
        return identity_pb2.RegisterResponse(
            user=identity_pb2.User(username=request.username), job_id="job-1"
        )

    async def Login(self, request: identity_pb2.LoginRequest, context: grpc.aio.ServicerContext):
        raise RuntimeError(f"cannot connect: password {LEAKY_SECRET} rejected")  # a bug, not a domain error

    async def ValidateToken(
        self, request: identity_pb2.ValidateTokenRequest, context: grpc.aio.ServicerContext
    ):
        await asyncio.Event().wait()  # never answers: only the server's default timeout ends it


class TrivialNotifier(notifier_pb2_grpc.NotifierServiceServicer):
    """Streams two snapshots of a job, or fails before the first for an unknown job."""

    async def WatchJob(
        self, request: notifier_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[notifier_pb2.WatchJobResponse]:
        if request.job_id == "missing-job":
            raise not_found("job", request.job_id)
        for state in (notifier_pb2.JOB_STATE_RUNNING, notifier_pb2.JOB_STATE_SUCCEEDED):
            yield notifier_pb2.WatchJobResponse(job=notifier_pb2.Job(job_id=request.job_id, state=state))


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    settings = GrpcServerSettings(
        host="127.0.0.1", port=0, default_timeout_seconds=0.5, drain_seconds=0.2, grace_seconds=2
    )
    server = GrpcServer("trivial", settings)
    server.add_service(IDENTITY, TrivialIdentity(), identity_pb2_grpc.add_IdentityServiceServicer_to_server)
    server.add_service(NOTIFIER, TrivialNotifier(), notifier_pb2_grpc.add_NotifierServiceServicer_to_server)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield channel


async def check(channel: grpc.aio.Channel, service: str = "") -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return response.status


async def test_health_is_not_serving_until_ready_and_again_during_shutdown(
    server: GrpcServer, channel: grpc.aio.Channel
) -> None:
    assert server.port > 0
    assert await check(channel) == NOT_SERVING
    assert await check(channel, IDENTITY.full_name) == NOT_SERVING

    await server.set_ready()
    assert await check(channel) == SERVING
    assert await check(channel, IDENTITY.full_name) == SERVING
    assert await check(channel, NOTIFIER.full_name) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await check(channel, "culture.nope.v1.NopeService")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    # A watcher (what a load balancer or probe sees) learns about the shutdown before it happens.
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == SERVING
    stopping = asyncio.create_task(server.stop())
    assert (await asyncio.wait_for(watch.read(), timeout=5)).status == NOT_SERVING
    watch.cancel()  # as a probe would; an open stream would hold the shutdown for the whole grace period
    await asyncio.wait_for(stopping, timeout=10)
    await server.set_ready()  # too late: a stopping server stays NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def reflect(channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest):
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter([request]), timeout=5)
    async for response in call:
        return response
    raise AssertionError("no reflection response")


async def test_reflection_lists_services_and_serves_their_descriptors(channel: grpc.aio.Channel) -> None:
    listed = await reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in listed.list_services_response.service}
    assert {IDENTITY.full_name, NOTIFIER.full_name, "grpc.health.v1.Health"} <= names

    found = await reflect(
        channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=IDENTITY.full_name)
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in found.file_descriptor_response.file_descriptor_proto
    ]
    identity_file = next(f for f in files if f.name == "culture/identity/v1/identity.proto")
    (service,) = identity_file.service
    assert {m.name for m in service.method} == {"Register", "Login", "Refresh", "ValidateToken", "GetUser"}


async def test_correlation_id_reaches_the_servicer_and_comes_back(
    server: GrpcServer, channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    caplog.set_level(logging.INFO, logger="culture_grpc.access")

    call = stub.GetUser(
        identity_pb2.GetUserRequest(user_id=U1), metadata=((CORRELATION_ID_KEY, "cid-123"),)
    )
    assert (await call).user.display_name == "cid-123"
    assert (CORRELATION_ID_KEY, "cid-123") in tuple(await call.trailing_metadata())
    assert any(
        "/culture.identity.v1.IdentityService/GetUser OK" in r.getMessage() and "cid-123" in r.getMessage()
        for r in caplog.records
    )

    # Without one, the server makes one up and says which.
    call = stub.GetUser(identity_pb2.GetUserRequest(user_id=U1))
    generated = (await call).user.display_name
    assert len(generated) == 32
    assert (CORRELATION_ID_KEY, generated) in tuple(await call.trailing_metadata())

    # A call made while a correlation id is in effect carries it (the client-side interceptor).
    async with insecure_channel(server.address) as propagating:
        with correlation.bound("cid-from-an-event"):
            response = await identity_pb2_grpc.IdentityServiceStub(propagating).GetUser(
                identity_pb2.GetUserRequest(user_id=U1), timeout=5
            )
    assert response.user.display_name == "cid-from-an-event"


async def test_domain_errors_map_to_statuses_with_details(channel: grpc.aio.Channel) -> None:
    stub = identity_pb2_grpc.IdentityServiceStub(channel)

    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.Register(
            identity_pb2.RegisterRequest(username="admin", email="ada@example.org", password="long enough"),
            metadata=((CORRELATION_ID_KEY, "cid-err"),),
            timeout=5,
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations_of(invalid.value) == {"username": "is reserved"}
    assert (CORRELATION_ID_KEY, "cid-err") in tuple(invalid.value.trailing_metadata())

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetUser(identity_pb2.GetUserRequest(user_id=MISSING), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    (info,) = status_details_of(missing.value, error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("user", MISSING)

    # A dependency's timeout is retryable.
    with pytest.raises(grpc.aio.AioRpcError) as slow:
        await stub.GetUser(identity_pb2.GetUserRequest(user_id=SLOW_STORE), timeout=5)
    assert slow.value.code() == grpc.StatusCode.UNAVAILABLE
    # So is a dependency that refuses connections (a database away), not INTERNAL.
    with pytest.raises(grpc.aio.AioRpcError) as away:
        await stub.GetUser(identity_pb2.GetUserRequest(user_id=STORE_AWAY), timeout=5)
    assert away.value.code() == grpc.StatusCode.UNAVAILABLE

    # An unexpected exception is INTERNAL, and its message (which may hold secrets) stays in the log.
    with pytest.raises(grpc.aio.AioRpcError) as internal:
        await stub.Login(identity_pb2.LoginRequest(login="ada", password="x"), timeout=5)
    assert internal.value.code() == grpc.StatusCode.INTERNAL
    assert LEAKY_SECRET not in internal.value.details()
    assert "correlation id" in internal.value.details()


async def test_calls_without_a_deadline_get_the_default_timeout(channel: grpc.aio.Channel) -> None:
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    started = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as timed_out:
        await stub.ValidateToken(identity_pb2.ValidateTokenRequest(access_token="t"))
    assert timed_out.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "default timeout" in timed_out.value.details()
    assert asyncio.get_running_loop().time() - started < 5


async def test_server_streaming_goes_through_the_interceptors(channel: grpc.aio.Channel) -> None:
    stub = notifier_pb2_grpc.NotifierServiceStub(channel)
    states = [r.job.state async for r in stub.WatchJob(notifier_pb2.WatchJobRequest(job_id="job-0001"))]
    assert states == [notifier_pb2.JOB_STATE_RUNNING, notifier_pb2.JOB_STATE_SUCCEEDED]

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        async for _ in stub.WatchJob(notifier_pb2.WatchJobRequest(job_id="missing-job")):
            pass
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unimplemented_methods_stay_unimplemented(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
        await identity_pb2_grpc.IdentityServiceStub(channel).Refresh(
            identity_pb2.RefreshRequest(refresh_token="r"), timeout=5)
    assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_requests_breaking_the_contract_never_reach_the_servicer(
    server: GrpcServer, channel: grpc.aio.Channel
) -> None:
    """The buf.validate rules of the contract, for every RPC: INVALID_ARGUMENT naming each field."""
    identity = identity_pb2_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await identity.Register(
            identity_pb2.RegisterRequest(username="A b", email="nope", password="short",
                                         display_name="x\x00y"),
            metadata=((CORRELATION_ID_KEY, "cid-contract"),), timeout=5)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations_of(invalid.value)
    assert set(violations) == {"username", "email", "password", "display_name"}
    assert violations["display_name"] == "must not contain NUL or other control characters"
    assert violations["password"] == "must be at least 8 characters"
    assert (CORRELATION_ID_KEY, "cid-contract") in tuple(invalid.value.trailing_metadata())
    assert "A b" not in REGISTERED

    with pytest.raises(grpc.aio.AioRpcError) as login:  # NUL would reach PostgreSQL otherwise
        await identity.Login(identity_pb2.LoginRequest(login="a\x00b", password="x"), timeout=5)
    assert login.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations_of(login.value)) == {"login"}

    with pytest.raises(grpc.aio.AioRpcError) as not_a_uuid:
        await identity.GetUser(identity_pb2.GetUserRequest(user_id="u1"), timeout=5)
    assert field_violations_of(not_a_uuid.value) == {"user_id": "must be a valid UUID"}

    # a server stream is checked before its first message
    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in notifier_pb2_grpc.NotifierServiceStub(channel).WatchJob(
                notifier_pb2.WatchJobRequest(job_id="x"), timeout=5):
            pass
    assert stream.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations_of(stream.value)) == {"job_id"}


def test_the_drivers_unreachable_errors_are_unavailable_and_their_other_errors_are_not() -> None:
    import asyncpg
    import neo4j.exceptions
    import pymongo.errors
    import redis.exceptions
    from cassandra import OperationTimedOut, ReadTimeout
    from cassandra.cluster import NoHostAvailable

    from culture_grpc.interceptors import dependency_unavailable

    away = [NoHostAvailable("no host", {}), OperationTimedOut("slow"), ReadTimeout("slow"),
            redis.exceptions.ConnectionError("Connection closed by server."), redis.exceptions.TimeoutError(),
            pymongo.errors.ServerSelectionTimeoutError("no server"), pymongo.errors.AutoReconnect("gone"),
            neo4j.exceptions.ServiceUnavailable("gone"), neo4j.exceptions.SessionExpired("gone"),
            neo4j.exceptions.TransientError("deadlock"),
            pymongo.errors.OperationFailure("conflict", 112, {"errorLabels": ["TransientTransactionError"]}),
            asyncpg.exceptions.CannotConnectNowError("starting up"),
            asyncpg.exceptions.ConnectionDoesNotExistError("closed"), ConnectionRefusedError(),
            TimeoutError()]
    bugs = [ValueError("x"), KeyError("x"), redis.exceptions.ResponseError("WRONGTYPE"),
            pymongo.errors.DuplicateKeyError("dup"), asyncpg.exceptions.UniqueViolationError("dup"),
            pymongo.errors.OperationFailure("bad", 2, {"errorLabels": []}),
            neo4j.exceptions.CypherSyntaxError("bad")]
    assert [e for e in away if not dependency_unavailable(e)] == []
    assert [e for e in bugs if dependency_unavailable(e)] == []
    # raised while a dropped connection was being handled: the drop is what happened
    try:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation")
        except asyncpg.exceptions.ConnectionDoesNotExistError:
            raise asyncpg.InterfaceError("cannot call Transaction.__aexit__(): connection closed")  # noqa: B904
    except asyncpg.InterfaceError as during:
        assert dependency_unavailable(during)
    assert not dependency_unavailable(asyncpg.InterfaceError("another operation is in progress"))
