"""The notifier roles `culture serve notifier --role ...` runs: `worker` and `api-read`."""

from __future__ import annotations

from culture.events.v1 import chat_events_pb2
from culture.notifier.v1 import notifier_pb2, notifier_pb2_grpc
from culture_contracts.topics import topic_of
from culture_events.router import Router
from culture_notifier.badges import BadgeCounter, ChatBadges
from culture_notifier.service import NotifierServicer
from culture_notifier.settings import NotifierSettings
from culture_notifier.store import JobStore
from culture_notifier.worker import STEP_EVENTS, StepRecorder
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings
from culture_runtime.worker import Wiring, run_worker


async def worker() -> None:
    """Consume the registration flow's events (record and publish each job's steps) and
    chat.message-sent (the recipients' chat badges)."""
    platform, settings = PlatformSettings().require("redis_url", "kafka_bootstrap"), NotifierSettings()
    store = JobStore(platform.redis_url, settings.job_ttl_seconds)

    def install(router: Router, wiring: Wiring) -> None:
        for topic in STEP_EVENTS:
            router.add_consumer_handler(f"notifier.{topic}", platform.topic(topic), wiring.subscriber,
                                        StepRecorder(store, topic))
        # chat messages: an unread badge for the recipient's next connection (no mail per message)
        sent = topic_of(chat_events_pb2.MessageSent)
        router.add_consumer_handler(f"notifier.{sent}", platform.topic(sent), wiring.subscriber,
                                    BadgeCounter(ChatBadges(store.redis)))

    await run_worker("notifier", settings, install, platform=platform, on_start=store.ping,
                     on_stop=store.close)


async def api_read() -> None:
    """NotifierService (GetJobStatus, WatchJob) over gRPC."""
    platform, settings = PlatformSettings().require("redis_url"), NotifierSettings()
    store = JobStore(platform.redis_url, settings.job_ttl_seconds)
    await run_grpc_service(
        "notifier api-read",
        [(notifier_pb2.DESCRIPTOR.services_by_name["NotifierService"],
          NotifierServicer(store, settings.watch_max_seconds, ChatBadges(store.redis)),
          notifier_pb2_grpc.add_NotifierServiceServicer_to_server)],
        on_start=store.ping, on_stop=store.close)


ROLES = {"worker": worker, "api-read": api_read}
