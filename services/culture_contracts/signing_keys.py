"""The formats of identity's token keys, shared by identity (which reads them from its settings) and
the operator (which generates the signing-key Secret): Ed25519 keys (JWT alg EdDSA) as PEM or the
base64url of their raw bytes."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or the base64url of its 32-byte seed."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(_b64decode(text))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an Ed25519 private key (PEM or base64url 32-byte seed): {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key must be an Ed25519 key (JWT alg EdDSA)")
    return key


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or the base64url of its 32 bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(_b64decode(text))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an Ed25519 public key (PEM or base64url 32 bytes): {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("verification keys must be Ed25519 keys (JWT alg EdDSA)")
    return key


def encode_private_key(key: Ed25519PrivateKey) -> str:
    """The base64url seed of a private key (the form CULTURE_IDENTITY_SIGNING_KEY accepts)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_public_key(key: Ed25519PublicKey) -> str:
    """The base64url of a public key (the form CULTURE_IDENTITY_VERIFICATION_KEYS accepts)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
