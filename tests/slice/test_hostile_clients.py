"""The gateway against a hostile client (issue #13): every finding of the issue as a test, then
schemathesis against the served OpenAPI document with every check, which must find nothing."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import websockets

from .conftest import SliceRun, client_address, new_account

pytestmark = pytest.mark.integration

#: schemathesis's budget: examples per operation and phase, and a wall-clock bound for the whole run
SCHEMATHESIS_EXAMPLES = 12
SCHEMATHESIS_MAX_SECONDS = 90
SCHEMATHESIS_SEED = 13
#: the operations whose rules a JSON Schema cannot state (a schema-valid request may get 422 there)
CONFIG = Path(__file__).with_name("schemathesis.toml")


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
    no_route = await http.get("/no/such/route")
    assert no_route.status_code == 404 and no_route.json()["error"]["status"] == "NO_ROUTE"
    assert (await http.get("/ws")).status_code == 426  # a WebSocket endpoint, asked without the upgrade


def _validator(spec: dict[str, Any], ref: dict[str, str]) -> jsonschema.Draft202012Validator:
    """A validator of the schema `ref` points to, within the served OpenAPI document."""
    return jsonschema.Draft202012Validator({**ref, "components": spec["components"]})


async def test_push_frames_follow_the_documented_schemas(slice_run: SliceRun, http: httpx.AsyncClient,
                                                         unique: str) -> None:
    """Every SSE event and WebSocket message of a registration's job, against /openapi.json."""
    slice_run.require("catalog", "mailer", "notifier")
    spec = (await http.get("/openapi.json")).json()
    sse_schemas = spec["paths"]["/events"]["get"]["responses"]["200"]["x-events"]
    ws_schema = spec["paths"]["/ws"]["get"]["responses"]["101"]["x-messages"]
    job_id = uuid.uuid4().hex
    sse: list[tuple[str, dict[str, Any]]] = []
    ws_messages: list[dict[str, Any]] = []
    subscribed = asyncio.Event()

    async def read_sse() -> None:
        async with httpx.AsyncClient(base_url=slice_run.gateway) as client, client.stream(
                "GET", f"/events?job_id={job_id}", timeout=httpx.Timeout(10, read=120)) as reply:
            assert reply.status_code == 200
            event, data = "message", ""
            async for line in reply.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    sse.append((event, json.loads(data)))
                    subscribed.set()
                    if event in ("done", "error"):
                        return
                    event, data = "message", ""

    async def read_ws() -> None:
        url = slice_run.gateway.replace("http://", "ws://") + f"/ws?job_id={job_id}"
        async with websockets.connect(url, open_timeout=10) as ws:
            while not ws_messages or ws_messages[-1].get("type") != "done":
                ws_messages.append(json.loads(await ws.recv()))

    async with asyncio.timeout(120):
        readers = asyncio.gather(read_sse(), read_ws())
        await subscribed.wait()
        reply = await http.post("/api/register", json=new_account(unique),
                                headers={"X-Correlation-Id": job_id})
        assert reply.status_code == 201, reply.text
        await readers
    assert sse[0][0] == "ready" and sse[-1][0] == "done", sse
    for event, data in sse:
        errors = [e.message for e in _validator(spec, sse_schemas[event]).iter_errors(data)]
        assert not errors, (event, data, errors)
    for message in ws_messages:
        errors = [e.message for e in _validator(spec, ws_schema).iter_errors(message)]
        assert not errors, (message, errors)
    assert {m["type"] for m in ws_messages} >= {"ready", "step", "done"}


async def test_schemathesis_finds_nothing(slice_run: SliceRun, http: httpx.AsyncClient,
                                          tmp_path: Path) -> None:
    """Every check of schemathesis (status codes and content types documented, schemas followed,
    negative data rejected, 405 for undeclared methods, no 5xx...), with a fixed seed and a bounded
    number of cases; the authenticated operations run with a real user's token."""
    account = new_account("st" + slice_run.run_id)
    assert (await http.post("/api/register", json=account)).status_code == 201
    login = await http.post("/api/login", json={"login": account["username"],
                                                "password": account["password"]})
    token = login.json()["access_token"]
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
        "run", f"{slice_run.gateway}/openapi.json",
        "--checks", "all", "--seed", str(SCHEMATHESIS_SEED), "--max-examples", str(SCHEMATHESIS_EXAMPLES),
        "--max-time", str(SCHEMATHESIS_MAX_SECONDS), "--no-color",
        "--header", f"Authorization: Bearer {token}", "--request-timeout", "40",
        # streams that never end: covered by the push tests
        "--exclude-path", "/events", "--exclude-path", "/ws", "--exclude-path", "/api/feed/events",
        # its own client address: its registrations count against its own limit, not other tests'
        "--header", f"X-Forwarded-For: {client_address()}",
    ]
    # in a thread: the slice's Kafka proxy is served by this event loop
    # its own working directory: schemathesis keeps a cache of failing examples in ./.schemathesis
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, cwd=tmp_path,
                                   timeout=SCHEMATHESIS_MAX_SECONDS + 120)
    output = done.stdout + done.stderr
    print(output)  # the summary: cases run per operation, failures found
    cases = re.search(r"(\d+) generated", output)
    assert done.returncode == 0, output[-6000:]
    assert cases and int(cases.group(1)) > 100, output[-3000:]
