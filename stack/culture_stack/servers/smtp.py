"""The stack's SMTP server: a sink (aiosmtpd, a project dependency) that keeps every mail as a file.

Mail goes to `<state>/data/smtp/<recipient>/*.eml` (see `smtp_sink` for the layout and the test
hooks: recipients `refuse*@` are refused with 550, `slow<N>*@` get their 250 after N seconds).
Tests read what arrived with `mails_for(ctx, address)` (what the recipient's mailbox shows: one per
Message-ID, as mailbox providers deduplicate) or `deliveries_for(ctx, address)` (every SMTP
delivery, resends included).
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from culture_stack.ports import HOST, SMTP
from culture_stack.server import Context, Launch, Server, StackError
from culture_stack.servers.smtp_sink import mailbox_dir_name


def mail_dir(ctx: Context) -> Path:
    """Where the sink stores mail."""
    return ctx.data("smtp")


def deliveries_for(ctx: Context, address: str) -> list[EmailMessage]:
    """Every mail delivered to `address` over SMTP, oldest first (a resend counts twice)."""
    box = mail_dir(ctx) / mailbox_dir_name(address)
    if not box.is_dir():
        return []
    files = sorted(box.glob("*.eml"), key=lambda p: int(p.name.split("-", 1)[0]))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in files]


def mails_for(ctx: Context, address: str) -> list[EmailMessage]:
    """The mails `address` sees: deliveries with the same Message-ID count once (the first one)."""
    seen: set[str] = set()
    mails = []
    for mail in deliveries_for(ctx, address):
        mid = str(mail.get("Message-ID", "")).strip()
        if mid and mid in seen:
            continue
        seen.add(mid)
        mails.append(mail)
    return mails


class SmtpSink(Server):
    """aiosmtpd on 127.0.0.1:ports.SMTP storing mail under `<state>/data/smtp`."""

    name = "smtp"
    port = SMTP
    start_timeout = 30.0
    stop_timeout = 15.0

    def install(self, ctx: Context) -> None:
        try:
            import aiosmtpd  # noqa: F401 - a project dependency: nothing to download
        except ImportError as exc:
            raise StackError("aiosmtpd is missing from the venv: run `make venv` "
                             "(or `.venv/bin/pip install -e '.[dev]'`)") from exc

    def init_data(self, ctx: Context) -> None:
        mail_dir(ctx).mkdir(parents=True, exist_ok=True)

    def launch(self, ctx: Context) -> Launch:
        return Launch([sys.executable, "-m", "culture_stack.servers.smtp_sink", "--dir", str(mail_dir(ctx)),
                       "--host", HOST, "--port", str(SMTP)])

    def _greeting(self) -> str:
        """The server's 220 greeting, "<hostname> <ident>", read over SMTP."""
        client = smtplib.SMTP(timeout=3)
        try:
            code, text = client.connect(HOST, SMTP)
            if code != 220:
                raise StackError(f"smtp: the greeting was {code} {text!r}, not 220")
            client.quit()
        finally:
            client.close()
        return text.decode(errors="replace")

    def healthy(self, ctx: Context) -> bool:
        return bool(self._greeting())

    def version(self, ctx: Context) -> str:
        greeting = self._greeting()
        return greeting.split(" ", 1)[1] if " " in greeting else greeting

    def settings(self) -> dict[str, Any]:
        return {"host": HOST, "port": SMTP, "mail_dir": str(mail_dir(Context.default()))}
