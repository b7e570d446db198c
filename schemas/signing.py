"""Ed25519 signing and verification of event bodies (pynacl), and node key files.

A node's key lives under its data directory as raw 32-byte files, like the original's: ``<id>.priv`` (the
seed, mode 0600) and ``<id>.pub`` (the public key, mode 0644). A :class:`Keyring` is the set of public keys a
projector trusts; an event signed by any other key is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from schemas.envelope import Envelope, SignedEvent
from schemas.errors import SignatureError

__all__ = ["Keyring", "NodeKey", "load_or_create_node_key", "sign", "verify"]

_KEY_ID = re.compile(r"^[A-Za-z0-9_\-:@.]{1,128}$")


@dataclass(frozen=True)
class NodeKey:
    key_id: str
    signing_key: SigningKey

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.signing_key.verify_key)


def load_or_create_node_key(key_dir: Path, key_id: str) -> NodeKey:
    """Load ``<key_id>.priv`` from ``key_dir``, creating the key pair on first start."""
    if not _KEY_ID.match(key_id):
        msg = f"invalid key id {key_id!r}"
        raise ValueError(msg)
    key_dir.mkdir(parents=True, exist_ok=True)
    priv = key_dir / f"{key_id}.priv"
    pub = key_dir / f"{key_id}.pub"
    if priv.exists():
        seed = priv.read_bytes()
        if len(seed) != 32:
            msg = f"{priv} is not a 32-byte Ed25519 seed"
            raise ValueError(msg)
        key = SigningKey(seed)
    else:
        key = SigningKey.generate()
        fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(key))
    if not pub.exists():
        pub.write_bytes(bytes(key.verify_key))
        pub.chmod(0o644)
    return NodeKey(key_id=key_id, signing_key=key)


class Keyring:
    """The public keys a reader trusts, by key id."""

    def __init__(self, keys: dict[str, bytes] | None = None) -> None:
        self._keys: dict[str, VerifyKey] = {k: VerifyKey(v) for k, v in (keys or {}).items()}

    def add(self, key_id: str, public_key: bytes) -> None:
        self._keys[key_id] = VerifyKey(public_key)

    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def get(self, key_id: str) -> VerifyKey | None:
        return self._keys.get(key_id)

    def public_keys(self) -> dict[str, bytes]:
        """The trusted keys as raw 32-byte public keys, by key id (to build the same keyring elsewhere)."""
        return {key_id: bytes(key) for key_id, key in self._keys.items()}

    @classmethod
    def from_dirs(cls, *dirs: Path) -> Keyring:
        """Trust every ``<id>.pub`` (32 raw bytes) found in ``dirs``."""
        ring = cls()
        for directory in dirs:
            if not directory.is_dir():
                continue
            for pub in sorted(directory.glob("*.pub")):
                data = pub.read_bytes()
                if len(data) == 32:
                    ring.add(pub.stem, data)
        return ring


def sign(envelope: Envelope, key: NodeKey) -> SignedEvent:
    if envelope.key_id != key.key_id:
        msg = f"envelope names key {envelope.key_id!r} but is signed with {key.key_id!r}"
        raise ValueError(msg)
    body = envelope.body()
    signature = key.signing_key.sign(body).signature
    return SignedEvent(body=body, signature=signature, envelope=envelope)


def verify(event: SignedEvent, keyring: Keyring) -> None:
    """Check that ``event.signature`` is a valid signature of ``event.body`` by a trusted key.

    Raises:
        SignatureError: the key is unknown or the signature does not verify.
    """
    key_id = event.envelope.key_id
    verify_key = keyring.get(key_id)
    if verify_key is None:
        raise SignatureError(event.event_id, key_id, "signer key is not trusted")
    try:
        verify_key.verify(event.body, event.signature)
    except (BadSignatureError, ValueError):
        raise SignatureError(event.event_id, key_id, "signature does not verify") from None
