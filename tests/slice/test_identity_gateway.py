"""Identity through the gateway: bad input, duplicates, login, tokens, rate limiting, health, OpenAPI.

Real processes (`culture serve`), real PostgreSQL and Redis; every test uses its own account.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid

import asyncpg
import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from culture_identity.migrations import migrate, migrations
from culture_identity.roles import signer_of
from culture_identity.settings import IdentitySettings

from .conftest import MAX_LOGIN_FAILURES, SliceRun, new_account

pytestmark = pytest.mark.integration


async def _rows_for(run: SliceRun, account: dict[str, str]) -> tuple[int, int]:
    """(users, outbox rows) that mention this account's username or email."""
    conn = await run.db()
    try:
        users = await conn.fetchval("SELECT count(*) FROM identity_users WHERE username = $1 OR email = $2",
                                    account["username"], account["email"].lower())
        outbox = await conn.fetchval(
            "SELECT count(*) FROM identity_outbox WHERE position(convert_to($1, 'UTF8') in payload) > 0 "
            "OR position(convert_to($2, 'UTF8') in payload) > 0",
            account["username"], account["email"].lower())
    finally:
        await conn.close()
    return users, outbox


async def _register(http: httpx.AsyncClient, account: dict[str, str]) -> dict:
    reply = await http.post("/api/register", json=account)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def _login(http: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await http.post("/api/login", json={"login": login, "password": password})


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"email": "two@@example.org"}, "email"),
    ({"password": "short"}, "password"),
    ({"username": "No Spaces!"}, "username"),
    ({"username": "ab"}, "username"),
    ({"username": 42}, "username"),
])
async def test_bad_field_is_named_and_nothing_is_written(slice_run: SliceRun, http: httpx.AsyncClient,
                                                         unique: str, change: dict, field: str) -> None:
    account = {**new_account(unique), **change}
    reply = await http.post("/api/register", json=account)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert field in error["fields"], error
    assert error["fields"][field]
    sent = {**new_account(unique), **{k: str(v) for k, v in change.items()}}
    assert await _rows_for(slice_run, sent) == (0, 0)


async def test_duplicate_handle_and_email_are_409_naming_the_field(
        slice_run: SliceRun, http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    await _register(http, account)
    again = await http.post("/api/register", json={**account, "email": f"other-{unique}@example.org"})
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "ALREADY_EXISTS"
    assert list(again.json()["error"]["fields"]) == ["username"]
    same_mail = await http.post("/api/register", json={**account, "username": f"{unique}_2",
                                                       "email": account["email"].upper()})
    assert same_mail.status_code == 409
    assert list(same_mail.json()["error"]["fields"]) == ["email"]
    conn = await slice_run.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM identity_users WHERE username = ANY($1)",
                                   [unique, f"{unique}_2"]) == 1
    finally:
        await conn.close()


