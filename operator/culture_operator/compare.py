"""Pure drift check: does a live child still hold every field the operator wants it to have?

A server-side apply of an unchanged manifest does not write, but it is still a request; comparing
first keeps a no-op reconcile at zero API writes. The live object may carry more (server defaults,
other managers' fields), so the check is "desired is contained in live", not equality.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

#: annotation with a digest of the manifest last applied: a field the spec no longer sets (a removed
#: ConfigMap key) is invisible to "desired contained in live", but it changes the digest
APPLIED_DIGEST = "platform.culture.dev/applied-digest"

QUANTITY_FIELDS = frozenset({"cpu", "memory", "storage", "ephemeral-storage", "size"})


def _same_scalar(want: Any, have: Any, key: str | None) -> bool:
    if want == have:
        return True
    # the API server drops zero values of omitempty fields (`initialDelaySeconds: 0` reads back absent)
    if have is None and want in (0, False, ""):
        return True
    # the API server canonicalises quantities ("1000m" is stored as "1", "0.5" as "500m")
    if key in QUANTITY_FIELDS and isinstance(want, str | int) and isinstance(have, str | int):
        try:
            return Decimal(parse_quantity(want)) == Decimal(parse_quantity(have))
        except (ValueError, InvalidOperation, TypeError):
            return False
    return False


def contains(want: Any, have: Any, key: str | None = None) -> bool:
    """True when every field of `want` is in `have` with the same value (lists: same length, by index)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return not want and have is None
        return all(contains(v, have.get(k), k) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return not want and have is None
        return all(contains(w, h, key) for w, h in zip(want, have, strict=True))
    return _same_scalar(want, have, key)


def stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its digest annotation (computed over everything else)."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:20]
    meta = {**manifest["metadata"]}
    meta["annotations"] = {**meta.get("annotations", {}), APPLIED_DIGEST: digest}
    return {**manifest, "metadata": meta}


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether the child must be (re)applied: it is missing, or a wanted field drifted."""
    if live is None:
        return True
    return not (
        contains(desired.get("metadata", {}).get("labels", {}), live.get("metadata", {}).get("labels"))
        and contains(
            desired.get("metadata", {}).get("annotations", {}), live.get("metadata", {}).get("annotations")
        )
        and contains(
            desired.get("metadata", {}).get("ownerReferences", []),
            live.get("metadata", {}).get("ownerReferences"),
        )
        and all(
            contains(v, live.get(k))
            for k, v in desired.items()
            if k not in ("apiVersion", "kind", "metadata", "status")
        )
    )
