"""The welcome-mail handler and its failure report (see the package docstring for the guarantee)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiosmtplib
from google.protobuf import timestamp_pb2

from culture.events.v1 import identity_events_pb2, mailer_events_pb2
from culture_contracts.topics import key_of, topic_of
from culture_events import correlation
from culture_events.codec import decode, encode
from culture_events.errors import PermanentError, RetryLater, attempts
from culture_events.handling import Handler, Middleware
from culture_events.message import Message
from culture_events.middleware import PoisonQueue, correlation_id, recoverer, timeout
from culture_events.ports import Publisher
from culture_mailer.compose import message_id_for, welcome_mail
from culture_mailer.ledger import SENT, Ledger
from culture_mailer.settings import MailerSettings
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring

log = logging.getLogger("culture_mailer")

SENT_TOPIC = topic_of(mailer_events_pb2.WelcomeMailSent)
FAILED_TOPIC = topic_of(mailer_events_pb2.WelcomeMailFailed)
SOURCE_TOPIC = topic_of(identity_events_pb2.UserRegistered)


class MailBusy(RuntimeError):
    """Another replica is sending this user's mail right now (retryable)."""


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def _event_id(msg: Message) -> str:
    return msg.id


class WelcomeMailer:
    """Handles UserRegistered: sends the welcome mail once, returns WelcomeMailSent."""

    def __init__(self, settings: MailerSettings, platform: PlatformSettings, ledger: Ledger) -> None:
        self.settings = settings
        self.platform = platform
        self.ledger = ledger

    def _sent(self, event: identity_events_pb2.UserRegistered, message_id: str) -> list[Message]:
        done = mailer_events_pb2.WelcomeMailSent(user_id=event.user_id, email=event.email,
                                                 message_id=message_id, send_time=_now())
        return [encode(done, key=key_of(done))]

    @property
    def lock_seconds(self) -> float:
        """How long the per-user lock lives: one SMTP conversation plus a margin. A mailer that dies
        holding it blocks that user's mail for at most this long."""
        return self.settings.smtp_timeout_seconds + 5

    async def _lock(self, user_id: str) -> str:
        """Wait for the user's sending lock (a crashed holder's lock expires); its token."""
        deadline = time.monotonic() + self.lock_seconds + 1
        while (token := await self.ledger.lock(user_id, self.lock_seconds)) is None:
            if time.monotonic() > deadline:
                raise MailBusy(f"another mailer has been sending the welcome mail of {user_id} for "
                               f"{self.lock_seconds:.0f}s; retrying")
            await asyncio.sleep(0.2)
        return token

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, identity_events_pb2.UserRegistered, max_schema_version=1)
        if not event.user_id or not event.email:
            raise PermanentError(f"UserRegistered {msg.id} has no user_id or no email; cannot send a mail")
        token = await self._lock(event.user_id)
        try:
            # read under the lock: whoever held it before may have sent the mail meanwhile
            record = await self.ledger.get(event.user_id)
            if record is not None and record.state == SENT:
                log.info("welcome mail for %s already sent (%s); event %s is a duplicate",
                         event.user_id, record.message_id, msg.id)
                return self._sent(event, record.message_id)  # again: the first report may be lost
            # a recorded attempt fixes the Message-ID: a resend must be recognisable as the same mail
            message_id = record.message_id if record and record.message_id else message_id_for(
                _event_id(msg), self.settings.message_id_domain)
            await self.ledger.sending(event.user_id, _event_id(msg), message_id, event.email)
            mail = welcome_mail(event, sender=self.settings.sender, message_id=message_id,
                                event_id=_event_id(msg), correlation_id=correlation.current())
            password = self.settings.smtp_password.get_secret_value() if self.settings.smtp_password else None
            # the whole conversation within smtp_timeout, so it ends before the lock can expire
            async with asyncio.timeout(self.settings.smtp_timeout_seconds):
                await aiosmtplib.send(mail, hostname=self.platform.smtp_host, port=self.platform.smtp_port,
                                      timeout=self.settings.smtp_timeout_seconds,
                                      username=self.settings.smtp_username, password=password,
                                      start_tls=self.settings.smtp_starttls)
            await self.ledger.sent(event.user_id)
        finally:
            await self.ledger.unlock(event.user_id, token)
        log.info("welcome mail for %s sent to %s (%s)", event.user_id, event.email, message_id)
        return self._sent(event, message_id)


def report_failure(publisher: Publisher, ledger: Ledger, topic: str = FAILED_TOPIC) -> Middleware:
    """On a final failure (after the retries), emit WelcomeMailFailed, then let the error through to
    PoisonQueue, which puts the event on the poison topic with the reason."""

    def middleware(next_handler: Handler) -> Handler:
        async def handle(msg: Message) -> list[Message]:
            try:
                return await next_handler(msg)
            except (asyncio.CancelledError, RetryLater):  # RetryLater: not final, the router retries later
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"[:1000]
                try:
                    event = decode(msg, identity_events_pb2.UserRegistered)
                except PermanentError:
                    raise exc from None  # no user to report on: only the poison topic
                if event.user_id:
                    failed = mailer_events_pb2.WelcomeMailFailed(
                        user_id=event.user_id, email=event.email, reason=reason, attempts=attempts(exc),
                        fail_time=_now())
                    try:
                        await ledger.failed(event.user_id, reason)
                        await publisher.publish(topic, encode(failed, key=key_of(failed)))
                    except Exception as report_exc:  # noqa: BLE001 - the poison topic still gets the event
                        log.warning("could not report the failed welcome mail of %s: %r",
                                    event.user_id, report_exc)
                raise

        return handle

    return middleware


def mailer_chain(ledger: Ledger) -> Callable[[Wiring], list[Middleware]]:
    """The mailer's middleware: the standard order with the failure report between poison and retry."""

    def chain(wiring: Wiring) -> list[Middleware]:
        settings = wiring.settings
        return [correlation_id, PoisonQueue(wiring.publisher, settings.poison_topic),
                report_failure(wiring.publisher, ledger, wiring.platform.topic(FAILED_TOPIC)),
                settings.retry(), timeout(settings.handler_timeout_seconds), recoverer]

    return chain
