"""The social graph through the gateway: follow and unfollow, follower lists, friends who liked a
work, similar tastes and recommendations fed by a real review, bad input as 4xx with the field, and
the routes in the served OpenAPI. Real processes and servers (the whole slice)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from culture_events.testing import wait_until

from .conftest import SliceRun, new_account

pytestmark = pytest.mark.integration


async def _user(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    account = new_account("gr" + uuid.uuid4().hex[:10])
    reply = await http.post("/api/register", json=account)
    assert reply.status_code == 201, reply.text
    login = await http.post("/api/login",
                            json={"login": account["username"], "password": account["password"]})
    assert login.status_code == 200, login.text
    return reply.json()["user"]["user_id"], {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_follows_and_social_queries_through_the_gateway(slice_run: SliceRun,
                                                               http: httpx.AsyncClient) -> None:
    slice_run.require("graph", "catalog")
    ann, ann_auth = await _user(http)
    ben, ben_auth = await _user(http)
    assert (await http.put(f"/api/users/{ann}/follow")).status_code == 401

    async def follow() -> httpx.Response | None:
        # the graph learns of a new user from identity.user-registered: 404 until then
        reply = await http.put(f"/api/users/{ann}/follow", headers=ben_auth)
        return None if reply.status_code == 404 else reply

    first = await wait_until(follow, 60, "the graph to know both users", interval=0.2)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True and first.json()["follow"]["followee_user_id"] == ann
    again = await http.put(f"/api/users/{ann}/follow", headers=ben_auth)
    assert again.status_code == 200 and again.json()["created"] is False

    followers = (await http.get(f"/api/users/{ann}/followers")).json()
    assert [f["follower_user_id"] for f in followers["follows"]] == [ben]
    assert followers["follows"][0]["created_at"].endswith("Z") and followers["next_page_token"] == ""
    following = (await http.get(f"/api/users/{ben}/following")).json()
    assert [f["followee_user_id"] for f in following["follows"]] == [ann]

    # ann reviews a work: through the catalog's events the graph learns the rating
    work = {"kind": "book", "title": f"Solaris {uuid.uuid4().hex[:6]}", "authors": ["Stanisław Lem"],
            "genre_paths": ["fiction/science-fiction"]}
    created = await http.post("/api/works", json=work, headers=ann_auth)
    assert created.status_code == 201, created.text
    work_id = created.json()["work"]["work_id"]
    review = await http.post(f"/api/works/{work_id}/reviews", json={"rating": 5}, headers=ann_auth)
    assert review.status_code == 201, review.text

    async def liked() -> list[dict] | None:
        reply = await http.get(f"/api/works/{work_id}/friends-who-liked", headers=ben_auth)
        assert reply.status_code == 200, reply.text
        return reply.json()["ratings"] or None

    ratings = await wait_until(liked, 60, "ann's rating in the graph", interval=0.2)
    assert [(r["user_id"], r["rating"]) for r in ratings] == [(ann, 5)]
    recs = await http.get("/api/me/recommendations", headers=ben_auth)
    assert recs.status_code == 200, recs.text
    assert [(r["work_id"], r["recommended_by"]) for r in recs.json()["recommendations"]] == [(work_id, [ann])]
    similar = await http.get("/api/me/similar", headers=ben_auth)
    assert similar.status_code == 200 and similar.json()["users"] == []  # ben rated nothing yet

    gone = await http.delete(f"/api/users/{ann}/follow", headers=ben_auth)
    assert gone.status_code == 200 and gone.json() == {"removed": True}
    assert (await http.delete(f"/api/users/{ann}/follow", headers=ben_auth)).json() == {"removed": False}
    assert (await http.get(f"/api/users/{ann}/followers")).json()["follows"] == []


async def test_bad_graph_input_is_4xx_with_the_field(slice_run: SliceRun, http: httpx.AsyncClient) -> None:
    slice_run.require("graph")
    me, auth = await _user(http)
    own = await wait_until(lambda: _not_404(http.put(f"/api/users/{me}/follow", headers=auth)), 60,
                           "the graph to know the user", interval=0.2)
    assert own.status_code == 422 and own.json()["error"]["fields"] == {
        "followee_user_id": "a user cannot follow themselves"}
    ghost = await http.put(f"/api/users/ghost-{uuid.uuid4().hex}/follow", headers=auth)
    assert ghost.status_code == 404 and ghost.json()["error"]["status"] == "NOT_FOUND"
    bad_size = await http.get(f"/api/users/{me}/followers", params={"page_size": "many"})
    assert bad_size.status_code == 422 and "page_size" in bad_size.json()["error"]["fields"]
    bad_token = await http.get(f"/api/users/{me}/following", params={"page_token": "nope"})
    assert bad_token.status_code == 422 and "page_token" in bad_token.json()["error"]["fields"]
    bad_rating = await http.get("/api/me/recommendations", params={"min_rating": 9}, headers=auth)
    assert bad_rating.status_code == 422 and "min_rating" in bad_rating.json()["error"]["fields"]
    bad_genre = await http.get("/api/me/recommendations", params={"genre": "Not A Slug"}, headers=auth)
    assert bad_genre.status_code == 422 and "genre_slugs[0]" in bad_genre.json()["error"]["fields"]
    spec = (await http.get("/openapi.json")).json()
    for path in ("/api/users/{user_id}/follow", "/api/users/{user_id}/followers",
                 "/api/users/{user_id}/following", "/api/works/{work_id}/friends-who-liked",
                 "/api/me/similar", "/api/me/recommendations"):
        ops = {m: op for m, op in spec["paths"][path].items() if m != "parameters"}
        assert ops and all("422" in op["responses"] and "503" in op["responses"] for op in ops.values()), path


async def _not_404(call: object) -> httpx.Response | None:
    reply = await call  # type: ignore[misc]
    return None if reply.status_code == 404 else reply
