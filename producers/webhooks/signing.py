"""Webhook signatures, as the original's: ``X-AI-Memory-Signature: sha256=<hex>`` where the hex is
HMAC-SHA256 keyed by SHA-256(secret) (the 32 digest bytes; the original stores the digest as hex and decodes it
before keying) over ``"<timestamp>.<raw body>"``; the timestamp is in ``X-AI-Memory-Timestamp`` (Unix seconds).

The key (the digest) never enters the log in clear: :func:`seal` encrypts it to each trusted node key (Ed25519
keys converted to Curve25519, libsodium sealed boxes), and :func:`unseal` opens this node's copy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from nacl.exceptions import CryptoError
from nacl.public import SealedBox

from schemas import Keyring, NodeKey

__all__ = ["CORRELATION_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "fingerprint", "hmac_key", "seal",
           "signature", "unseal", "verify_signature"]

SIGNATURE_HEADER = "X-AI-Memory-Signature"
TIMESTAMP_HEADER = "X-AI-Memory-Timestamp"
CORRELATION_HEADER = "X-AI-Memory-Correlation-Id"


def hmac_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def fingerprint(key: bytes) -> str:
    """Tells keys apart in listings without revealing them (a hash of the key, not the key)."""
    return hashlib.sha256(key).hexdigest()[:16]


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC of ``timestamp + "." + body``."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, *, now: float,
                     tolerance: float = 300.0) -> bool:
    """What a receiver checks: the signature, and a timestamp within ``tolerance`` seconds of ``now``."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(hmac_key(secret), timestamp, body), header)


def seal(key: bytes, keyring: Keyring) -> dict[str, str]:
    """``key`` sealed to every node key in ``keyring``: key id → base64 ciphertext."""
    out: dict[str, str] = {}
    for key_id in keyring.key_ids():
        verify_key = keyring.get(key_id)
        if verify_key is not None:
            box = SealedBox(verify_key.to_curve25519_public_key())
            out[key_id] = base64.b64encode(box.encrypt(key)).decode("ascii")
    return out


def unseal(sealed: str, node_key: NodeKey) -> bytes | None:
    """This node's copy of a sealed key, or None when it does not open (sealed to another key, or damaged)."""
    try:
        box = SealedBox(node_key.signing_key.to_curve25519_private_key())
        return box.decrypt(base64.b64decode(sealed))
    except (CryptoError, ValueError):
        return None
