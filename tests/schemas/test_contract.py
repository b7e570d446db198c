from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema
import pytest

from schemas import (
    EVENT_TYPES,
    EncodingError,
    Envelope,
    Keyring,
    PayloadError,
    SignatureError,
    SignedEvent,
    UnknownEventTypeError,
    canonical_bytes,
    decode_payload,
    load_or_create_node_key,
    verify,
)
from schemas.generate import JSON_DIR, expected_files
from tests.factories import node_key, signed


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": [1.0, 2.5], "c": "é"}) == '{"a":[1,2.5],"b":1,"c":"é"}'.encode()


def test_canonical_bytes_refuse_nan() -> None:
    with pytest.raises(EncodingError):
        canonical_bytes({"x": float("nan")})


def test_sign_then_verify(tmp_path: Path) -> None:
    key = node_key(tmp_path)
    event = signed(key)
    verify(event, Keyring({key.key_id: key.public_bytes}))


def test_tampered_body_is_refused(tmp_path: Path) -> None:
    key = node_key(tmp_path)
    event = signed(key, payload={"id": "a"})
    forged = event.body.replace(b'"id":"a"', b'"id":"b"')
    with pytest.raises(SignatureError, match="does not verify"):
        verify(SignedEvent.from_parts(forged, event.signature), Keyring({key.key_id: key.public_bytes}))


def test_unknown_signer_is_refused(tmp_path: Path) -> None:
    key = node_key(tmp_path)
    other = load_or_create_node_key(tmp_path / "other", "intruder")
    with pytest.raises(SignatureError, match="not trusted"):
        verify(signed(other), Keyring({key.key_id: key.public_bytes}))


def test_key_files_are_raw_32_bytes_with_modes(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "keys", "n1")
    priv, pub = tmp_path / "keys/n1.priv", tmp_path / "keys/n1.pub"
    assert len(priv.read_bytes()) == 32 and len(pub.read_bytes()) == 32
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    again = load_or_create_node_key(tmp_path / "keys", "n1")
    assert again.public_bytes == key.public_bytes == pub.read_bytes()
    assert Keyring.from_dirs(tmp_path / "keys").key_ids() == ["n1"]


def test_envelope_round_trips_through_its_body(tmp_path: Path) -> None:
    event = signed(node_key(tmp_path))
    again = SignedEvent.from_parts(event.body, event.signature)
    assert again.envelope == event.envelope
    assert again.envelope.body() == event.body


def test_envelope_refuses_unknown_fields() -> None:
    with pytest.raises(EncodingError, match="unknown fields"):
        Envelope.from_dict({"event_id": "x", "type": "t", "schema_version": 1, "namespace": "n", "actor": "a",
                            "origin": "o", "ts": "t", "payload": {}, "key_id": "k", "extra": 1})


def test_json_schema_files_match_the_code() -> None:
    on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.json")}
    assert on_disk == expected_files(), "run `python -m schemas.generate` and commit schemas/json"
    assert set(on_disk) == {"envelope.schema.json"} | {f"{t}.schema.json" for t in EVENT_TYPES}


def test_decode_payload_checks_types() -> None:
    with pytest.raises(UnknownEventTypeError):
        decode_payload("memory.exploded", {})
    with pytest.raises(PayloadError, match="missing field id"):
        decode_payload("memory.deleted", {})
    with pytest.raises(PayloadError, match="expected str"):
        decode_payload("memory.deleted", {"id": 5})
    with pytest.raises(PayloadError, match="unknown field"):
        decode_payload("memory.deleted", {"id": "x", "more": 1})
    with pytest.raises(PayloadError, match="not one of"):
        decode_payload("memory.promoted", {"id": "x", "tier": "huge", "updated_at": "t"})


def validate_against_files(envelope: Envelope) -> None:
    """Every envelope and payload our producers write must satisfy the published JSON Schemas."""
    env_schema = json.loads((JSON_DIR / "envelope.schema.json").read_text())
    jsonschema.validate(envelope.to_dict(), env_schema)
    payload_schema = json.loads((JSON_DIR / f"{envelope.type}.schema.json").read_text())
    jsonschema.validate(envelope.payload, payload_schema)
    decode_payload(envelope.type, envelope.payload)
