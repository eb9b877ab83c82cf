"""The client address the gateway vouches for: HMAC-signed, checked by identity; taken from the
rightmost X-Forwarded-For entry the trusted proxies wrote. Pure functions, no servers."""

from __future__ import annotations

import pytest

from culture_contracts import client_address as ca

pytestmark = pytest.mark.unit

KEY = b"k" * 32


def test_a_signed_address_verifies_only_with_the_key_unchanged_and_recent() -> None:
    value = ca.sign("203.0.113.7", KEY, now=1_000_000)
    assert ca.verify(value, KEY, now=1_000_030) == "203.0.113.7"
    assert ca.verify(value, b"x" * 32, now=1_000_030) is None  # another key
    assert ca.verify(value.replace("203.0.113.7", "203.0.113.8"), KEY, now=1_000_030) is None  # edited
    assert ca.verify(value, KEY, now=1_000_000 + ca.MAX_AGE_SECONDS + 1) is None  # stale: no replays
    for garbage in ("", "203.0.113.7", "203.0.113.7;1;", "a;b;c", "1.2.3.4;x;" + "0" * 64):
        assert ca.verify(garbage, KEY) is None


@pytest.mark.parametrize(("header", "trusted", "expected"), [
    (None, 1, "192.0.2.1"),                                  # no header: the peer
    ("198.51.100.9", 0, "192.0.2.1"),                        # no trusted proxy: the header is the client's
    ("198.51.100.9", 1, "198.51.100.9"),                     # one proxy appended the client
    ("6.6.6.6, 198.51.100.9", 1, "198.51.100.9"),            # the client's own entry on the left: ignored
    ("6.6.6.6, 198.51.100.9, 10.0.0.2", 2, "198.51.100.9"),  # two proxies: the second from the right
    ("198.51.100.9", 3, "198.51.100.9"),                     # a shorter chain than proxies: its first
    ("6.6.6.6, not-an-ip", 1, "192.0.2.1"),                  # what no proxy writes: the peer
    ("2001:db8::1", 1, "2001:db8::1"),
])
def test_the_client_is_the_rightmost_untrusted_hop(header: str | None, trusted: int, expected: str) -> None:
    assert ca.client_address(header, "192.0.2.1", trusted) == expected
