"""Link signatures: the canonical CBOR byte for byte (built here by hand from RFC 8949), Ed25519 round trips,
tampering, and the original's composite link id."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from schemas import (
    SignableLink,
    canonical_cbor,
    decode_signature,
    encode_signature,
    parse_link_id,
    sign_link,
    verify_link,
)

# The original's own fixture (src/identity/sign.rs, `link_fixture`); it has no byte vector, so the bytes
# are written out here from RFC 8949: 0xa6 = map of 6 pairs; 0x60 + n = text of n < 24 bytes;
# 0x78 n = text whose length needs one more byte; 0xf6 = null. Keys in the original's (string-sorted) order.
FIXTURE = SignableLink(src_id="src-001", dst_id="dst-002", relation="related_to", observed_by="alice",
                       valid_from="2026-05-05T00:00:00+00:00", valid_until=None)
EXPECTED = (
    b"\xa6"
    + b"\x66dst_id" + b"\x67dst-002"
    + b"\x6bobserved_by" + b"\x65alice"
    + b"\x68relation" + b"\x6arelated_to"
    + b"\x66src_id" + b"\x67src-001"
    + b"\x6avalid_from" + b"\x78\x19" + b"2026-05-05T00:00:00+00:00"
    + b"\x6bvalid_until" + b"\xf6"
)


def test_canonical_cbor_matches_the_hand_built_vector() -> None:
    assert canonical_cbor(FIXTURE) == EXPECTED
    assert EXPECTED.hex().startswith("a666647374")  # map(6), text(6) "dst…"


def test_absent_values_are_null_and_keys_stay() -> None:
    empty = canonical_cbor(SignableLink("s", "d", "r"))
    assert empty == (b"\xa6\x66dst_id\x61d\x6bobserved_by\xf6\x68relation\x61r\x66src_id\x61s"
                     b"\x6avalid_from\xf6\x6bvalid_until\xf6")


def test_long_and_non_ascii_texts_use_the_shortest_length_head() -> None:
    long_relation = "r" * 300  # 300 bytes: head 0x79 0x01 0x2c
    assert b"\x79\x01\x2c" + long_relation.encode() in canonical_cbor(SignableLink("s", "d", long_relation))
    accented = canonical_cbor(SignableLink("s", "d", "r", observed_by="zoë"))  # 4 UTF-8 bytes
    assert b"\x64zo\xc3\xab" in accented


def test_sign_verify_and_tamper() -> None:
    key = SigningKey(bytes(range(32)))
    signature = sign_link(key, FIXTURE)
    assert len(signature) == 64
    public = bytes(key.verify_key)
    assert verify_link(public, FIXTURE, signature)
    # Ed25519 is deterministic: the same key and bytes give the same signature.
    assert sign_link(key, FIXTURE) == signature
    tampered = SignableLink(**{**{f: getattr(FIXTURE, f) for f in FIXTURE.__slots__}, "relation": "supersedes"})
    assert not verify_link(public, tampered, signature)
    assert not verify_link(bytes(SigningKey.generate().verify_key), FIXTURE, signature)
    assert not verify_link(public, FIXTURE, b"\x00" * 64)


def test_signature_text_round_trip() -> None:
    raw = bytes(range(64))
    assert decode_signature(encode_signature(raw)) == raw
    assert decode_signature("not base64!") is None
    assert decode_signature(encode_signature(b"short")) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("a--related_to-->b", ("a", "b", "related_to")),
    ("a-b--supersedes-->c-->d", ("a-b", "c-->d", "supersedes")),
    ("a--related_to->b", None), ("--r-->b", None), ("a---->b", None), ("a--r-->", None),
])
def test_parse_link_id(text: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_link_id(text) == expected
