"""The stack's SMTP sink: stores what it accepts, refuses `refuse*@` recipients, reports its version."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

import aiosmtplib
import pytest

from culture_stack import registry, stack
from culture_stack.ports import HOST, SMTP
from culture_stack.server import Context
from culture_stack.servers import smtp, smtp_sink


@pytest.fixture(scope="module")
def sink(stack_ctx: Context) -> Context:
    """Only the SMTP sink up and healthy."""
    stack.up(stack_ctx, registry.select(["smtp"]))
    return stack_ctx


def _mail(to: str, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tests@culture.local"
    msg["To"] = to
    msg["Subject"] = "hello"
    msg["Message-ID"] = message_id
    msg.set_content("body")
    return msg


@pytest.mark.unit
def test_test_hooks_are_chosen_by_the_local_part() -> None:
    assert smtp_sink.refused("refuse-x@example.org") and not smtp_sink.refused("x@refuse.org")
    assert smtp_sink.slow_seconds("slow3-a@example.org") == 3
    assert smtp_sink.slow_seconds("slow-a@example.org") == smtp_sink.DEFAULT_SLOW_SECONDS
    assert smtp_sink.slow_seconds("ada@example.org") == 0
    assert smtp_sink.mailbox_dir_name("<Ada/../x@Example.org>") == "ada_.._x@example.org"


@pytest.mark.integration
async def test_stores_mail_and_dedups_the_mailbox_by_message_id(sink: Context, unique: str) -> None:
    to = f"{unique}@example.org"
    for _ in range(2):  # the same mail twice: two deliveries, one mail in the mailbox
        await aiosmtplib.send(_mail(to, f"<{unique}@tests>"), hostname=HOST, port=SMTP)
    await aiosmtplib.send(_mail(to, f"<{unique}-2@tests>"), hostname=HOST, port=SMTP)
    assert len(smtp.deliveries_for(sink, to)) == 3
    mails = smtp.mails_for(sink, to)
    assert [m["Message-ID"] for m in mails] == [f"<{unique}@tests>", f"<{unique}-2@tests>"]
    assert mails[0]["X-Culture-Envelope-To"] == to and mails[0].get_content().strip() == "body"


@pytest.mark.integration
async def test_refuses_refuse_recipients_only(sink: Context, unique: str) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused, match="550"):
        await aiosmtplib.send(_mail(f"refuse-{unique}@example.org", "<r@tests>"), hostname=HOST, port=SMTP)
    assert smtp.deliveries_for(sink, f"refuse-{unique}@example.org") == []


@pytest.mark.integration
async def test_slow_recipients_are_stored_before_the_reply(sink: Context, unique: str) -> None:
    to = f"slow2-{unique}@example.org"
    started = time.monotonic()
    sending = asyncio.ensure_future(aiosmtplib.send(_mail(to, "<s@tests>"), hostname=HOST, port=SMTP))
    deadline = time.monotonic() + 10
    while not smtp.deliveries_for(sink, to):
        assert time.monotonic() < deadline, "the slow mail was never stored"
        await asyncio.sleep(0.05)
    assert not sending.done()  # stored, but the client has not heard back yet
    await sending
    assert time.monotonic() - started >= 2


@pytest.mark.integration
def test_status_reports_the_live_servers_ident(sink: Context) -> None:
    server = registry.select(["smtp"])[0]
    assert server.version(sink).startswith("culture-smtp-sink (aiosmtpd 1.")
