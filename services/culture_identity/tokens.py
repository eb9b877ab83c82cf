"""Access tokens (JWT, EdDSA/Ed25519, `kid` header) and opaque refresh tokens. Pure: no I/O.

One key signs (TokenSigner, the api-write role); a set of public keys, by kid, verifies (TokenVerifier,
which holds no private key: the api-read role): rotation = sign with a new kid while the old
public key stays in the verification set until its tokens have expired.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 5  # clock skew between the issuing and the verifying process


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or signed by an unknown key."""


@dataclasses.dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: str
    username: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    token_id: str


@dataclasses.dataclass(frozen=True)
class TokenVerifier:
    """Verifies access tokens with public keys only: what a role that never signs holds (api-read)."""

    verification_keys: Mapping[str, Ed25519PublicKey]
    issuer: str = "culture-identity"

    def verify(self, token: str, now: dt.datetime | None = None) -> AccessClaims:
        """The claims of a valid token; InvalidToken (with a reason for logs) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM:  # never let the token choose a weaker algorithm
            raise InvalidToken(f"unexpected algorithm {header.get('alg')!r}")
        key = self.verification_keys.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken(f"unknown key id {header.get('kid')!r}")
        options = {"require": ["exp", "iat", "sub", "iss"]}
        try:
            if now is None:
                claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.issuer,
                                    leeway=LEEWAY_SECONDS, options=options)
            else:  # tests pin the clock: check exp ourselves
                claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.issuer,
                                    options={**options, "verify_exp": False, "verify_iat": False})
                if claims["exp"] + LEEWAY_SECONDS < now.timestamp():
                    raise jwt.ExpiredSignatureError("Signature has expired")
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return AccessClaims(
            user_id=str(claims["sub"]), username=str(claims.get("preferred_username", "")),
            issued_at=dt.datetime.fromtimestamp(claims["iat"], dt.UTC),
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC), token_id=str(claims.get("jti", "")))


@dataclasses.dataclass
class TokenSigner:
    """Signs access tokens (the private key: identity's api-write only) and verifies them."""

    key_id: str
    private_key: Ed25519PrivateKey
    verification_keys: Mapping[str, Ed25519PublicKey]
    issuer: str = "culture-identity"
    ttl: dt.timedelta = dt.timedelta(minutes=15)

    def sign(self, user_id: str, username: str, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
        """A signed access token for the user and when it expires."""
        now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        expires = now + self.ttl
        claims = {"sub": user_id, "preferred_username": username, "iss": self.issuer,
                  "iat": int(now.timestamp()), "exp": int(expires.timestamp()), "jti": uuid.uuid4().hex}
        token = jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return token, expires

    @property
    def verifier(self) -> TokenVerifier:
        """The public half: verifies what this signer signs (and the older keys)."""
        return TokenVerifier(self.verification_keys, self.issuer)

    def verify(self, token: str, now: dt.datetime | None = None) -> AccessClaims:
        """The claims of a valid token; InvalidToken otherwise (see TokenVerifier.verify)."""
        return self.verifier.verify(token, now)


def new_refresh_token() -> str:
    """A fresh opaque refresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """What the database keeps of a refresh token: SHA-256 is enough for 256 random bits (no salt
    or slow hash needed: nothing to brute-force), and a leaked table yields no usable token."""
    return hashlib.sha256(token.encode()).digest()
