"""Unit tests of the slice's pure code: validation, tokens, error mapping, job diffs, migrations,
settings, the Kafka proxy's Metadata rewrite."""

from __future__ import annotations

import datetime as dt
import struct

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from culture.identity.v1 import identity_pb2
from culture.notifier.v1 import notifier_pb2
from culture_events.testing.kafka_proxy import rewrite_metadata
from culture_gateway import jobs
from culture_gateway.errors import grpc_error_response, http_status_of
from culture_gateway.settings import GatewaySettings
from culture_grpc.validation import request_violations
from culture_identity import tokens
from culture_identity.migrations import Migration, migrations, pending
from culture_identity.settings import IdentitySettings, encode_private_key, encode_public_key
from culture_identity.validation import validate_registration

pytestmark = pytest.mark.unit


# -- validation: the contract's rules on RegisterRequest (buf.validate), and what identity adds -------

def _register_problems(**fields: str) -> dict[str, str]:
    base = {"username": "abc", "email": "a@b.org", "password": "longenough"}
    return dict(request_violations(identity_pb2.RegisterRequest(**{**base, **fields})))


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.org", "X_Y@EXAMPLE.COM"])
def test_valid_emails(email: str) -> None:
    assert "email" not in _register_problems(email=email)


@pytest.mark.parametrize("email", ["", "plain", "a@b", "a@@b.co", "a b@c.org", ".a@b.org", "a..b@c.org",
                                   "a@-b.org", "a@b.c", "a@" + "b" * 250 + ".org",
                                   "a\x00@b.org"])
def test_invalid_emails(email: str) -> None:
    assert _register_problems(email=email)["email"]


@pytest.mark.parametrize(("name", "ok"), [("abc", True), ("a.b_c9", True), ("ab", False), ("a" * 33, False),
                                          ("a" * 32, True), ("has space", False), ("ünï", False),
                                          ("dash-no", False), ("Upper", False), ("a\x00b", False)])
def test_username_rules(name: str, ok: bool) -> None:
    assert ("username" not in _register_problems(username=name)) is ok


def test_registration_rules_name_every_field_and_identity_normalises() -> None:
    assert set(_register_problems(username="x", email="nope", password="short", display_name="ok\x00")) == {
        "username", "email", "password", "display_name"}
    assert "password" in _register_problems(password="p" * 2000)
    reg, problems = validate_registration("reader.one", "Reader@Example.ORG", "longenough", "  ")
    assert problems == {}
    assert reg is not None
    assert (reg.username, reg.email, reg.display_name) == ("reader.one", "reader@example.org", "reader.one")
    # a deployment may ask for longer passwords than the contract's minimum
    assert validate_registration("abc", "a@b.org", "ninechars", "", password_min_length=12)[1] == {
        "password": "must be at least 12 characters long"}


# -- tokens ----------------------------------------------------------------------------------------

def _signer(kid: str = "k1", key: Ed25519PrivateKey | None = None, extra: dict | None = None,
            ttl: int = 900) -> tokens.TokenSigner:
    key = key or Ed25519PrivateKey.generate()
    return tokens.TokenSigner(kid, key, {kid: key.public_key(), **(extra or {})},
                              ttl=dt.timedelta(seconds=ttl))


def test_token_roundtrip_and_claims() -> None:
    signer = _signer()
    token, expires = signer.sign("user-1", "reader")
    claims = signer.verify(token)
    assert (claims.user_id, claims.username) == ("user-1", "reader")
    assert claims.expires_at == expires
    assert (claims.expires_at - claims.issued_at) == dt.timedelta(seconds=900)


def test_expired_token_is_rejected() -> None:
    signer = _signer(ttl=60)
    token, _ = signer.sign("u", "r", now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    with pytest.raises(tokens.InvalidToken):
        signer.verify(token)
    with pytest.raises(tokens.InvalidToken):
        signer.verify(_signer(ttl=60).sign("u", "r")[0], now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))


