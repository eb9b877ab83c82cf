"""Jobs and their steps: names, states, transitions and snapshots. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import timestamp_pb2

from culture.notifier.v1 import notifier_pb2

#: the steps of the registration job, in the order they are shown (graph: the user's node; feed: the
#: user's timeline; when it cannot be created the feed step fails and the catalog compensates: the
#: profile step is compensated)
REGISTRATION_STEPS = ("account", "profile", "welcome-mail", "graph", "feed")
#: the steps of a review job (CreateReview's job id): the review committed with its event
REVIEW_STEPS = ("review",)

PENDING, SUCCEEDED, FAILED, COMPENSATED = "pending", "succeeded", "failed", "compensated"
RUNNING = "running"

#: state -> the states a step may come from; anything else is stale or a duplicate and ignored
#: (failed -> succeeded: a replay from the poison topic fixed the step)
ALLOWED_FROM: Mapping[str, tuple[str, ...]] = {
    SUCCEEDED: (PENDING, FAILED),
    FAILED: (PENDING,),
    COMPENSATED: (PENDING, SUCCEEDED),
}

_STEP_STATES = {PENDING: notifier_pb2.STEP_STATE_PENDING, SUCCEEDED: notifier_pb2.STEP_STATE_SUCCEEDED,
                FAILED: notifier_pb2.STEP_STATE_FAILED, COMPENSATED: notifier_pb2.STEP_STATE_COMPENSATED}
_JOB_STATES = {RUNNING: notifier_pb2.JOB_STATE_RUNNING, SUCCEEDED: notifier_pb2.JOB_STATE_SUCCEEDED,
               FAILED: notifier_pb2.JOB_STATE_FAILED}


def job_state(states: Sequence[str]) -> str:
    """The job's overall state from its steps': running while any step is pending (a job whose mail
    failed still shows its profile step finishing), then failed if any step failed or was
    compensated, else succeeded."""
    if not states or any(s == PENDING for s in states):
        return RUNNING
    if any(s in (FAILED, COMPENSATED) for s in states):
        return FAILED
    return SUCCEEDED


def is_terminal(state: str) -> bool:
    """Whether a job in this state will not change any more (barring replays)."""
    return state in (SUCCEEDED, FAILED)


def snapshot(fields: Mapping[str, str], *, step: str | None = None) -> dict[str, Any]:
    """The snapshot dict of a job from its Redis hash fields (`step`: the one that just changed)."""
    names = [n for n in fields.get("steps", "").split(",") if n]
    steps = [{"name": n, "state": fields.get(f"step:{n}:state", PENDING),
              "message": fields.get(f"step:{n}:message", ""),
              "update_time": fields.get(f"step:{n}:time", fields.get("create_time", ""))} for n in names]
    changed = next((s for s in steps if s["name"] == step), None)
    return {
        "type": "job-progress",
        "job_id": fields.get("job_id", ""),
        "user_id": fields.get("user_id", ""),
        "version": int(fields.get("version", "0")),
        "step": step or "",
        "state": changed["state"] if changed else "",
        "message": changed["message"] if changed else "",
        "job_state": job_state([s["state"] for s in steps]),
        "steps": steps,
        "create_time": fields.get("create_time", ""),
        "update_time": fields.get("update_time", ""),
    }


def _ts(text: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if text:
        ts.FromJsonString(text)
    return ts


def to_proto(snap: Mapping[str, Any]) -> notifier_pb2.Job:
    """The API's Job of a snapshot."""
    return notifier_pb2.Job(
        job_id=snap["job_id"], state=_JOB_STATES[snap["job_state"]],
        steps=[notifier_pb2.JobStep(name=s["name"], state=_STEP_STATES.get(s["state"], 0),
                                    message=s["message"], update_time=_ts(s["update_time"]))
               for s in snap["steps"]],
        create_time=_ts(snap["create_time"]), update_time=_ts(snap["update_time"]))
