"""The kept public keys: one parse per key, and a kept key still refuses what its owner did not sign."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from schemas import SignableLink, sign_link, verify_link
from schemas.verify_keys import verify_key

LINK = SignableLink(src_id="a", dst_id="b", relation="related_to", observed_by="alice",
                    valid_from="2026-05-05T00:00:00+00:00", valid_until=None)


def test_one_parse_per_key_whatever_buffer_holds_it() -> None:
    public = bytes(SigningKey.generate().verify_key)
    assert verify_key(public) is verify_key(bytearray(public)) is verify_key(memoryview(public))
    assert verify_key(public) is not verify_key(bytes(SigningKey.generate().verify_key))


def test_a_kept_key_still_refuses_other_signatures() -> None:
    alice, mallory = SigningKey.generate(), SigningKey.generate()
    public = bytes(alice.verify_key)
    assert verify_link(public, LINK, sign_link(alice, LINK))
    assert not verify_link(public, LINK, sign_link(mallory, LINK))  # same kept key, someone else's signature
    assert verify_link(public, LINK, sign_link(alice, LINK))


def test_a_malformed_key_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            verify_key(b"short")