def test_tampered_token_and_unknown_key_are_rejected() -> None:
    signer = _signer()
    token, _ = signer.sign("u", "r")
    head, payload, sig = token.split(".")
    with pytest.raises(tokens.InvalidToken):
        signer.verify(f"{head}.{payload[:-2]}AA.{sig}")
    with pytest.raises(tokens.InvalidToken):
        _signer().verify(token)  # other key, same kid
    with pytest.raises(tokens.InvalidToken):
        signer.verify("garbage")


def test_algorithm_confusion_is_rejected() -> None:
    import jwt

    signer = _signer()
    forged = jwt.encode({"sub": "u", "iss": signer.issuer, "iat": 0, "exp": 2**40}, "s" * 32,
                        algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(tokens.InvalidToken):
        signer.verify(forged)


def test_key_rotation_accepts_old_tokens_while_the_old_key_is_listed() -> None:
    old_key, new_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old = _signer("2025", old_key)
    token, _ = old.sign("u", "r")
    rotated = _signer("2026", new_key, extra={"2025": old_key.public_key()})
    assert rotated.verify(token).user_id == "u"
    assert rotated.verify(rotated.sign("u", "r")[0]).user_id == "u"
    retired = _signer("2026", new_key)
    with pytest.raises(tokens.InvalidToken):
        retired.verify(token)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    a, b = tokens.new_refresh_token(), tokens.new_refresh_token()
    assert a != b and len(a) >= 40
    assert tokens.hash_refresh_token(a) == tokens.hash_refresh_token(a) != tokens.hash_refresh_token(b)
    assert a.encode() not in tokens.hash_refresh_token(a)


# -- settings --------------------------------------------------------------------------------------

def test_identity_settings_validate_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    monkeypatch.setenv("CULTURE_IDENTITY_SIGNING_KEY", encode_private_key(key))
    monkeypatch.setenv("CULTURE_IDENTITY_SIGNING_KEY_ID", "k2")
    monkeypatch.setenv("CULTURE_IDENTITY_VERIFICATION_KEYS",
                       f'{{"k1": "{encode_public_key(Ed25519PrivateKey.generate().public_key())}"}}')
    settings = IdentitySettings()
    assert set(settings.public_keys()) == {"k1", "k2"}
    monkeypatch.setenv("CULTURE_IDENTITY_VERIFICATION_KEYS", '{"k1": "not a key"}')
    with pytest.raises(ValidationError, match="k1"):
        IdentitySettings()
    monkeypatch.delenv("CULTURE_IDENTITY_VERIFICATION_KEYS")
    monkeypatch.delenv("CULTURE_IDENTITY_SIGNING_KEY")
    monkeypatch.setenv("CULTURE_IDENTITY_DEV_KEYS", "false")
    with pytest.raises(ValidationError, match="SIGNING_KEY is required"):
        IdentitySettings()
    monkeypatch.setenv("CULTURE_IDENTITY_DB_SCHEMA", "Bad-Name")
    with pytest.raises(ValidationError, match="db_schema"):
        IdentitySettings()


def test_verify_only_settings_hold_no_private_key_and_verify_what_the_signer_signs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """identity api-read gets the public key only (the operator passes no private key to it)."""
    from culture_identity.roles import signer_of, verifier_of

    key = Ed25519PrivateKey.generate()
    monkeypatch.setenv("CULTURE_IDENTITY_SIGNING_KEY", encode_private_key(key))
    monkeypatch.setenv("CULTURE_IDENTITY_SIGNING_KEY_ID", "k2")
    monkeypatch.setenv("CULTURE_IDENTITY_DEV_KEYS", "false")
    token, _ = signer_of(IdentitySettings()).sign("user-1", "reader")
    monkeypatch.delenv("CULTURE_IDENTITY_SIGNING_KEY")
    monkeypatch.setenv("CULTURE_IDENTITY_PUBLIC_KEY", encode_public_key(key.public_key()))
    reader = IdentitySettings()
    verifier = verifier_of(reader)
    assert isinstance(verifier, tokens.TokenVerifier) and not hasattr(verifier, "private_key")
    assert verifier.verify(token).user_id == "user-1"
    with pytest.raises(ValueError, match="verify tokens, not sign"):
        signer_of(reader)
    # a public key that is not the signing key's is refused at start, not at the first token
    monkeypatch.setenv("CULTURE_IDENTITY_SIGNING_KEY", encode_private_key(Ed25519PrivateKey.generate()))
    with pytest.raises(ValidationError, match="not the public key"):
        IdentitySettings()


def test_gateway_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURE_GATEWAY_IDENTITY_WRITE", "nohost")
    with pytest.raises(ValidationError, match="host:port"):
        GatewaySettings()
    monkeypatch.delenv("CULTURE_GATEWAY_IDENTITY_WRITE")
    monkeypatch.setenv("CULTURE_GATEWAY_REQUIRED_UPSTREAMS", '["identity-write", "billing"]')
    with pytest.raises(ValidationError, match="billing"):
        GatewaySettings()


# -- error mapping ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "status"), [
    (grpc.StatusCode.INVALID_ARGUMENT, 422), (grpc.StatusCode.ALREADY_EXISTS, 409),
    (grpc.StatusCode.UNAUTHENTICATED, 401), (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.NOT_FOUND, 404),
    (grpc.StatusCode.PERMISSION_DENIED, 403), (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.INTERNAL, 500), (grpc.StatusCode.UNKNOWN, 500)])
