"""Pure parts of the consumers: the welcome mail, the profile document and event, worker settings."""

from __future__ import annotations

import datetime as dt

import pytest

from culture.catalog.v1 import catalog_pb2
from culture.events.v1 import identity_events_pb2
from culture_catalog.profiles import profile_created, profile_document, to_proto
from culture_mailer.compose import message_id_for, welcome_mail
from culture_mailer.settings import MailerSettings
from culture_notifier.settings import NotifierSettings

pytestmark = pytest.mark.unit

EVENT = identity_events_pb2.UserRegistered(user_id="u-1", username="ada", email="ada@example.org",
                                           display_name="Ada Lovelace")


def test_the_message_id_is_stable_and_safe() -> None:
    assert message_id_for("e-1", "m.example") == "<welcome.e-1@m.example>"
    assert message_id_for("e-1", "m.example") == message_id_for("e-1", "m.example")
    assert message_id_for("a b<c>@d", "m.example") == "<welcome.a_b_c__d@m.example>"


def test_the_welcome_mail() -> None:
    mail = welcome_mail(EVENT, sender="Us <w@x>", message_id="<welcome.e@x>", event_id="e",
                        correlation_id="job")
    assert mail["To"] == "Ada Lovelace <ada@example.org>"
    assert mail["Subject"] == "Welcome to CulturePlatform, Ada Lovelace!"
    assert (mail["Message-ID"], mail["X-Culture-Event-Id"], mail["X-Culture-Correlation-Id"]) == (
        "<welcome.e@x>", "e", "job")
    assert "@ada" in mail.get_content()


def test_the_profile_of_a_registration() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    doc = profile_document(EVENT, "e-1", now)
    assert (doc["_id"], doc["display_name"], doc["state"], doc["source_event_id"]) == (
        "u-1", "Ada Lovelace", "active", "e-1")
    event = profile_created(doc)
    assert event.user_id == "u-1" and event.create_time.ToDatetime(dt.UTC) == now
    assert to_proto(doc).state == catalog_pb2.PROFILE_STATE_ACTIVE


def test_worker_settings_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MailerSettings().consumer_group == "mailer" and MailerSettings().poison_topic == "mailer.poison"
    monkeypatch.setenv("CULTURE_NOTIFIER_CONSUMER_GROUP", "notifier-test")
    monkeypatch.setenv("CULTURE_NOTIFIER_RETRY_MAX", "7")
    settings = NotifierSettings()
    assert settings.poison_topic == "notifier-test.poison" and settings.retry().max_retries == 7
    assert MailerSettings().consumer_group == "mailer"  # each service reads its own prefix
