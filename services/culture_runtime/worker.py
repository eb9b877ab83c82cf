"""`run_worker`: the life of one Kafka-consuming role (a service's `worker`), the same for every service.

    create the topics it reads and writes (idempotent; Kafka's auto creation is off)
    -> health SERVING -> the router consumes -> SIGTERM -> NOT_SERVING -> router drains -> exit

A service describes only its handlers (`install(router, wiring)`) and, if the standard middleware
chain does not fit, its own chain. Its settings subclass `WorkerSettings`, so every worker has the
same knobs (consumer group, partitions, retry, timeout) under its own env prefix, e.g.
CULTURE_MAILER_CONSUMER_GROUP; the topic namespace (CULTURE_TOPIC_NAMESPACE) is in PlatformSettings.
Tests give each run its own consumer group and topic namespace, so a platform running beside them
never sees their events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import Field
from pydantic_settings import BaseSettings

from culture_events.backends.kafka import KafkaPublisher, KafkaSubscriber
from culture_events.handling import Middleware
from culture_events.middleware import Retry, default_middleware
from culture_events.router import Router
from culture_runtime.service import run_grpc_service
from culture_runtime.settings import PlatformSettings

log = logging.getLogger("culture_runtime.worker")


class WorkerSettings(BaseSettings):
    """The knobs every worker has; subclasses set env_prefix and the consumer group's default."""

    consumer_group: str = Field("culture", min_length=1,
                                description="Kafka consumer group; its poison topic is <group>.poison")
    topic_partitions: int = Field(3, ge=1, le=1000, description="partitions of topics this worker creates")
    concurrency: int = Field(8, ge=1, le=256, description="lanes per handler (a key stays in order)")
    retry_max: int | None = Field(None, ge=0, le=10_000,
                                  description="cap on retries of a message (unset: the budget limits them)")
    retry_budget_seconds: float = Field(
        300.0, gt=0, le=24 * 3600, description="how long a message keeps being retried after its first "
        "transient failure before it goes to the poison topic (its key waits meanwhile, other keys go on)")
    retry_initial_seconds: float = Field(0.2, gt=0, le=60, description="first retry delay (then doubled)")
    retry_max_seconds: float = Field(30.0, gt=0, le=600, description="cap on a retry delay")
    handler_timeout_seconds: float = Field(30.0, gt=0, le=3600, description="limit on one handler attempt")

    @property
    def poison_topic(self) -> str:
        """The consumer group's poison (dead letter) topic."""
        return f"{self.consumer_group}.poison"

    def retry(self) -> Retry:
        """The Retry middleware these settings describe."""
        return Retry(max_retries=self.retry_max, initial_interval=self.retry_initial_seconds,
                     max_interval=self.retry_max_seconds, budget=self.retry_budget_seconds)


@dataclasses.dataclass(frozen=True)
class Wiring:
    """What a worker's handlers are wired to."""

    platform: PlatformSettings
    settings: WorkerSettings
    publisher: KafkaPublisher
    subscriber: KafkaSubscriber


def standard_chain(wiring: Wiring) -> list[Middleware]:
    """The library's default middleware with the worker's poison topic, retry and timeout."""
    return default_middleware(poison_publisher=wiring.publisher, poison_topic=wiring.settings.poison_topic,
                              retry=wiring.settings.retry(),
                              timeout_seconds=wiring.settings.handler_timeout_seconds)


async def ensure_topics(publisher: KafkaPublisher, topics: Sequence[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    for topic in dict.fromkeys(topics):
        await publisher.create_topic(topic, partitions)


async def try_ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int, *, role: str,
                            within: float = 30.0) -> None:
    """`ensure_topics` with its own admin client, tried for `within` seconds only: for outbox relays,
    which must start while Kafka is down (the outbox keeps the events; publishing retries until
    Kafka is back, so a failure here is logged, not fatal)."""
    publisher = KafkaPublisher(bootstrap, client_id=f"culture-{role.replace(' ', '-')}-admin")
    try:
        await asyncio.wait_for(ensure_topics(publisher, topics, partitions), within)
    except Exception as exc:  # noqa: BLE001 - not fatal, see above
        log.warning("%s: could not ensure topics %s yet (%s); will publish when Kafka is back",
                    role, list(topics), exc)
    finally:
        await publisher.close()


def topics_of(router: Router, poison_topic: str) -> list[str]:
    """Every topic a router reads or writes, plus its poison topic."""
    topics = [poison_topic]
    for config in router.handlers.values():
        topics.append(config.topic)
        if config.publish_topic is not None:
            topics.append(config.publish_topic)
    return topics


async def run_worker(
    service: str,
    settings: WorkerSettings,
    install: Callable[[Router, Wiring], None],
    *,
    platform: PlatformSettings | None = None,
    chain: Callable[[Wiring], list[Middleware]] = standard_chain,
    extra_topics: Sequence[str] = (),
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run a service's consumers until SIGTERM/SIGINT (see the module docstring)."""
    platform = (platform or PlatformSettings()).require("kafka_bootstrap")
    publisher = KafkaPublisher(platform.kafka_bootstrap, client_id=f"culture-{service}")
    subscriber = KafkaSubscriber(platform.kafka_bootstrap, group=settings.consumer_group,
                                 client_id=f"culture-{service}")
    wiring = Wiring(platform, settings, publisher, subscriber)
    router = Router(concurrency=settings.concurrency)
    router.add_middleware(*chain(wiring))
    install(router, wiring)
    topics = [*topics_of(router, settings.poison_topic), *extra_topics]

    async def start() -> None:
        try:
            await asyncio.wait_for(ensure_topics(publisher, topics, settings.topic_partitions), 60)
        except TimeoutError as exc:
            raise SystemExit(f"{service} worker: could not create topics {topics} on Kafka at "
                             f"{platform.kafka_bootstrap} within 60s; is it running? "
                             "Locally: `culture stack up kafka`") from exc
        if on_start is not None:
            await on_start()
        log.info("%s worker: group %s reads %s", service, settings.consumer_group,
                 ", ".join(sorted({c.topic for c in router.handlers.values()})))

    async def consume(stop: asyncio.Event) -> None:
        running = asyncio.ensure_future(router.run())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await router.close()
        await running  # re-raises a subscription's failure: the process exits and is restarted

    async def stop() -> None:
        with contextlib.suppress(Exception):
            await publisher.close()
        if on_stop is not None:
            await on_stop()

    # health follows the router: NOT_SERVING once it stops consuming, so the kubelet restarts the pod
    await run_grpc_service(f"{service} worker", on_start=start, on_stop=stop, background=[consume],
                           ready=router.is_ready)