def test_grpc_codes_map_to_http(code: grpc.StatusCode, status: int) -> None:
    assert http_status_of(code) == status


def test_error_body_names_fields_and_hides_internals() -> None:
    status, body, headers = grpc_error_response(grpc.StatusCode.INVALID_ARGUMENT, "bad", {"email": "no @"})
    assert status == 422
    assert body == {"error": {"status": "INVALID_ARGUMENT", "message": "bad", "fields": {"email": "no @"}}}
    status, body, headers = grpc_error_response(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", {}, 42)
    assert (status, headers["Retry-After"], body["error"]["retry_after_seconds"]) == (429, "42", 42)
    status, body, _ = grpc_error_response(grpc.StatusCode.INTERNAL, "psycopg: password=... at db:5432", {})
    assert status == 500 and "5432" not in body["error"]["message"]
    status, body, _ = grpc_error_response(grpc.StatusCode.UNAVAILABLE, "ipv4:10.0.0.3:50051 refused", {})
    assert status == 503 and "10.0.0.3" not in body["error"]["message"]
    _, _, headers = grpc_error_response(grpc.StatusCode.UNAUTHENTICATED, "no", {})
    assert headers["WWW-Authenticate"].startswith("Bearer")


# -- job snapshots ---------------------------------------------------------------------------------

def _job(*steps: tuple[str, int], state: int = notifier_pb2.JOB_STATE_RUNNING) -> dict:
    job = notifier_pb2.Job(job_id="j1", state=state,
                           steps=[notifier_pb2.JobStep(name=n, state=s) for n, s in steps])
    return jobs.job_json(job)


def test_step_changes_report_new_and_changed_steps_only() -> None:
    done, pending_ = notifier_pb2.STEP_STATE_SUCCEEDED, notifier_pb2.STEP_STATE_PENDING
    first = _job(("account", done), ("profile", pending_))
    assert [(c["step"], c["state"]) for c in jobs.step_changes(None, first)] == [
        ("account", "succeeded"), ("profile", "pending")]
    second = _job(("account", done), ("profile", done), ("welcome-mail", done),
                  state=notifier_pb2.JOB_STATE_SUCCEEDED)
    assert [(c["step"], c["state"]) for c in jobs.step_changes(first, second)] == [
        ("profile", "succeeded"), ("welcome-mail", "succeeded")]
    assert jobs.is_terminal(second) and not jobs.is_terminal(first)
    assert jobs.step_changes(second, second) == []


def test_the_changes_of_one_snapshot_come_in_the_order_they_happened() -> None:
    done, pending_ = notifier_pb2.STEP_STATE_SUCCEEDED, notifier_pb2.STEP_STATE_PENDING
    at = {"account": 417, "graph": 451, "feed": 446}

    def step(name: str, state: int) -> notifier_pb2.JobStep:
        out = notifier_pb2.JobStep(name=name, state=state)
        if name in at:
            out.update_time.FromMilliseconds(1_796_000_000_000 + at[name])
        return out

    first = jobs.job_json(notifier_pb2.Job(job_id="j1", steps=[step("account", done), step("graph", pending_),
                                                                step("feed", pending_)]))
    # graph done at .451 and feed at .446 reach the gateway in one snapshot (listed in step order)
    second = jobs.job_json(notifier_pb2.Job(job_id="j1", steps=[step("account", done), step("graph", done),
                                                                 step("feed", done)]))
    assert [c["step"] for c in jobs.step_changes(first, second)] == ["feed", "graph"]


# -- migrations ------------------------------------------------------------------------------------

def test_migrations_are_ordered_unique_and_pending_is_computed() -> None:
    all_ = migrations("public")
    versions = [m.version for m in all_]
    assert versions == sorted(versions) == list(range(1, len(all_) + 1))
    assert [m.version for m in pending({1}, all_)] == versions[1:]
    assert pending(set(versions), all_) == []
    with pytest.raises(RuntimeError, match="does not know"):
        pending({1, 99}, [Migration(1, "x", ())])
    assert any('"slice_x"."identity_outbox"' in stmt for m in migrations("slice_x") for stmt in m.statements)


# -- the Kafka proxy -------------------------------------------------------------------------------

def _str(s: str) -> bytes:
    return struct.pack(">h", len(s)) + s.encode()


@pytest.mark.parametrize("version", [0, 1, 5, 8])
def test_metadata_rewrite_points_every_broker_at_the_proxy(version: int) -> None:
    brokers = [(1, "kafka-1.internal", 9092, "rack-a"), (2, "10.0.0.2", 9093, None)]
    body = struct.pack(">i", 7) if version >= 3 else b""
    body += struct.pack(">i", len(brokers))
    for node, host, port, rack in brokers:
        body += struct.pack(">i", node) + _str(host) + struct.pack(">i", port)
        if version >= 1:
            body += _str(rack) if rack else struct.pack(">h", -1)
    tail = b"\x00\x01rest-of-the-response"
    out = rewrite_metadata(body + tail, version, "127.0.0.1", 4242)
    assert out.endswith(tail)
    expected = struct.pack(">i", 7) if version >= 3 else b""
    expected += struct.pack(">i", 2)
    for node, _host, _port, rack in brokers:
        expected += struct.pack(">i", node) + _str("127.0.0.1") + struct.pack(">i", 4242)
        if version >= 1:
            expected += _str(rack) if rack else struct.pack(">h", -1)
    assert out == expected + tail


# -- the gateway's JSON guard ----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "limit", "deeper"), [
    (b'{"a": [[1]]}', 3, False),
    (b"[[[[1]]]]", 3, True),
    (b'{"a": "[[[[[[ in a string ]]]]"}', 1, False),
    (b'["\\"[[[[", [1]]', 2, False),  # an escaped quote does not end the string
    (b"[" * 8000 + b"]" * 8000, 32, True),
])
def test_json_depth_is_measured_without_parsing(body: bytes, limit: int, deeper: bool) -> None:
    from culture_gateway.app import json_depth_exceeds

    assert json_depth_exceeds(body, limit) is deeper
