"""What every pod of the platform shares: hardening, resources and placement."""

from __future__ import annotations

from typing import Any

from culture_operator.spec import CulturePlatformSpec, Resources

APP_UID = 10001


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        amounts = getattr(res, kind)
        values = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v is not None}
        if values:
            out[kind] = values
    return out


def _container_security(read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _placement(spec: CulturePlatformSpec) -> dict[str, Any]:
    """Pod-spec fields that choose nodes (absent when the spec leaves placement to the scheduler)."""
    return {"nodeSelector": dict(spec.nodeSelector)} if spec.nodeSelector else {}
