"""The catalog through the gateway: works, search, reviews (with their job on /status), profiles,
bad input as 4xx with the field, OpenAPI. Real processes and servers (the whole slice)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from culture_events.testing import wait_until

from .conftest import SliceRun, new_account

pytestmark = pytest.mark.integration


async def _user(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    account = new_account("cat" + uuid.uuid4().hex[:10])
    reply = await http.post("/api/register", json=account)
    assert reply.status_code == 201, reply.text
    login = await http.post(
        "/api/login", json={"login": account["username"], "password": account["password"]}
    )
    assert login.status_code == 200, login.text
    return reply.json()["user"]["user_id"], {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_works_reviews_and_profiles_through_the_gateway(
    slice_run: SliceRun, http: httpx.AsyncClient
) -> None:
    slice_run.require("catalog")
    user_id, auth = await _user(http)
    title = f"Il nome della rosa {uuid.uuid4().hex[:6]}"
    work = {
        "kind": "book",
        "title": title,
        "authors": ["Umberto Eco"],
        "isbn": "978-0-306-40615-7",
        "release_year": 1980,
        "genre_paths": ["fiction/mystery/historical"],
        "tags": ["monastery"],
    }
    assert (await http.post("/api/works", json=work)).status_code == 401
    created = await http.post("/api/works", json=work, headers=auth)
    assert created.status_code == 201, created.text
    w = created.json()["work"]
    assert w["created_by"] == user_id and w["version"] == 1 and w["isbn"] == "9780306406157"

    got = await http.get(f"/api/works/{w['work_id']}")
    assert got.status_code == 200 and got.json()["work"]["title"] == title
    listed = await http.get("/api/works", params={"genre": "fiction/mystery", "page_size": 100})
    assert w["work_id"] in [x["work_id"] for x in listed.json()["works"]]
    found = await http.get("/api/search", params={"q": title.split()[-1] + " ECO"})
    assert [x["work_id"] for x in found.json()["works"]] == [w["work_id"]]

    patched = await http.patch(
        f"/api/works/{w['work_id']}", json={"version": 1, "publisher": "Bompiani"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["work"]["publisher"] == "Bompiani" and patched.json()["work"]["version"] == 2
    stale = await http.patch(f"/api/works/{w['work_id']}", json={"version": 1, "title": "x"}, headers=auth)
    assert stale.status_code == 409 and stale.json()["error"]["status"] == "FAILED_PRECONDITION"

    review = await http.post(
        f"/api/works/{w['work_id']}/reviews", json={"rating": 5, "body": "Labyrinthine."}, headers=auth
    )
    assert review.status_code == 201, review.text
    body = review.json()
    job = await http.get(body["status_url"], params={"wait": 20})
    assert job.status_code == 200, job.text

    async def review_step_done() -> bool:
        state = (await http.get(body["status_url"], params={"wait": 5})).json()
        return state.get("state") == "succeeded" and state["steps"][0]["name"] == "review"

    await wait_until(review_step_done, 60, "the review job's step", interval=0.2)
    # the same steps pushed over SSE (a finished job: its steps, then done)
    pushed: list[str] = []
    async with http.stream("GET", "/events", params={"job_id": body["job_id"]}) as stream:
        async for line in stream.aiter_lines():
            pushed.append(line)
            if line == "event: done":
                break
    assert any('"step": "review"' in line and '"succeeded"' in line for line in pushed), pushed
    again = await http.post(f"/api/works/{w['work_id']}/reviews", json={"rating": 4}, headers=auth)
    assert again.status_code == 409 and again.json()["error"]["status"] == "ALREADY_EXISTS"
    rating = (await http.get(f"/api/works/{w['work_id']}")).json()["work"]["rating"]
    assert rating["count"] == 1 and rating["histogram"] == [0, 0, 0, 0, 1]
    reviews = (await http.get(f"/api/works/{w['work_id']}/reviews")).json()["reviews"]
    assert [r["review_id"] for r in reviews] == [body["review"]["review_id"]]
    changed = await http.patch(
        f"/api/reviews/{body['review']['review_id']}", json={"rating": 3}, headers=auth
    )
    assert changed.status_code == 200 and changed.json()["review"]["version"] == 2
    assert (await http.get(f"/api/works/{w['work_id']}")).json()["work"]["rating"]["histogram"] == [
        0,
        0,
        1,
        0,
        0,
    ]
    gone = await http.delete(f"/api/reviews/{body['review']['review_id']}", headers=auth)
    assert gone.status_code == 200
    assert (await http.get(f"/api/works/{w['work_id']}")).json()["work"]["rating"]["count"] == 0

    async def profile() -> dict | None:
        reply = await http.get("/api/profile", headers=auth)
        return reply.json()["profile"] if reply.status_code == 200 else None

    mine = await wait_until(profile, 60, "the profile", interval=0.2)
    assert mine["status"] == "complete"
    updated = await http.patch(
        "/api/profile",
        json={"bio": "Reader of old books", "favorite_genres": ["fiction/mystery"]},
        headers=auth,
    )
    assert updated.status_code == 200, updated.text
    public = await http.get(f"/api/users/{user_id}/profile")
    assert public.json()["profile"]["bio"] == "Reader of old books"


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/works", {"kind": "book", "title": "a\u0000b"}, "work.title"),
        ("/api/works", {"kind": "book", "title": "T", "isbn": "9780306406158"}, "work.book.isbn"),
        ("/api/works", {"kind": "tape", "title": "T"}, "kind"),
        ("/api/works", {"kind": "film", "title": "T", "runtime_minutes": "long"}, "runtime_minutes"),
        ("/api/works", {"kind": "book", "title": "T", "authors": ["x\u0007"]}, "work.book.authors[0]"),
        ("REVIEW", {"rating": 0}, "rating"),
        ("REVIEW", {"rating": 6}, "rating"),
        ("REVIEW", {"rating": 2.5}, "rating"),
        ("REVIEW", {"rating": 3, "body": "x" * 10_001}, "body"),
        ("REVIEW", {"rating": 3, "title": "\u0000"}, "title"),
    ],
)
async def test_bad_catalog_input_is_422_with_the_field(
    slice_run: SliceRun, http: httpx.AsyncClient, path: str, payload: dict, field: str
) -> None:
    slice_run.require("catalog")
    _, auth = await _user(http)
    if path == "REVIEW":
        w = await http.post(
            "/api/works", json={"kind": "film", "title": "Stalker", "directors": ["Tarkovsky"]}, headers=auth
        )
        path = f"/api/works/{w.json()['work']['work_id']}/reviews"
    reply = await http.post(path, json=payload, headers=auth)
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["error"]["fields"], reply.json()


async def test_unknown_work_is_404_and_the_routes_are_in_openapi(
    slice_run: SliceRun, http: httpx.AsyncClient
) -> None:
    slice_run.require("catalog")
    _, auth = await _user(http)
    assert (await http.get("/api/works/nope")).status_code == 404
    reply = await http.post("/api/works/nope/reviews", json={"rating": 3}, headers=auth)
    assert reply.status_code == 404 and reply.json()["error"]["status"] == "NOT_FOUND"
    spec = (await http.get("/openapi.json")).json()
    for path in (
        "/api/works",
        "/api/works/{work_id}",
        "/api/search",
        "/api/works/{work_id}/reviews",
        "/api/reviews/{review_id}",
        "/api/profile",
        "/api/users/{user_id}/profile",
    ):
        assert path in spec["paths"]
    assert "409" in spec["paths"]["/api/works/{work_id}/reviews"]["post"]["responses"]


async def test_culture_seed_fills_the_catalog_through_the_gateway(
    slice_run: SliceRun, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from culture_stack.seed import Seeder, SeedPlan

    slice_run.require("catalog")
    lines: list[str] = []
    plan = SeedPlan(
        gateway=slice_run.gateway,
        users=3,
        works=5,
        reviews_per_user=2,
        follows_per_user=1,
        prefix="sd" + uuid.uuid4().hex[:8],
    )
    # from an address of its own, like every test (the per-address registration limit)
    state = await Seeder(plan, lines.append).run(headers={"X-Forwarded-For": http.headers["X-Forwarded-For"]})
    assert len(state.users) == 3 and len(state.works) == 5 and state.reviews == 6
    assert "==> follows" in lines  # the follow step ran: done, or skipped with a note without the graph
    if slice_run.has("graph"):  # the follows go through the graph's route, each once
        assert state.follows == 3 and not any("follows skipped" in line for line in lines), lines
    else:
        assert state.follows == 3 or any("follows skipped" in line for line in lines)
    for work_id in state.works:
        assert (await http.get(f"/api/works/{work_id}")).status_code == 200

    # `culture dev up --seed` (make up) seeds only an empty catalog: this one has works now
    import asyncio

    from culture_stack import dev

    said: list[str] = []
    monkeypatch.setattr(dev, "say", said.append)
    await asyncio.to_thread(dev._seed_if_empty, slice_run.gateway)
    assert said == ["==> demo data: the catalog has works already; not seeding"]
