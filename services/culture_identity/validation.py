"""Pure checks of registration input: what is wrong with which field, and normalised values.

No I/O: the servicer turns the violations into INVALID_ARGUMENT with google.rpc.BadRequest.
"""

from __future__ import annotations

import dataclasses
import re

USERNAME_MIN, USERNAME_MAX = 3, 32
DISPLAY_NAME_MAX = 64
PASSWORD_MAX = 1024  # hashing cost is per byte too: bound what a client can make us hash
EMAIL_MAX = 254  # RFC 5321 path limit

_USERNAME = re.compile(r"^[a-z0-9_.]+$")
# Pragmatic syntax check (not RFC 5322 in full): one @, a dotted domain, no spaces or controls.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


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


def username_problem(username: str) -> str | None:
    """What is wrong with a (normalised) username, or None."""
    if not USERNAME_MIN <= len(username) <= USERNAME_MAX:
        return f"must be {USERNAME_MIN}-{USERNAME_MAX} characters long (got {len(username)})"
    if not _USERNAME.match(username):
        return "may contain only lowercase letters a-z, digits 0-9, '_' and '.'"
    return None


def email_problem(email: str) -> str | None:
    """What is wrong with a (normalised) email address, or None."""
    if not email:
        return "is required"
    if len(email) > EMAIL_MAX:
        return f"must be at most {EMAIL_MAX} characters long"
    if email.count("@") != 1:
        return "must contain exactly one '@', like name@example.org"
    local = email.split("@", 1)[0]
    if not _EMAIL.match(email) or local.startswith(".") or local.endswith(".") or ".." in local:
        return "is not a valid email address, expected something like name@example.org"
    return None


def password_problem(password: str, min_length: int) -> str | None:
    """What is wrong with a password, or None."""
    if len(password) < min_length:
        return f"must be at least {min_length} characters long"
    if len(password) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters long"
    return None


def validate_registration(username: str, email: str, password: str, display_name: str,
                          *, password_min_length: int = 8) -> tuple[Registration | None, dict[str, str]]:
    """(the normalised registration, {}) when valid, else (None, {field: what is wrong})."""
    violations: dict[str, str] = {}
    username_n, email_n, display = normalize_username(username), normalize_email(email), display_name.strip()
    if (problem := username_problem(username_n)) is not None:
        violations["username"] = problem
    if (problem := email_problem(email_n)) is not None:
        violations["email"] = problem
    if (problem := password_problem(password, password_min_length)) is not None:
        violations["password"] = problem
    if len(display) > DISPLAY_NAME_MAX:
        violations["display_name"] = f"must be at most {DISPLAY_NAME_MAX} characters long"
    elif any(ord(c) < 32 for c in display):
        violations["display_name"] = "must not contain control characters"
    if violations:
        return None, violations
    return Registration(username_n, email_n, password, display or username_n), {}
