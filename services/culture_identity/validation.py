"""Registration input beyond the contract: normalised values and the configured password minimum.

The field rules (username 3-32 of [a-z0-9_.], a deliverable email, password 8-1024 characters, a
display name of one line) are buf.validate annotations on RegisterRequest, checked for every call by
culture_grpc's ValidationInterceptor before the servicer runs. What is left here is what depends on
this deployment's settings, and the normalised form the store keeps. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Registration:
    """Validated, normalised registration fields."""

    username: str
    email: str
    password: str
    display_name: str


def normalize_username(value: str) -> str:
    """Handles compare case-insensitively: stored and looked up lowercased."""
    return value.strip().lower()


def normalize_email(value: str) -> str:
    """Emails are unique case-insensitively (what users expect, though the local part may differ)."""
    return value.strip().lower()


def validate_registration(username: str, email: str, password: str, display_name: str,
                          *, password_min_length: int = 8) -> tuple[Registration | None, dict[str, str]]:
    """(the normalised registration, {}) when valid, else (None, {field: what is wrong}).

    Only the deployment's password minimum (CULTURE_IDENTITY_PASSWORD_MIN_LENGTH, at least the
    contract's 8) is checked here; the request has passed the contract's rules already."""
    if len(password) < password_min_length:
        return None, {"password": f"must be at least {password_min_length} characters long"}
    username_n, email_n, display = normalize_username(username), normalize_email(email), display_name.strip()
    return Registration(username_n, email_n, password, display or username_n), {}