async def test_oversized_body_is_413_and_invalid_json_is_400(slice_run: SliceRun, http: httpx.AsyncClient,
                                                             unique: str) -> None:
    account = new_account(unique)
    huge = {**account, "display_name": "x" * 100_000}
    reply = await http.post("/api/register", content=json.dumps(huge),
                            headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]["status"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(40):
            yield b"x" * 1024

    streamed = await http.post("/api/register", content=chunks(),
                               headers={"content-type": "application/json"})
    assert streamed.status_code == 413

    broken = await http.post("/api/register", content=b'{"username": "' + unique.encode(),
                             headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["error"]["status"] == "INVALID_JSON"
    not_object = await http.post("/api/register", json=[account])
    assert not_object.status_code == 400
    assert await _rows_for(slice_run, account) == (0, 0)


async def test_register_writes_user_and_outbox_row_together(slice_run: SliceRun, http: httpx.AsyncClient,
                                                            unique: str) -> None:
    job_id = uuid.uuid4().hex
    reply = await http.post("/api/register", json=new_account(unique), headers={"x-correlation-id": job_id})
    assert reply.status_code == 201
    body = reply.json()
    assert body["job_id"] == job_id  # the browser may choose its job id up front
    assert body["user"]["username"] == unique
    assert reply.headers["location"] == f"/status/{job_id}"
    uuid.UUID(body["user"]["user_id"])


async def test_login_token_me_refresh(http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    registered = await _register(http, account)
    by_name = await _login(http, unique, account["password"])
    assert by_name.status_code == 200, by_name.text
    tokens = by_name.json()
    me = await http.get("/api/me", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["user_id"] == registered["user"]["user_id"]
    by_mail = await _login(http, account["email"].upper(), account["password"])
    assert by_mail.status_code == 200
    via_query = await http.get("/api/me", params={"access_token": tokens["access_token"]})
    assert via_query.status_code == 200

    refreshed = await http.post("/api/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    reused = await http.post("/api/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401  # single use
    # reuse revoked the whole family: the token handed out by the first refresh is dead too
    after_reuse = await http.post("/api/refresh", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert after_reuse.status_code == 401


async def test_wrong_credentials_are_401_without_a_hint(http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    await _register(http, account)
    wrong_password = await _login(http, unique, "not the password")
    unknown_user = await _login(http, f"nobody{unique}", account["password"])
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json()["error"]["message"] == unknown_user.json()["error"]["message"]
    assert "fields" not in wrong_password.json()["error"]


async def test_tampered_expired_and_missing_tokens_are_401(http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    await _register(http, account)
    token = (await _login(http, unique, account["password"])).json()["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    flipped = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (f"{header}.{forged}.{signature}", flipped, "not-a-jwt"):
        reply = await http.get("/api/me", headers={"authorization": f"Bearer {bad}"})
        assert reply.status_code == 401, bad
        assert reply.headers["www-authenticate"].startswith("Bearer")
    # expired: signed with the same (local dev) key, an hour ago
    signer = signer_of(IdentitySettings())
    old, _ = signer.sign(str(uuid.uuid4()), unique, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert (await http.get("/api/me", headers={"authorization": f"Bearer {old}"})).status_code == 401
    assert (await http.get("/api/me")).status_code == 401


async def test_repeated_failures_are_rate_limited(http: httpx.AsyncClient, unique: str) -> None:
    account = new_account(unique)
    await _register(http, account)
    for _ in range(MAX_LOGIN_FAILURES):
        assert (await _login(http, unique, "wrong password")).status_code == 401
    limited = await _login(http, unique, "wrong password")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["retry_after_seconds"] > 0
    # even the right password waits out the window: no guessing through the limit
    assert (await _login(http, unique, account["password"])).status_code == 429


async def test_health_openapi_and_unknown_job(slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ready"
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    expected = {"/api/register", "/api/login", "/api/me", "/status/{job_id}", "/events", "/ws"}
    assert expected <= set(spec["paths"])
    bad = await http.get("/status/x")
    assert bad.status_code == 422
    assert "job_id" in bad.json()["error"]["fields"]
    assert (await http.get(f"/status/{uuid.uuid4().hex}", params={"wait": "999"})).status_code == 422


async def test_push_endpoints_need_a_token_or_a_job(slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    assert (await http.get("/events")).status_code == 401
    ws_url = slice_run.gateway.replace("http://", "ws://") + "/ws"
    with pytest.raises(InvalidStatus):
        async with websockets.connect(ws_url, open_timeout=10):
            pass
    async with websockets.connect(f"{ws_url}?job_id={uuid.uuid4().hex}", open_timeout=10) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"


async def test_concurrent_migrations_apply_once(slice_run: SliceRun) -> None:
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    conns = [await asyncpg.connect(slice_run.platform.postgres_dsn) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(c, schema) for c in conns))
        every = [m.version for m in migrations(schema)]
        assert len(every) >= 4  # the relay's lease columns (4) are the newest today
        assert sorted(v for versions in applied for v in versions) == every  # each exactly once
        assert await migrate(conns[0], schema) == []  # idempotent
    finally:
        await conns[0].execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for c in conns:
            await c.close()


async def test_the_api_explorer_is_served_from_the_gateway_itself(slice_run: SliceRun,
                                                                  http: httpx.AsyncClient) -> None:
    """GET /docs: Swagger UI on the gateway's own /openapi.json, every file it loads served by the
    gateway (nothing from elsewhere, a strict Content-Security-Policy); no path leaves its directory."""
    import re

    page = await http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/static/") for a in assets), assets
    for asset in assets:
        got = await http.get(asset)
        assert got.status_code == 200 and got.content, asset
    script = (await http.get("/docs/static/explorer.js")).text
    assert 'url: "/openapi.json"' in script
    bundle = await http.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text and bundle.headers["content-type"].startswith("text/javascript")
    for bad in ("/docs/static/../../../../etc/passwd", "/docs/static/%2e%2e/%2e%2e/__init__.py",
                "/docs/static/nope.js"):
        assert (await http.get(bad)).status_code == 404, bad
