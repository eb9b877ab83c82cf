"""The feed through the gateway: a review by someone I follow, in a genre I am interested in, shows up
in GET /api/feed and is announced on GET /api/feed/events (SSE); a fresh user's feed is an empty
page; bad input is 422 with the field; the routes and their statuses are in the served OpenAPI.
Real processes and servers (the whole slice)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
import pytest

from culture_events.testing import wait_until

from .conftest import SliceRun, new_account

pytestmark = pytest.mark.integration


async def _user(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    account = new_account("fd" + uuid.uuid4().hex[:10])
    reply = await http.post("/api/register", json=account)
    assert reply.status_code == 201, reply.text
    login = await http.post("/api/login",
                            json={"login": account["username"], "password": account["password"]})
    assert login.status_code == 200, login.text
    return reply.json()["user"]["user_id"], {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _feed(http: httpx.AsyncClient, auth: dict[str, str], **params: str) -> httpx.Response | None:
    reply = await http.get("/api/feed", headers=auth, params=params)
    return None if reply.status_code == 404 else reply  # 404 until the feed worker created the feed


async def test_a_followed_review_reaches_my_feed_through_the_gateway(slice_run: SliceRun,
                                                                     http: httpx.AsyncClient) -> None:
    slice_run.require("graph", "catalog", "feed")
    assert (await http.get("/api/feed")).status_code == 401
    ann, ann_auth = await _user(http)
    ben, ben_auth = await _user(http)
    empty = await wait_until(lambda: _feed(http, ben_auth), 60, "ben's feed to exist", interval=0.2)
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_page_token": ""}

    follow = await wait_until(lambda: _not_404(http.put(f"/api/users/{ann}/follow", headers=ben_auth)), 60,
                              "the graph to know both users", interval=0.2)
    assert follow.status_code == 201, follow.text
    genre = f"fiction/feed-{uuid.uuid4().hex[:8]}"
    work = {"kind": "book", "title": f"Solaris {uuid.uuid4().hex[:6]}", "authors": ["Stanisław Lem"],
            "genre_paths": [genre]}
    created = await http.post("/api/works", json=work, headers=ann_auth)
    assert created.status_code == 201, created.text
    work_id = created.json()["work"]["work_id"]
    # ben's own high rating makes him interested in the genre
    mine = await http.post(f"/api/works/{work_id}/reviews", json={"rating": 5}, headers=ben_auth)
    assert mine.status_code == 201, mine.text

    # the graph learns ben's interest from his review asynchronously: ann (following ben too) sees his
    # rating among her friends' once it has, and only then reviews
    await wait_until(lambda: _not_404(http.put(f"/api/users/{ben}/follow", headers=ann_auth)), 60,
                     "ann to follow ben", interval=0.2)

    async def rated() -> bool:
        reply = await http.get(f"/api/works/{work_id}/friends-who-liked", headers=ann_auth)
        return reply.status_code == 200 and bool(reply.json()["ratings"])

    await wait_until(rated, 60, "ben's rating in the graph", interval=0.2)
    events: list[tuple[str, dict[str, Any]]] = []
    ready = asyncio.Event()
    sse_client = httpx.AsyncClient(base_url=slice_run.gateway)
    listener = asyncio.ensure_future(_sse(sse_client, "/api/feed/events", ben_auth, ready, events))
    await asyncio.wait_for(ready.wait(), 15)
    review = await http.post(f"/api/works/{work_id}/reviews",
                             json={"rating": 4, "body": "A sea that thinks."}, headers=ann_auth)
    assert review.status_code == 201, review.text

    async def arrived() -> list[dict] | None:
        reply = await http.get("/api/feed", headers=ben_auth)
        assert reply.status_code == 200, reply.text
        return reply.json()["items"] or None

    try:
        items = await wait_until(arrived, 60, "ann's review in ben's feed", interval=0.2)
        assert [(i["actor_user_id"], i["review"]["work_id"], i["review"]["rating"]) for i in items] == [
            (ann, work_id, 4)]
        assert items[0]["created_at"].endswith("Z") and genre in items[0]["review"]["genres"]
        await wait_until(lambda: [d for e, d in events if e == "new-items"], 30, "the new-items push",
                         interval=0.1)
        pushed = [d for e, d in events if e == "new-items"]
        assert pushed[0]["user_id"] == ben and pushed[0]["actor_user_id"] == ann
        assert pushed[0]["review_id"] == items[0]["review"]["review_id"]
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await sse_client.aclose()


async def _sse(client: httpx.AsyncClient, url: str, headers: dict[str, str], ready: asyncio.Event,
               out: list[tuple[str, dict[str, Any]]]) -> None:
    """Collect (event, data) from an SSE stream; set `ready` on the first event."""
    async with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=120)) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        event, data = "message", ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                out.append((event, json.loads(data)))
                if event == "ready":
                    ready.set()
                event, data = "message", ""


async def test_bad_feed_input_is_422_with_the_field_and_the_route_is_documented(
        slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    slice_run.require("feed")
    _, auth = await _user(http)
    for params, field in (({"page_size": "101"}, "page_size"), ({"page_size": "-1"}, "page_size"),
                          ({"page_size": "many"}, "page_size"), ({"page_token": "nope"}, "page_token"),
                          ({"page_token": "x" * 501}, "page_token")):
        reply = await wait_until(lambda p=params: _feed(http, auth, **p), 60, "the feed", interval=0.2)
        assert reply.status_code == 422 and field in reply.json()["error"]["fields"], (params, reply.text)
    ok = await http.get("/api/feed", headers=auth, params={"page_size": "100"})
    assert ok.status_code == 200
    spec = (await http.get("/openapi.json")).json()
    op = spec["paths"]["/api/feed"]["get"]
    assert {"200", "401", "404", "422", "503"} <= set(op["responses"])
    size = next(p for p in op["parameters"] if p["name"] == "page_size")["schema"]
    assert (size["minimum"], size["maximum"]) == (0, 100)
    assert {"200", "401"} <= set(spec["paths"]["/api/feed/events"]["get"]["responses"])
    assert (await http.get("/api/feed/events")).status_code == 401


async def _not_404(call: object) -> httpx.Response | None:
    reply = await call  # type: ignore[misc]
    return None if reply.status_code == 404 else reply
