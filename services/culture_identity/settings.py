"""Identity settings: CULTURE_IDENTITY_* environment variables, parsed once and validated.

Token keys are Ed25519 (JWT alg EdDSA): the private key signs, the public keys verify, so any
service may later verify access tokens with only the public keys, and a leak of a verifier's
configuration cannot mint tokens (with HS256 every verifier holds the signing secret). Rotation:
give a new key a new `signing_key_id`, and keep the previous public key in `verification_keys`
until the tokens it signed have expired.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# the key formats are a contract with the operator (which generates the signing-key Secret)
from culture_contracts.signing_keys import (  # noqa: F401 - encode_public_key: part of this module's API
    encode_private_key,
    encode_public_key,
    load_private_key,
    load_public_key,
)

log = logging.getLogger(__name__)

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def dev_key_path() -> Path:
    """Where the local development signing key lives (outside the repo, shared by local processes)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "culture-platform" / "identity" / "dev-signing-key"


def load_or_create_dev_key(path: Path | None = None) -> str:
    """The local dev key, created once; concurrent first starts agree (link() is atomic)."""
    path = path or dev_key_path()
    if path.exists():
        return path.read_text().strip()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(encode_private_key(Ed25519PrivateKey.generate()) + "\n")
    except OSError as exc:  # e.g. a pod's read-only root filesystem: a dev key has no place there
        raise RuntimeError(
            f"identity: cannot create the development signing key at {path} ({exc}); set "
            "CULTURE_IDENTITY_SIGNING_KEY (in a cluster the operator passes one from the Secret "
            "<platform>-identity-signing-key) and CULTURE_IDENTITY_DEV_KEYS=false") from exc
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # fails if another process won the race: use its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


class IdentitySettings(BaseSettings):
    """CULTURE_IDENTITY_* settings (the shared endpoints come from PlatformSettings)."""

    model_config = SettingsConfigDict(env_prefix="CULTURE_IDENTITY_", extra="ignore")

    db_schema: str = Field("public", description="PostgreSQL schema of the tables")
    pool_min_size: int = Field(2, ge=1, le=100)
    pool_max_size: int = Field(10, ge=1, le=200)
    issuer: str = Field("culture-identity", min_length=1, description="the `iss` claim of access tokens")
    access_token_ttl_seconds: int = Field(900, ge=10, le=86400, description="access token lifetime")
    refresh_token_ttl_seconds: int = Field(30 * 86400, ge=60, le=365 * 86400, description="refresh lifetime")
    signing_key_id: str = Field("dev", description="`kid` of the signing key, [A-Za-z0-9_.-]{1,64}")
    signing_key: SecretStr | None = Field(
        None, description="Ed25519 private key: PEM or base64url 32-byte seed; unset + dev_keys: a local key")
    public_key: str | None = Field(
        None, description="the signing key's Ed25519 public key (PEM or base64url): a role that only "
        "verifies tokens (api-read) gets this instead of signing_key")
    verification_keys: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"kid": "public key (PEM or base64url)"}: older keys still accepted (rotation)')
    dev_keys: bool = Field(True, description="no signing_key: use a local dev key")
    password_min_length: int = Field(8, ge=8, le=128)
    argon2_time_cost: int = Field(2, ge=1, le=10, description="argon2id iterations")
    argon2_memory_kib: int = Field(19456, ge=8192, le=1048576, description="argon2id memory (OWASP: 19 MiB)")
    argon2_parallelism: int = Field(1, ge=1, le=16)
    login_max_failures: int = Field(5, ge=1, le=1000,
                                    description="login attempts per login+address per window (a success "
                                    "clears the count)")
    login_failure_window_seconds: int = Field(300, ge=1, le=86400)
    register_max_per_address: int = Field(10, ge=1, le=100000,
                                          description="registrations per client address per window")
    register_max_total: int = Field(3000, ge=1, le=10000000,
                                    description="registrations from everyone together per window")
    register_window_seconds: int = Field(600, ge=1, le=86400, description="window of the registration limits")
    limits_prefix: str = Field("culture:identity:", max_length=64,
                               description="prefix of the limit counters' Redis keys (platforms sharing "
                               "one Redis keep their counters apart with their own prefix)")
    relay_batch_size: int = Field(500, ge=1, le=10000)
    relay_poll_seconds: float = Field(1.0, gt=0, le=60)
    topic_partitions: int = Field(3, ge=1, le=1000, description="partitions of identity.user-registered")

    @field_validator("db_schema")
    @classmethod
    def _schema_name(cls, value: str) -> str:
        if not _SCHEMA.match(value):
            raise ValueError("must be a lowercase PostgreSQL identifier: [a-z_][a-z0-9_]{0,62}")
        return value

    @field_validator("signing_key_id")
    @classmethod
    def _kid(cls, value: str) -> str:
        if not _KID.match(value):
            raise ValueError("must match [A-Za-z0-9_.-]{1,64}")
        return value

    @field_validator("signing_key")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            load_private_key(value.get_secret_value())
        return value

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)
        return value

    @field_validator("verification_keys", mode="before")
    @classmethod
    def _verification_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'must be a JSON object {{"kid": "public key"}}: {exc}') from exc
        if not isinstance(value, dict):
            raise ValueError('must be a JSON object {"kid": "public key"}')
        for kid, key in value.items():
            if not _KID.match(str(kid)):
                raise ValueError(f"key id {kid!r} must match [A-Za-z0-9_.-]{{1,64}}")
            try:
                load_public_key(str(key))
            except ValueError as exc:
                raise ValueError(f"key {kid!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _pool(self) -> IdentitySettings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        if self.signing_key is None and self.public_key is None and not self.dev_keys:
            raise ValueError("CULTURE_IDENTITY_SIGNING_KEY is required when CULTURE_IDENTITY_DEV_KEYS=false "
                             "(an Ed25519 PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519`; a "
                             "role that only verifies tokens takes CULTURE_IDENTITY_PUBLIC_KEY instead)")
        if self.signing_key is not None and self.public_key is not None:
            signing = load_private_key(self.signing_key.get_secret_value()).public_key()
            if signing != load_public_key(self.public_key):
                raise ValueError("CULTURE_IDENTITY_PUBLIC_KEY is not the public key of "
                                 "CULTURE_IDENTITY_SIGNING_KEY")
        return self

    def private_key(self) -> Ed25519PrivateKey:
        """The signing key (the local dev key when none is configured and dev_keys is on)."""
        if self.signing_key is not None:
            return load_private_key(self.signing_key.get_secret_value())
        if not self.dev_keys:
            raise ValueError("identity: this process has no CULTURE_IDENTITY_SIGNING_KEY (only the public "
                             "key): it can verify tokens, not sign them")
        log.warning("identity: no CULTURE_IDENTITY_SIGNING_KEY; using the local development key %s",
                    dev_key_path())
        return load_private_key(load_or_create_dev_key())

    def public_keys(self, signing: Ed25519PrivateKey | None = None) -> dict[str, Ed25519PublicKey]:
        """Every accepted verification key by kid: the signing key's own plus the older ones.

        The current key's public half comes from `signing`, else `public_key` (a verify-only role:
        no private key needed), else the configured (or local dev) private key."""
        keys = {kid: load_public_key(text) for kid, text in self.verification_keys.items()}
        if signing is not None:
            keys[self.signing_key_id] = signing.public_key()
        elif self.public_key is not None:
            keys[self.signing_key_id] = load_public_key(self.public_key)
        else:
            keys[self.signing_key_id] = self.private_key().public_key()
        return keys
