"""The consistency check's comparison (culture_cli.consistency): each read model's lost, duplicated and
unexpected effects, the feed's expectation rules (interest, follow age, celebrities), the report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from culture_cli.consistency import (
    DUPLICATED,
    LOST,
    UNEXPECTED,
    Difference,
    FeedItem,
    Follow,
    Job,
    ReadModels,
    Review,
    User,
    WriteModel,
    compare,
    expected_copies,
    report,
    summary,
)
from culture_cli.consistency_io import Scope, read_spool
from culture_cli.main import build_parser

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
OK_STEPS = {s: "succeeded" for s in ("account", "profile", "welcome-mail", "graph", "feed")}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def world() -> tuple[WriteModel, ReadModels]:
    """a follows b (before b's review r1 in sf, a is interested in sf); c follows b after r1; everything
    consistent."""
    users = [User("a", "ua", "a@x.org"), User("b", "ub", "b@x.org"), User("c", "uc", "C@x.org")]
    reviews = [Review("r1", "b", ("sf",), at(10)), Review("r0", "a", ("sf",), at(1))]
    follows = [Follow("a", "b", at(5)), Follow("c", "b", at(20))]
    write = WriteModel(users, reviews, follows)
    read = ReadModels(
        profiles=["a", "b", "c"], mails={"a": "sent", "b": "sent", "c": "sent"},
        mail_files={"a@x.org": 1, "b@x.org": 1, "c@x.org": 1},
        graph_users=["a", "b", "c"], graph_ratings=["r1", "r0"], interests={"a": {"sf"}, "b": {"sf"}},
        feed_rows=["a", "b", "c"], feed_authored=["r1", "r0"], feed_following=[("a", "b"), ("c", "b")],
        feed_items=[FeedItem("a", "r1", "b"), FeedItem("c", "r1", "b")],
        jobs=[Job("j1", "a", OK_STEPS), Job("j2", "b", OK_STEPS), Job("j3", "c", OK_STEPS)])
    return write, read


def test_a_consistent_world_has_no_difference() -> None:
    write, read = world()
    assert compare(write, read) == []
    assert summary([]) == {LOST: 0, DUPLICATED: 0, UNEXPECTED: 0}
    last = report(write, [], ["profiles"]).splitlines()[-1]
    assert last == "consistent: 0 lost, 0 duplicated, 0 unexpected"


def test_a_missing_profile_and_feed_copy_are_lost_with_their_ids() -> None:
    write, read = world()
    assert read.profiles is not None and read.feed_items is not None
    read.profiles.remove("b")
    read.feed_items.remove(FeedItem("a", "r1", "b"))
    assert compare(write, read) == [Difference("profiles", LOST, "b", "no profile"),
                                    Difference("feed", LOST, "a/r1", "no timeline copy")]


def test_duplicates_are_reported_apart_from_losses() -> None:
    write, read = world()
    assert read.graph_users is not None and read.feed_items is not None and read.jobs is not None
    read.graph_users.append("a")
    read.feed_items.append(FeedItem("a", "r1", "b"))
    read.jobs.append(Job("j9", "c", OK_STEPS))
    assert read.mail_files is not None
    read.mail_files["b@x.org"] = 2
    diffs = compare(write, read)
    assert {d.kind for d in diffs} == {DUPLICATED}
    assert [(d.model, d.id) for d in diffs] == [("mails", "b"), ("graph", "a"), ("feed", "a/r1"),
                                                ("jobs", "c")]
    assert "j3" in diffs[-1].detail and "j9" in diffs[-1].detail


def test_mail_ledger_states_and_spool() -> None:
    write, read = world()
    assert read.mails is not None and read.mail_files is not None
    read.mails["a"] = "failed"
    del read.mails["b"]
    read.mail_files["c@x.org"] = 0  # the address is matched case-insensitively
    assert [(d.kind, d.id, d.detail) for d in compare(write, read)] == [
        (LOST, "a", "ledger says failed"), (LOST, "b", "no welcome mail in the ledger"),
        (LOST, "c", "no mail to C@x.org in the SMTP spool")]


def test_graph_rating_lost_and_job_steps_behind() -> None:
    write, read = world()
    read.graph_ratings = ["r1"]
    read.jobs = [Job("j1", "a", {**OK_STEPS, "feed": "pending", "graph": "failed"}), Job("j2", "b", OK_STEPS)]
    assert [(d.model, d.kind, d.id, d.detail) for d in compare(write, read)] == [
        ("graph", LOST, "r0", "no RATED edge"),
        ("jobs", LOST, "a/j1", "steps graph failed, feed pending"),
        ("jobs", LOST, "c", "no registration job")]


def test_feed_mirror_rows_lost_and_unexpected() -> None:
    write, read = world()
    read.feed_following = [("a", "b"), ("a", "c")]
    assert [(d.kind, d.id) for d in compare(write, read)] == [(LOST, "c->b"), (UNEXPECTED, "a->c")]


def test_a_copy_for_someone_not_following_the_author_is_unexpected() -> None:
    write, read = world()
    assert read.feed_items is not None
    read.feed_items.append(FeedItem("b", "r0", "a"))
    why = "timeline copy of a review by a, whom the reader does not follow"
    assert compare(write, read) == [Difference("feed", UNEXPECTED, "b/r0", why)]


def test_expected_copies_follow_interest_age_and_celebrities() -> None:
    write, _ = world()
    # a: follows before the review and interested -> required; c: follows after it (backfill: allowed)
    assert expected_copies(write, {"a": {"sf"}, "c": {"sf"}}, set()) == {("a", "r1")}
    # not interested in the review's genres: no copy required
    assert expected_copies(write, {"a": {"fantasy"}}, set()) == set()
    # a celebrity's reviews are merged at read time: no copies
    assert expected_copies(write, {"a": {"sf"}}, {"b"}) == set()
    # a review without genres fans out to nobody
    write.reviews.append(Review("r2", "b", (), at(30)))
    assert expected_copies(write, {"a": {"sf"}}, set()) == {("a", "r1")}


def test_models_not_read_are_not_compared() -> None:
    write, _ = world()
    assert compare(write, ReadModels()) == []


def test_the_report_groups_by_kind() -> None:
    write, _ = world()
    diffs = [Difference("profiles", LOST, "b", "no profile"),
             Difference("feed", DUPLICATED, "a/r1", "2 copies")]
    text = report(write, diffs, ["profiles", "feed"])
    assert "lost effects (1):\n  lost       profiles b  (no profile)" in text
    assert "duplicated effects (1):" in text
    assert text.splitlines()[-1] == "INCONSISTENT: 1 lost, 1 duplicated, 0 unexpected"


def test_the_cli_parses_the_scope() -> None:
    args = build_parser().parse_args(["check", "consistency", "--since", "2026-12-02T17:00:00Z", "--users",
                                      "u1,u2", "--username-prefix", "run1", "--skip", "mails", "--wait", "5"])
    assert args.since == dt.datetime(2026, 12, 2, 17, tzinfo=dt.UTC)
    assert (args.users, args.username_prefix, args.skip, args.wait) == ("u1,u2", "run1", "mails", 5.0)


def test_the_cli_refuses_unknown_models(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["check", "consistency", "--skip", "nope"])
    assert args.func(args) == 2
    assert "unknown read models ['nope']" in capsys.readouterr().err


def test_the_spool_counts_distinct_message_ids(tmp_path: Path) -> None:
    box = tmp_path / "ann+x@example.org"
    box.mkdir()
    for n, mid in enumerate(["<a@m>", "<a@m>", "<b@m>"]):  # a resend of one mail counts once
        (box / f"{n}-x.eml").write_text(f"Message-ID: {mid}\r\nSubject: hi\r\n\r\nbody\r\n")
    users = [User("u1", "ann", "Ann+X@example.org"), User("u2", "ben", "ben@example.org")]
    assert read_spool(tmp_path, users) == {"ann+x@example.org": 2, "ben@example.org": 0}


def test_the_scope_describes_itself() -> None:
    assert Scope().describe() == "every user"
    since = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    assert Scope(("a", "b"), since, "run1").describe() == (
        "2 user ids and registered since 2026-12-02T00:00:00+00:00 and usernames starting with 'run1'")
