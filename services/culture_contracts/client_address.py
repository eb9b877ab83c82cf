"""The browser's address, as the gateway tells it to the services: signed, so no other caller can.

Identity limits logins and registrations per client address, but a gRPC caller could put any
address in its metadata. The gateway therefore sends `x-client-address: <address>;<unix time>;<mac>`
with an HMAC-SHA256 over the address and the time, keyed with the platform's client-address key
(CULTURE_CLIENT_ADDRESS_KEY, from a Secret the operator generates; the gateway and identity get the
same one). A service trusts the address only when the MAC checks out and the time is recent;
otherwise it falls back to the caller's own address (the gRPC peer).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time

#: the gRPC metadata key carrying the signed client address
METADATA_KEY = "x-client-address"
#: how old a signed address may be (the gateway signs per request; clocks may differ a little)
MAX_AGE_SECONDS = 120


def _mac(key: bytes, address: str, issued: int) -> str:
    return hmac.new(key, f"{address};{issued}".encode(), hashlib.sha256).hexdigest()


def sign(address: str, key: bytes, now: float | None = None) -> str:
    """The metadata value vouching for `address`."""
    issued = int(time.time() if now is None else now)
    return f"{address};{issued};{_mac(key, address, issued)}"


def verify(value: str, key: bytes, now: float | None = None, max_age: int = MAX_AGE_SECONDS) -> str | None:
    """The address in a signed value, or None when the value is malformed, forged or stale."""
    address, _, rest = value.partition(";")
    issued_text, _, mac = rest.partition(";")
    if not issued_text.isdigit() or len(mac) != 64:
        return None
    issued = int(issued_text)
    if not hmac.compare_digest(mac, _mac(key, address, issued)):
        return None
    if abs((time.time() if now is None else now) - issued) > max_age:
        return None
    return address


def client_address(forwarded_for: str | None, peer: str, trusted_proxies: int) -> str:
    """The client's address: the rightmost untrusted hop of X-Forwarded-For.

    Each of the `trusted_proxies` proxies in front of us appends the address it got the request
    from, so with N of them the client is the N-th entry from the right; entries further left were
    written by the client and prove nothing. With no trusted proxy (or no usable header) it is the
    peer itself."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return peer
    candidate = hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # not an address: a proxy would not write that, so someone else did
        return peer
