"""The mailer's roles for `culture serve mailer --role ...`: only `worker`."""

from __future__ import annotations

from culture_events.router import Router
from culture_mailer.ledger import Ledger
from culture_mailer.settings import MailerSettings
from culture_mailer.worker import FAILED_TOPIC, SENT_TOPIC, SOURCE_TOPIC, WelcomeMailer, mailer_chain
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring, run_worker


async def worker() -> None:
    """Consume identity.user-registered; send one welcome mail per user."""
    platform = PlatformSettings().require("redis_url", "smtp_host", "kafka_bootstrap")
    settings = MailerSettings()
    ledger = Ledger(platform.redis_url, settings.ledger_ttl_seconds)

    def install(router: Router, wiring: Wiring) -> None:
        router.add_handler("mailer.welcome", platform.topic(SOURCE_TOPIC), wiring.subscriber,
                           WelcomeMailer(settings, platform, ledger),
                           publish_topic=platform.topic(SENT_TOPIC), publisher=wiring.publisher)

    await run_worker("mailer", settings, install, platform=platform, chain=mailer_chain(ledger),
                     extra_topics=[platform.topic(FAILED_TOPIC)], on_start=ledger.ping, on_stop=ledger.close)


ROLES = {"worker": worker}
