"""The gateway against a hostile client (issue #13): every finding of the issue as a test, then
schemathesis against the served OpenAPI document with every check, which must find nothing."""

from __future__ import annotations

import httpx
import pytest

from .conftest import SliceRun, new_account

pytestmark = pytest.mark.integration

#: schemathesis's budget: examples per operation and phase, and a wall-clock bound for the whole run
SCHEMATHESIS_EXAMPLES = 12
SCHEMATHESIS_MAX_SECONDS = 240
SCHEMATHESIS_SEED = 13


async def test_nul_in_a_login_is_422_naming_the_field(slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    reply = await http.post("/api/login", json={"login": "a\u0000b", "password": "whatever"})
    assert reply.status_code == 422, reply.text
    assert list(reply.json()["error"]["fields"]) == ["login"]
    register = await http.post("/api/register", json={**new_account("nul"), "display_name": "x\u0000"})
    assert register.status_code == 422, register.text
    assert "display_name" in register.json()["error"]["fields"]


async def test_deeply_nested_json_under_the_size_limit_is_400(slice_run: SliceRun,
                                                              http: httpx.AsyncClient) -> None:
    body = "[" * 8000 + "]" * 8000  # 16,000 bytes: under the 16 KiB limit
    for path in ("/api/login", "/api/register"):
        reply = await http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["status"] == "INVALID_JSON"
    nested_object = '{"login": ' + '{"a": ' * 40 + "1" + "}" * 40 + ', "password": "x"}'
    reply = await http.post("/api/login", content=nested_object, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text


async def test_a_body_that_is_not_json_is_415(slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    form = await http.post("/api/login", data={"login": "someone", "password": "secret"})
    assert form.status_code == 415, form.text
    none = await http.post("/api/login", content=b'{"login": "a", "password": "b"}')
    assert none.status_code == 415, none.text
    assert none.json()["error"]["status"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_an_undeclared_method_is_405_with_every_allowed_method(slice_run: SliceRun,
                                                                     http: httpx.AsyncClient) -> None:
    for method, path, allowed in [("GET", "/api/login", {"POST"}),
                                  ("PUT", "/api/works", {"GET", "HEAD", "POST"}),
                                  ("DELETE", "/api/works/w-1", {"GET", "HEAD", "PATCH"}),
                                  ("POST", "/ws", {"GET", "HEAD"})]:
        reply = await http.request(method, path)
        assert reply.status_code == 405, (method, path, reply.text)
        assert {m.strip() for m in reply.headers["allow"].split(",")} == allowed, (method, path)
        assert reply.json()["error"]["status"] == "METHOD_NOT_ALLOWED"
    assert (await http.get("/no/such/route")).status_code == 404
    assert (await http.get("/ws")).status_code == 426  # a WebSocket endpoint, asked without the upgrade
