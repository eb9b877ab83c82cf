"""Schema pieces the gateway's OpenAPI document shares: the contracts' string rules as JSON Schema.

The gRPC contracts (proto/, buf.validate annotations) are the source of the rules; the HTTP schemas
say the same, so a client (and schemathesis) knows before sending what the services will accept.
"""

from __future__ import annotations

from typing import Any

#: no NUL and no other control character (Unicode Cc), as the contracts' `line` rule
_LINE = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
#: the contracts' `text` rule: as a line, but tab, line feed and carriage return are allowed
_TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"

def line(max_length: int, min_length: int = 0, **extra: Any) -> dict[str, Any]:
    """A string of one line (the contracts' `line` rule) of at most `max_length` characters."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": _LINE, **extra}
    if min_length:
        schema["minLength"] = min_length
    return schema


def text(max_length: int) -> dict[str, Any]:
    """Free text that may span lines (the contracts' `text` rule)."""
    return {"type": "string", "maxLength": max_length, "pattern": _TEXT}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}
