"""`culture seed`: load a generated catalog through the public HTTP API of a running gateway.

Steps, in order (a list, so a step is one entry): register and log in users (`/api/register`,
`/api/login`), add works across the genre tree (`POST /api/works`), write reviews
(`POST /api/works/{id}/reviews`), follow users (`PUT /api/users/{id}/follow`, the graph's route: when
the gateway answers 404 because the graph is not deployed, the step says so and is skipped). Nothing
is downloaded: names, titles and ISBNs come from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

GENRES: dict[str, tuple[str, ...]] = {
    "book": (
        "fiction/science-fiction/cyberpunk",
        "fiction/science-fiction/space-opera",
        "fiction/fantasy/epic",
        "fiction/mystery/noir",
        "fiction/mystery/historical",
        "fiction/literary",
        "fiction/romance",
        "non-fiction/history",
        "non-fiction/science/physics",
        "non-fiction/biography",
        "poetry",
    ),
    "film": (
        "film/drama",
        "film/comedy/romantic-comedy",
        "film/science-fiction",
        "film/thriller/neo-noir",
        "film/animation",
        "film/documentary",
        "film/horror",
    ),
}
_FIRST = (
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hiro",
    "Inès",
    "José",
    "Katarzyna",
    "Luca",
    "Mei",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Vera",
)
_LAST = (
    "Rossi",
    "Müller",
    "Nakamura",
    "García",
    "Kowalski",
    "Dubois",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Ferreira",
    "Novak",
    "Ivanova",
    "Brennan",
    "Haddad",
    "Costa",
    "Yilmaz",
)
_ADJ = (
    "Silent",
    "Burning",
    "Hidden",
    "Last",
    "Glass",
    "Northern",
    "Electric",
    "Forgotten",
    "Crimson",
    "Endless",
    "Quiet",
    "Broken",
    "Golden",
    "Invisible",
    "Distant",
)
_NOUN = (
    "City",
    "Garden",
    "River",
    "Archive",
    "Winter",
    "Machine",
    "Orchard",
    "Lighthouse",
    "Signal",
    "Kingdom",
    "Harbor",
    "Labyrinth",
    "Empire",
    "Library",
    "Season",
)
_OPINIONS = (
    "A slow start, then impossible to put down.",
    "Beautifully made, if a little long.",
    "Not for me, but I see why people love it.",
    "One of the best I have read/seen this year.",
    "The ending changed how I saw everything before it.",
    "Uneven, with brilliant moments.",
)


def isbn13(rng: random.Random) -> str:
    """A random ISBN-13 (978 prefix) with a correct check digit."""
    digits = [9, 7, 8] + [rng.randrange(10) for _ in range(9)]
    total = sum(dg * (1 if i % 2 == 0 else 3) for i, dg in enumerate(digits))
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def work_body(rng: random.Random, index: int) -> dict[str, Any]:
    """One generated work (a book two times out of three)."""
    kind = "book" if index % 3 else "film"
    genres = rng.sample(GENRES[kind], k=rng.choice((1, 1, 2)))
    title = f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}" + (f" {index}" if index >= 50 else "")
    body: dict[str, Any] = {
        "kind": kind,
        "title": title,
        "release_year": rng.randrange(1920, 2026),
        "genre_paths": genres,
        "tags": rng.sample(["classic", "award-winner", "debut", "series", "adaptation"], k=1),
        "description": f"A generated {kind} about a {rng.choice(_NOUN).lower()}.",
    }
    if kind == "book":
        body.update(
            authors=[person(rng)],
            isbn=isbn13(rng),
            page_count=rng.randrange(90, 900),
            publisher=f"{rng.choice(_LAST)} Press",
        )
    else:
        body.update(
            directors=[person(rng)],
            cast=[person(rng) for _ in range(3)],
            runtime_minutes=rng.randrange(80, 200),
            countries=[rng.choice(("IT", "FR", "JP", "US", "DE"))],
        )
    return body


@dataclasses.dataclass
class SeedPlan:
    """Sizes and where to send them."""

    gateway: str = "http://127.0.0.1:8080"
    users: int = 20
    works: int = 60
    reviews_per_user: int = 5
    follows_per_user: int = 3
    seed: int = 42
    concurrency: int = 8
    prefix: str = ""


@dataclasses.dataclass
class SeedState:
    """What the steps made so far (later steps use earlier ones' results)."""

    users: list[dict[str, str]] = dataclasses.field(default_factory=list)  # user_id, token
    works: list[str] = dataclasses.field(default_factory=list)
    reviews: int = 0
    follows: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)


