"""Job progress as JSON, and the changes between two snapshots. Pure."""

from __future__ import annotations

from typing import Any

from culture.notifier.v1 import notifier_pb2

_JOB_STATES = {notifier_pb2.JOB_STATE_RUNNING: "running", notifier_pb2.JOB_STATE_SUCCEEDED: "succeeded",
               notifier_pb2.JOB_STATE_FAILED: "failed"}
_STEP_STATES = {notifier_pb2.STEP_STATE_PENDING: "pending", notifier_pb2.STEP_STATE_SUCCEEDED: "succeeded",
                notifier_pb2.STEP_STATE_FAILED: "failed", notifier_pb2.STEP_STATE_COMPENSATED: "compensated"}
TERMINAL = frozenset({"succeeded", "failed"})


def _time(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime().isoformat(timespec="microseconds") + "Z"


def job_json(job: notifier_pb2.Job) -> dict[str, Any]:
    """A Job as the browser sees it; `updated_at` doubles as the version for `?after=`."""
    return {
        "job_id": job.job_id,
        "state": _JOB_STATES.get(job.state, "unknown"),
        "steps": [{"name": s.name, "state": _STEP_STATES.get(s.state, "unknown"), "message": s.message,
                   "updated_at": _time(s.update_time)} for s in job.steps],
        "created_at": _time(job.create_time),
        "updated_at": _time(job.update_time),
    }


def is_terminal(job: dict[str, Any]) -> bool:
    """Whether the job finished (no more changes will come)."""
    return job.get("state") in TERMINAL


def step_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """One `{job_id, step, state, message, updated_at}` per step that is new or changed state, in the
    order they changed (a snapshot may carry several changes, e.g. when the one between was dropped
    as older; the notifier's step times never go back from one version to the next, so the changes
    of successive snapshots come out in the order they happened)."""
    seen = {s["name"]: s["state"] for s in (before or {}).get("steps", ())}
    changes = [{"job_id": after["job_id"], "step": s["name"], "state": s["state"], "message": s["message"],
                "updated_at": s["updated_at"], "job_state": after["state"]}
               for s in after["steps"] if seen.get(s["name"]) != s["state"]]
    return sorted(changes, key=lambda c: c["updated_at"] or "")  # same-width RFC 3339; stable for ties
