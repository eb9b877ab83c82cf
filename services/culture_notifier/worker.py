"""The notifier's consumers: each event of the registration flow (and of the review flow) moves one
step of its job."""

from __future__ import annotations

import logging
from typing import Any

from culture.events.v1 import (
    catalog_events_pb2,
    feed_events_pb2,
    graph_events_pb2,
    identity_events_pb2,
    mailer_events_pb2,
)
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.message import Message, Meta
from culture_notifier.jobs import COMPENSATED, FAILED, REGISTRATION_STEPS, REVIEW_STEPS, SUCCEEDED
from culture_notifier.store import JobStore

log = logging.getLogger("culture_notifier")

#: topic -> (event class, step, state, the field holding the message shown with the step, if any)
STEP_EVENTS: dict[str, tuple[Any, str, str, str | None]] = {
    topic_of(identity_events_pb2.UserRegistered): (identity_events_pb2.UserRegistered, "account", SUCCEEDED,
                                                   None),
    topic_of(catalog_events_pb2.ProfileCreated): (catalog_events_pb2.ProfileCreated, "profile", SUCCEEDED,
                                                  None),
    topic_of(catalog_events_pb2.ProfileMarkedIncomplete): (catalog_events_pb2.ProfileMarkedIncomplete,
                                                           "profile", COMPENSATED, "reason"),
    topic_of(mailer_events_pb2.WelcomeMailSent): (mailer_events_pb2.WelcomeMailSent, "welcome-mail",
                                                  SUCCEEDED, None),
    topic_of(mailer_events_pb2.WelcomeMailFailed): (mailer_events_pb2.WelcomeMailFailed, "welcome-mail",
                                                    FAILED, "reason"),
    topic_of(graph_events_pb2.UserNodeCreated): (graph_events_pb2.UserNodeCreated, "graph", SUCCEEDED, None),
    topic_of(feed_events_pb2.FeedCreated): (feed_events_pb2.FeedCreated, "feed", SUCCEEDED, None),
    topic_of(feed_events_pb2.FeedCreationFailed): (feed_events_pb2.FeedCreationFailed, "feed", FAILED,
                                                   "reason"),
    # the review job (flow 2): the review, its aggregate and its event committed together
    topic_of(catalog_events_pb2.ReviewCreated): (catalog_events_pb2.ReviewCreated, "review", SUCCEEDED, None),
}

#: the steps of a job, by the topic of an event that moves one of them (default: registration)
JOB_STEPS: dict[str, tuple[str, ...]] = {topic_of(catalog_events_pb2.ReviewCreated): REVIEW_STEPS}
#: the field naming the job's user, by topic (default: user_id)
USER_FIELDS: dict[str, str] = {topic_of(catalog_events_pb2.ReviewCreated): "author_user_id"}


class StepRecorder:
    """Handles one topic's events: records the step's new state under the event's job id."""

    def __init__(self, store: JobStore, topic: str) -> None:
        self.store = store
        self.cls, self.step, self.state, self.message_field = STEP_EVENTS[topic]
        self.steps = JOB_STEPS.get(topic, REGISTRATION_STEPS)
        self.user_field = USER_FIELDS.get(topic, "user_id")

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        job_id = msg.metadata.get(Meta.CORRELATION_ID)
        if not job_id:
            log.debug("%s %s has no correlation id: not part of a job", self.cls.__name__, msg.id)
            return []
        message = getattr(event, self.message_field) if self.message_field else ""
        user_id = getattr(event, self.user_field)
        snap = await self.store.record(job_id, user_id, self.step, self.state, message, steps=self.steps)
        if snap is not None:
            log.info("job %s: %s %s (v%d, job %s)", job_id, self.step, self.state, snap["version"],
                     snap["job_state"])
        return []