Say = Callable[[str], None]


class Seeder:
    """The steps of a seed run, each `async def step(client) -> None`."""

    def __init__(self, plan: SeedPlan, say: Say) -> None:
        self.plan = plan
        self.say = say
        self.rng = random.Random(plan.seed)
        self.state = SeedState()
        self.prefix = plan.prefix or f"seed{uuid.uuid4().hex[:6]}"
        self.limit = asyncio.Semaphore(plan.concurrency)

    @property
    def steps(self) -> list[tuple[str, Callable[[httpx.AsyncClient], Awaitable[None]]]]:
        return [
            ("users", self.users),
            ("works", self.works),
            ("reviews", self.reviews),
            ("follows", self.follows),
        ]

    async def _each(self, what: str, items: Sequence[Any], one: Callable[[Any], Awaitable[None]]) -> None:
        done = 0
        every = max(1, len(items) // 10)

        async def run(item: Any) -> None:
            nonlocal done
            async with self.limit:
                await one(item)
            done += 1
            if done % every == 0 or done == len(items):
                self.say(f"  {what}: {done}/{len(items)}")

        await asyncio.gather(*(run(i) for i in items))

    @staticmethod
    def _check(reply: httpx.Response, what: str) -> dict[str, Any]:
        if reply.status_code >= 400:
            raise SeedError(f"{what}: HTTP {reply.status_code}: {reply.text[:300]}")
        return dict(reply.json())

    async def users(self, client: httpx.AsyncClient) -> None:
        async def one(i: int) -> None:
            name = f"{self.prefix}_{i:04d}"
            account = {
                "username": name,
                "email": f"{name}@example.org",
                "password": "seeded password 1",
                "display_name": person(random.Random(self.plan.seed * 1000 + i)),
            }
            reg = self._check(await client.post("/api/register", json=account), f"register {name}")
            tokens = self._check(
                await client.post("/api/login", json={"login": name, "password": account["password"]}),
                f"login {name}",
            )
            self.state.users.append({"user_id": reg["user"]["user_id"], "token": tokens["access_token"]})

        await self._each("users", list(range(self.plan.users)), one)

    def _auth(self, user: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {user['token']}"}

    async def works(self, client: httpx.AsyncClient) -> None:
        if not self.state.users:
            raise SeedError("works need at least one user")
        bodies = [(work_body(self.rng, i), self.rng.choice(self.state.users)) for i in range(self.plan.works)]

        async def one(item: tuple[dict[str, Any], dict[str, str]]) -> None:
            body, user = item
            reply = self._check(
                await client.post("/api/works", json=body, headers=self._auth(user)), "add work"
            )
            self.state.works.append(reply["work"]["work_id"])

        await self._each("works", bodies, one)

    async def reviews(self, client: httpx.AsyncClient) -> None:
        pairs = []
        for user in self.state.users:
            k = min(self.plan.reviews_per_user, len(self.state.works))
            # popular works get more reviews: a skewed pick, like real catalogs
            weights = [1 / (i + 1) for i in range(len(self.state.works))]
            chosen: set[str] = set()
            while len(chosen) < k:
                chosen.add(self.rng.choices(self.state.works, weights)[0])
            pairs += [
                (user, work_id, self.rng.choice((3, 4, 4, 5, 5, 2, 1)), self.rng.choice(_OPINIONS))
                for work_id in sorted(chosen)
            ]

        async def one(item: tuple[dict[str, str], str, int, str]) -> None:
            user, work_id, rating, text = item
            self._check(
                await client.post(
                    f"/api/works/{work_id}/reviews",
                    json={"rating": rating, "body": text},
                    headers=self._auth(user),
                ),
                "review",
            )
            self.state.reviews += 1

        await self._each("reviews", pairs, one)

    async def follows(self, client: httpx.AsyncClient) -> None:
        users = self.state.users
        pairs = [
            (u, f)
            for u in users
            for f in self.rng.sample(
                [x for x in users if x is not u], k=min(self.plan.follows_per_user, len(users) - 1)
            )
        ]
        if not pairs:
            return
        probe = pairs[0]
        reply = await self._follow(client, *probe)
        if reply.status_code in (404, 405) and not _is_api_error(reply):
            note = (
                "follows skipped: the gateway has no PUT /api/users/{id}/follow (the graph is not deployed)"
            )
            self.state.skipped.append(note)
            self.say(f"  {note}")
            return
        if reply.status_code == 503:
            note = "follows skipped: the graph service is unavailable (not deployed, or down)"
            self.state.skipped.append(note)
            self.say(f"  {note}")
            return
        self._check(reply, "follow")
        self.state.follows += 1

        async def one(item: tuple[dict[str, str], dict[str, str]]) -> None:
            self._check(await self._follow(client, *item), "follow")
            self.state.follows += 1

        await self._each("follows", pairs[1:], one)

    async def _follow(self, client: httpx.AsyncClient, user: dict[str, str], followee: dict[str, str],
                      within: float = 60.0) -> httpx.Response:
        """PUT the follow; while the graph has not yet learnt of a just registered user (it does from
        identity.user-registered, asynchronously) the answer is the API's 404: try again shortly."""
        deadline = time.monotonic() + within
        while True:
            reply = await client.put(f"/api/users/{followee['user_id']}/follow", headers=self._auth(user))
            if reply.status_code != 404 or not _is_api_error(reply) or time.monotonic() > deadline:
                return reply
            await asyncio.sleep(0.2)

    async def run(self, headers: dict[str, str] | None = None) -> SeedState:
        """Run every step; `headers` go with each request (e.g. a proxy's X-Forwarded-For)."""
        async with httpx.AsyncClient(base_url=self.plan.gateway, timeout=60, headers=headers) as client:
            try:
                health = await client.get("/healthz")
            except httpx.HTTPError as exc:
                raise SeedError(
                    f"no gateway at {self.plan.gateway} ({exc}); start one with `make up`"
                ) from exc
            if health.status_code != 200:
                raise SeedError(f"the gateway at {self.plan.gateway} is not ready: {health.text[:200]}")
            for name, step in self.steps:
                started = time.monotonic()
                self.say(f"==> {name}")
                await step(client)
                self.say(f"    {name} done in {time.monotonic() - started:.1f}s")
        return self.state


def _is_api_error(reply: httpx.Response) -> bool:
    """Whether a 404 is the API's own (e.g. an unknown user), not a route the gateway lacks."""
    try:
        error = reply.json().get("error")
    except ValueError:
        return False
    return isinstance(error, dict) and error.get("status") not in ("NO_ROUTE", "METHOD_NOT_ALLOWED")


class SeedError(Exception):
    """A seed step failed; the message says which and why."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `seed` to the top-level `culture` parser."""
    p = subparsers.add_parser(
        "seed",
        help="load generated demo data (users, works, reviews, follows) through the gateway",
        description="Load a generated catalog through the public HTTP API of a running gateway "
        "(`make up`): users, works across genres, reviews, follows. Nothing is downloaded.",
    )
    defaults = SeedPlan()
    p.add_argument("--gateway", default=defaults.gateway, help=f"gateway URL (default {defaults.gateway})")
    p.add_argument("--users", type=int, default=defaults.users, help="users to register")
    p.add_argument("--works", type=int, default=defaults.works, help="works to add")
    p.add_argument("--reviews-per-user", type=int, default=defaults.reviews_per_user)
    p.add_argument("--follows-per-user", type=int, default=defaults.follows_per_user)
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (same seed, same data)")
    p.add_argument("--concurrency", type=int, default=defaults.concurrency, help="requests in flight")
    p.add_argument(
        "--prefix", default="", help="username prefix (default: seed + random, so reruns add users)"
    )
    p.set_defaults(func=_seed)


def _seed(args: argparse.Namespace) -> int:
    plan = SeedPlan(
        args.gateway,
        args.users,
        args.works,
        args.reviews_per_user,
        args.follows_per_user,
        args.seed,
        args.concurrency,
        args.prefix,
    )
    for name in ("users", "works", "reviews_per_user", "follows_per_user", "concurrency"):
        if getattr(plan, name) < (1 if name in ("users", "concurrency") else 0):
            print(f"error: --{name.replace('_', '-')} is too small", file=sys.stderr)
            return 2

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        state = asyncio.run(Seeder(plan, say).run())
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    say(
        f"seeded {len(state.users)} users, {len(state.works)} works, {state.reviews} reviews, "
        f"{state.follows} follows" + (f" ({'; '.join(state.skipped)})" if state.skipped else "")
    )
    return 0
