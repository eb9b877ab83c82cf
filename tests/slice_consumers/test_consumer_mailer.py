"""The mailer on the real stack: one welcome mail per user, failures retried then poisoned and
reported, and a crash after the SMTP server accepted the mail still shows the user one mail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest
from _consumers_support import Role, TopicWatch, ns, publish_event, start_at_end, user_registered

from culture.events.v1 import identity_events_pb2, mailer_events_pb2
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.message import Message
from culture_events.middleware import PoisonMeta
from culture_events.testing import wait_until
from culture_mailer.ledger import Ledger
from culture_runtime.settings import PlatformSettings
from culture_stack.server import Context
from culture_stack.servers import smtp

pytestmark = pytest.mark.integration

REGISTERED = topic_of(identity_events_pb2.UserRegistered)
SENT = topic_of(mailer_events_pb2.WelcomeMailSent)
FAILED = topic_of(mailer_events_pb2.WelcomeMailFailed)


async def _mailer(roles: Callable[..., Role], group: str, **env: str) -> Role:
    await start_at_end(group, [ns(REGISTERED)])
    role = roles("mailer", "worker", {"CULTURE_MAILER_CONSUMER_GROUP": group, **env})
    await role.serving()
    return role


async def test_the_same_event_twice_sends_one_mail(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    seen = await watch([ns(SENT)])
    await _mailer(roles, f"mailer-{unique}")
    event = user_registered(unique)
    first = await publish_event(event, job_id=f"job-{unique}")
    await publish_event(event, job_id=f"job-{unique}", event_id=first.id)  # a redelivery: same event id

    # both deliveries were handled (each reports the mail as sent) ...
    def two_reports() -> list[Message] | None:
        found = seen.on(ns(SENT), event.user_id)
        return found if len(found) >= 2 else None

    reports = await wait_until(two_reports, 60.0, "two welcome-mail-sent reports", interval=0.1)
    # ... but only one went over SMTP
    assert len(smtp.deliveries_for(consumer_servers, event.email)) == 1
    mail = smtp.mails_for(consumer_servers, event.email)[0]
    assert mail["Message-ID"].strip() == f"<welcome.{first.id}@mailer.culture.local>"
    assert mail["X-Culture-Correlation-Id"] == f"job-{unique}"
    assert "Welcome to CulturePlatform" in mail["Subject"]
    sent = decode(reports[0], mailer_events_pb2.WelcomeMailSent)
    assert (sent.user_id, sent.email) == (event.user_id, event.email)
    assert sent.message_id == mail["Message-ID"].strip()
    assert reports[0].metadata["correlation_id"] == f"job-{unique}"


async def test_a_refused_mail_is_retried_then_poisoned_and_reported(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    group = f"mailer-{unique}"
    await start_at_end(group, [f"{group}.poison"])
    seen = await watch([ns(SENT), ns(FAILED), f"{group}.poison"])
    await _mailer(roles, group, CULTURE_MAILER_RETRY_MAX="2", CULTURE_MAILER_RETRY_INITIAL_SECONDS="0.1")
    refused = user_registered(unique, email=f"refuse-{unique}@example.org")
    fine = user_registered(unique)
    await publish_event(refused, job_id=f"job-{unique}-r")
    await publish_event(fine, job_id=f"job-{unique}-f")

    poisoned = await wait_until(lambda: seen.on(f"{group}.poison", refused.user_id), 60.0,
                                "the poisoned event", interval=0.1)
    meta = poisoned[0].metadata
    assert "550" in meta[PoisonMeta.REASON] and "SMTPRecipientsRefused" in meta[PoisonMeta.REASON]
    assert meta[PoisonMeta.ATTEMPTS] == "3"  # the first try and two retries
    assert meta[PoisonMeta.HANDLER] == "mailer.welcome" and meta[PoisonMeta.TOPIC] == ns(REGISTERED)
    report = await wait_until(lambda: seen.on(ns(FAILED), refused.user_id), 60.0, "welcome-mail-failed",
                              interval=0.1)
    failed = decode(report[0], mailer_events_pb2.WelcomeMailFailed)
    assert failed.attempts == 3 and "550" in failed.reason and failed.email == refused.email
    assert report[0].metadata["correlation_id"] == f"job-{unique}-r"
    # the other user is not held up by the failing one
    await wait_until(lambda: seen.on(ns(SENT), fine.user_id), 60.0, "the other user's mail", interval=0.1)
    assert len(smtp.mails_for(consumer_servers, fine.email)) == 1
    assert smtp.deliveries_for(consumer_servers, refused.email) == []
    assert not seen.on(ns(SENT), refused.user_id)


async def test_a_crash_after_the_server_accepted_the_mail_still_shows_one_mail(
        consumer_servers: Context, unique: str, roles: Callable[..., Role],
        watch: Callable[[Sequence[str]], Awaitable[TopicWatch]]) -> None:
    """The sink stores a `slow5*` mail at once but answers 250 only 5 s later: we SIGKILL the mailer
    in between (delivered, not yet recorded as sent). The restarted mailer gets the event again."""
    group = f"mailer-{unique}"
    seen = await watch([ns(SENT)])
    fast = {"CULTURE_MAILER_SMTP_TIMEOUT_SECONDS": "8"}  # > the sink's 5 s; the lock lives 13 s
    first = await _mailer(roles, group, **fast)
    event = user_registered(unique, email=f"slow5-{unique}@example.org")
    msg = await publish_event(event, job_id=f"job-{unique}")
    await wait_until(lambda: smtp.deliveries_for(consumer_servers, event.email), 60.0,
                     "the mail to reach the sink", interval=0.1)
    first.kill()
    assert not seen.on(ns(SENT), event.user_id)

    await _restart(roles, group, fast)
    await wait_until(lambda: seen.on(ns(SENT), event.user_id), 90, "welcome-mail-sent after the restart",
                     interval=0.1)
    mails = smtp.mails_for(consumer_servers, event.email)
    deliveries = smtp.deliveries_for(consumer_servers, event.email)
    assert len(mails) == 1  # what the user sees
    # the resend (if any) is the very same mail: same Message-ID, derived from the event id
    assert {d["Message-ID"].strip() for d in deliveries} == {f"<welcome.{msg.id}@mailer.culture.local>"}
    assert 1 <= len(deliveries) <= 2
    ledger = Ledger(PlatformSettings().redis_url, 3600)
    try:
        record = await ledger.get(event.user_id)
    finally:
        await ledger.close()
    assert record is not None and record.state == "sent" and record.attempts == len(deliveries)


async def _restart(roles: Callable[..., Role], group: str, env: dict[str, str]) -> Role:
    role = roles("mailer", "worker", {"CULTURE_MAILER_CONSUMER_GROUP": group, **env})
    await role.serving()
    return role
