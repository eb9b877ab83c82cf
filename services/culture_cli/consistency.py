"""The consistency check's comparison: write models against read models. Pure: no I/O.

The write models are the masters of record: identity's users (PostgreSQL), the catalog's reviews
(MongoDB) and the graph's follows (the FOLLOWS edges its api-write commits with their outbox
events, Neo4j). Every read model is derived from their events, so each write-model fact has an
expected effect in each read model:

| fact | read model | expected |
|---|---|---|
| a user | catalog profiles | exactly one profile document |
| a user | mailer ledger (and, when given, the SMTP spool) | the welcome mail `sent` (exactly one mail file) |
| a user | graph | exactly one `(:User)` node |
| a user | feed | the user's feed row |
| a user | notifier | exactly one registration job, every step succeeded |
| a review | graph | exactly one `RATED` edge carrying the review id |
| a review | feed | the author's item (`reviews` row) |
| a follow | feed | the `following` mirror row |
| a review x a follow of its author | feed timeline | a copy when (*) |

(*) the follow is older than the review, the author is no celebrity and the follower is interested in
one of the review's genres (the graph's INTERESTED_IN edges: what the fan-out asks the graph). Any
follower may hold a copy: a follow's backfill copies the followee's recent reviews whatever their
genre. Interests are read as they are now: a follower whose interest in the genre came only after
the fan-out is reported as lost (workloads that check the feed set the interests first).

Each difference is `lost` (an expected effect is missing), `duplicated` (it is there more than once)
or `unexpected` (an effect no write-model fact explains: a copy in the timeline of someone who does
not follow the author, a mirror row of a follow that does not exist). The check agrees only when
there is no difference at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

LOST, DUPLICATED, UNEXPECTED = "lost", "duplicated", "unexpected"
KINDS = (LOST, DUPLICATED, UNEXPECTED)
#: the read models the checker knows, in report order
MODELS = ("profiles", "mails", "graph", "feed", "jobs")
REGISTRATION_STEPS = ("account", "profile", "welcome-mail", "graph", "feed")
SUCCEEDED = "succeeded"
MAIL_SENT = "sent"


@dataclasses.dataclass(frozen=True)
class User:
    user_id: str
    username: str = ""
    email: str = ""


@dataclasses.dataclass(frozen=True)
class Review:
    review_id: str
    author: str
    genres: tuple[str, ...] = ()
    created: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Follow:
    follower: str
    followee: str
    at: dt.datetime | None = None


@dataclasses.dataclass
class WriteModel:
    """The facts in scope."""

    users: list[User] = dataclasses.field(default_factory=list)
    reviews: list[Review] = dataclasses.field(default_factory=list)
    follows: list[Follow] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Job:
    job_id: str
    user_id: str
    steps: Mapping[str, str]  # step name -> state


@dataclasses.dataclass(frozen=True)
class FeedItem:
    reader: str
    review_id: str
    author: str


@dataclasses.dataclass
class ReadModels:
    """What the read models hold for the users in scope; None: that model was not read (skipped)."""

    profiles: list[str] | None = None  # user id of each profile document
    mails: dict[str, str] | None = None  # user id -> ledger state
    mail_files: dict[str, int] | None = None  # recipient address (lowercase) -> mails in the SMTP spool
    graph_users: list[str] | None = None  # user id of each (:User) node
    graph_ratings: list[str] | None = None  # review id of each RATED edge of the users
    interests: dict[str, set[str]] | None = None  # user id -> genre slugs of its INTERESTED_IN edges
    feed_rows: list[str] | None = None  # user id of each feed row
    feed_authored: list[str] | None = None  # review id of each author item (`reviews` table)
    feed_following: list[tuple[str, str]] | None = None  # (follower, followee) mirror rows
    feed_items: list[FeedItem] | None = None  # the timeline copies of the readers in scope
    celebrities: set[str] = dataclasses.field(default_factory=set)
    jobs: list[Job] | None = None  # registration jobs of the users in scope


@dataclasses.dataclass(frozen=True, order=True)
class Difference:
    model: str
    kind: str
    id: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind:<10} {self.model:<8} {self.id}" + (f"  ({self.detail})" if self.detail else "")


def _counted(model: str, what: str, expected: Iterable[str], seen: Iterable[str]) -> list[Difference]:
    """Each expected id exactly once in `seen`: lost when absent, duplicated when there more than once."""
    counts = Counter(seen)
    out = []
    for key in expected:
        n = counts.get(key, 0)
        if n == 0:
            out.append(Difference(model, LOST, key, f"no {what}"))
        elif n > 1:
            out.append(Difference(model, DUPLICATED, key, f"{n} {what}s"))
    return out


def expected_copies(write: WriteModel, interests: Mapping[str, set[str]],
                    celebrities: set[str]) -> set[tuple[str, str]]:
    """(reader, review id) pairs the fan-out must have written (see the module's table)."""
    followers: dict[str, list[Follow]] = {}
    for f in write.follows:
        followers.setdefault(f.followee, []).append(f)
    out = set()
    for r in write.reviews:
        if r.author in celebrities or not r.genres:
            continue
        for f in followers.get(r.author, []):
            older = f.at is not None and r.created is not None and f.at < r.created
            if older and interests.get(f.follower, set()) & set(r.genres):
                out.add((f.follower, r.review_id))
    return out


def _feed(write: WriteModel, read: ReadModels) -> list[Difference]:
    out: list[Difference] = []
    users = [u.user_id for u in write.users]
    if read.feed_rows is not None:
        out += _counted("feed", "feed row", users, read.feed_rows)
    if read.feed_authored is not None:
        out += _counted("feed", "author item", [r.review_id for r in write.reviews], read.feed_authored)
    follows = {(f.follower, f.followee) for f in write.follows}
    if read.feed_following is not None:
        mirror = Counter(read.feed_following)
        for pair in sorted(follows):
            if pair not in mirror:
                out.append(Difference("feed", LOST, f"{pair[0]}->{pair[1]}", "no following mirror row"))
        for pair in sorted(set(mirror) - follows):
            out.append(Difference("feed", UNEXPECTED, f"{pair[0]}->{pair[1]}",
                                  "following mirror row of a follow the graph does not have"))
    if read.feed_items is not None:
        copies = Counter((i.reader, i.review_id) for i in read.feed_items)
        authors = {(i.reader, i.review_id): i.author for i in read.feed_items}
        for reader, review in sorted(expected_copies(write, read.interests or {}, read.celebrities)):
            if (reader, review) not in copies:
                out.append(Difference("feed", LOST, f"{reader}/{review}", "no timeline copy"))
        for (reader, review), n in sorted(copies.items()):
            if n > 1:
                out.append(Difference("feed", DUPLICATED, f"{reader}/{review}", f"{n} timeline copies"))
            author = authors[(reader, review)]
            if reader != author and (reader, author) not in follows:
                why = f"timeline copy of a review by {author}, whom the reader does not follow"
                out.append(Difference("feed", UNEXPECTED, f"{reader}/{review}", why))
    return out


def _jobs(write: WriteModel, jobs: Sequence[Job]) -> list[Difference]:
    out = []
    by_user: dict[str, list[Job]] = {}
    for j in jobs:
        by_user.setdefault(j.user_id, []).append(j)
    for u in write.users:
        mine = by_user.get(u.user_id, [])
        if not mine:
            out.append(Difference("jobs", LOST, u.user_id, "no registration job"))
            continue
        if len(mine) > 1:
            ids = ", ".join(sorted(j.job_id for j in mine))
            out.append(Difference("jobs", DUPLICATED, u.user_id, f"{len(mine)} registration jobs: {ids}"))
        for j in mine:
            behind = [f"{s} {j.steps.get(s, 'missing')}" for s in REGISTRATION_STEPS
                      if j.steps.get(s) != SUCCEEDED]
            if behind:
                out.append(Difference("jobs", LOST, f"{u.user_id}/{j.job_id}", "steps " + ", ".join(behind)))
    return out


def compare(write: WriteModel, read: ReadModels) -> list[Difference]:
    """Every difference between the write models and the read models given (sorted by model, kind)."""
    out: list[Difference] = []
    users = [u.user_id for u in write.users]
    if read.profiles is not None:
        out += _counted("profiles", "profile", users, read.profiles)
    if read.mails is not None:
        for u in write.users:
            state = read.mails.get(u.user_id)
            if state != MAIL_SENT:
                why = "no welcome mail in the ledger" if state is None else f"ledger says {state}"
                out.append(Difference("mails", LOST, u.user_id, why))
    if read.mail_files is not None:
        for u in write.users:
            n = read.mail_files.get(u.email.lower(), 0)
            if n == 0:
                out.append(Difference("mails", LOST, u.user_id, f"no mail to {u.email} in the SMTP spool"))
            elif n > 1:
                out.append(Difference("mails", DUPLICATED, u.user_id, f"{n} mails to {u.email}"))
    if read.graph_users is not None:
        out += _counted("graph", "User node", users, read.graph_users)
    if read.graph_ratings is not None:
        out += _counted("graph", "RATED edge", [r.review_id for r in write.reviews], read.graph_ratings)
    out += _feed(write, read)
    if read.jobs is not None:
        out += _jobs(write, read.jobs)
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(out, key=lambda d: (order.get(d.model, 99), KINDS.index(d.kind), d.id))


def summary(differences: Sequence[Difference]) -> dict[str, int]:
    """{kind: count} over every kind."""
    counts = Counter(d.kind for d in differences)
    return {k: counts.get(k, 0) for k in KINDS}


def report(write: WriteModel, differences: Sequence[Difference], models: Sequence[str]) -> str:
    """The printed report: the scope, each difference grouped by kind, then one summary line."""
    lines = [f"scope: {len(write.users)} users, {len(write.reviews)} reviews, {len(write.follows)} follows; "
             f"read models: {', '.join(models)}"]
    for kind in KINDS:
        mine = [d for d in differences if d.kind == kind]
        if mine:
            lines.append(f"{kind} effects ({len(mine)}):")
            lines += ["  " + d.line() for d in mine]
    counts = summary(differences)
    verdict = "consistent" if not differences else "INCONSISTENT"
    lines.append(f"{verdict}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return "\n".join(lines)
