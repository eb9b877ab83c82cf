"""The welcome mail itself: pure functions from the event to an email message (no I/O)."""

from __future__ import annotations

import email.utils
import re
from email.message import EmailMessage

from culture.events.v1 import identity_events_pb2

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def message_id_for(event_id: str, domain: str) -> str:
    """The Message-ID of the welcome mail caused by event `event_id` (stable across resends)."""
    return f"<welcome.{_UNSAFE_ID.sub('_', event_id)}@{domain}>"


def welcome_mail(event: identity_events_pb2.UserRegistered, *, sender: str, message_id: str,
                 event_id: str, correlation_id: str | None) -> EmailMessage:
    """The welcome mail for a newly registered user."""
    name = event.display_name or event.username or "there"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = (email.utils.formataddr((event.display_name, event.email)) if event.display_name
                 else event.email)
    msg["Subject"] = f"Welcome to CulturePlatform, {name}!"
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    msg["X-Culture-User-Id"] = event.user_id
    msg["X-Culture-Event-Id"] = event_id
    if correlation_id:
        msg["X-Culture-Correlation-Id"] = correlation_id
    msg.set_content(
        f"Hello {name},\n\n"
        f"your account @{event.username} is ready. Share what you read and watch, follow people with\n"
        "tastes like yours, and find your next book or film in your feed.\n\n"
        "-- CulturePlatform\n")
    return msg
