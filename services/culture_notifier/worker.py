"""The notifier's consumers: each event of the registration flow moves one step of its job."""

from __future__ import annotations

import logging
from typing import Any

from culture.events.v1 import catalog_events_pb2, identity_events_pb2, mailer_events_pb2
from culture_contracts.topics import topic_of
from culture_events.codec import decode
from culture_events.message import Message, Meta
from culture_notifier.jobs import COMPENSATED, FAILED, REGISTRATION_STEPS, SUCCEEDED
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
}


class StepRecorder:
    """Handles one topic's events: records the step's new state under the event's job id."""

    def __init__(self, store: JobStore, topic: str) -> None:
        self.store = store
        self.cls, self.step, self.state, self.message_field = STEP_EVENTS[topic]

    async def __call__(self, msg: Message) -> list[Message]:
        event = decode(msg, self.cls)
        job_id = msg.metadata.get(Meta.CORRELATION_ID)
        if not job_id:
            log.debug("%s %s has no correlation id: not part of a job", self.cls.__name__, msg.id)
            return []
        message = getattr(event, self.message_field) if self.message_field else ""
        snap = await self.store.record(job_id, event.user_id, self.step, self.state, message,
                                       steps=REGISTRATION_STEPS)
        if snap is not None:
            log.info("job %s: %s %s (v%d, job %s)", job_id, self.step, self.state, snap["version"],
                     snap["job_state"])
        return []
