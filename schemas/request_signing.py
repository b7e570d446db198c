"""Attested agent identity: how an agent signs a request with its Ed25519 key, and how anyone checks it.

Pure functions, no I/O: the same code signs on the client (:func:`sign_request`, a helper agents import) and
verifies on the server, and the attestation block stored in an event envelope can be re-checked by any
consumer holding the agent's public key. Example::

    from nacl.signing import SigningKey
    from schemas.request_signing import key_id_for, sign_request

    key = SigningKey.generate()
    headers = sign_request(key, "alice", "POST", "/api/v1/memories", "", body_bytes)
    httpx.post(url + "/api/v1/memories", content=body_bytes, headers=headers)

The signed message (UTF-8, lines joined by ``\\n``)::

    ai-memory-request-v1
    <METHOD upper-case>
    <path, as sent>
    <query string, as sent, without "?">
    <hex SHA-256 of the body bytes>
    <timestamp, unix seconds>
    <nonce>
    <agent id>
    <key id>
    <node id>            (only when the request names its target node in X-Agent-Node)

Naming the node binds the signature to it: another node of the cluster refuses it, so a captured request cannot
be replayed there (each node remembers the nonces it has accepted; see ``producers.identity.attestation``). Without the
header the message is exactly the nine lines above, as signed before the header existed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from schemas.verify_keys import verify_key

__all__ = ["HEADER_AGENT", "HEADER_KEY_ID", "HEADER_NODE", "HEADER_NODE_ID", "HEADER_NONCE", "HEADER_SIGNATURE",
           "HEADER_TIMESTAMP", "SCHEME", "Attestation", "attestation_schema", "b64url", "b64url_decode", "key_id_for",
           "registration_message", "sign_registration", "sign_request", "verify_registration"]

SCHEME = "ai-memory-request-v1"
REGISTRATION_SCHEME = "ai-memory-register-key-v1"
HEADER_AGENT = "X-Agent-Id"
HEADER_KEY_ID = "X-Agent-Key-Id"
HEADER_TIMESTAMP = "X-Agent-Timestamp"
HEADER_NONCE = "X-Agent-Nonce"
HEADER_SIGNATURE = "X-Agent-Signature"
#: The node a request is signed for (optional on a single node; a node of a cluster requires it).
HEADER_NODE = "X-Agent-Node"
#: The response header in which a node that refused a signature for want of its id names itself.
HEADER_NODE_ID = "X-AI-Memory-Node"


def b64url(raw: bytes) -> str:
    """URL-safe base64 without padding (the original's key export format)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Raises ValueError when ``text`` is not URL-safe (or standard) base64."""
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not base64: {exc}") from None


def key_id_for(public_key: bytes) -> str:
    """A key's id: derived from the key, so a key id can never name two different keys."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Attestation:
    """A signed request: what the agent signed, and its signature. Stored as is in the event envelope."""

    agent_id: str
    key_id: str
    method: str
    path: str
    query: str
    body_sha256: str
    timestamp: int
    nonce: str
    signature: str
    #: The target node's id, when the agent bound the signature to it ("" when not).
    node: str = ""

    def message(self) -> bytes:
        lines = [SCHEME, self.method.upper(), self.path, self.query, self.body_sha256, str(self.timestamp),
                 self.nonce, self.agent_id, self.key_id]
        if self.node:
            lines.append(self.node)
        return "\n".join(lines).encode("utf-8")

    def verify(self, public_key: bytes) -> bool:
        """True when ``signature`` is this agent key's signature over :meth:`message`."""
        try:
            verify_key(public_key).verify(self.message(), b64url_decode(self.signature))
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.node:
            del out["node"]  # an unbound signature's block keeps its earlier shape (and canonical bytes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attestation | None:
        """The block back from an envelope; None when it is malformed (it then attests nothing)."""
        try:
            att = cls(**data)
        except TypeError:
            return None
        ok = all(isinstance(getattr(att, f), str) for f in ("agent_id", "key_id", "method", "path", "query",
                                                            "body_sha256", "nonce", "signature", "node"))
        return att if ok and isinstance(att.timestamp, int) else None


def sign_request(key: SigningKey, agent_id: str, method: str, path: str, query: str, body: bytes, *,
                 timestamp: int | None = None, nonce: str | None = None, node: str = "") -> dict[str, str]:
    """The headers that attest a request as ``agent_id``'s. ``path`` and ``query`` exactly as sent; ``node``
    (the target node's id) binds the signature to that node."""
    att = Attestation(agent_id=agent_id, key_id=key_id_for(bytes(key.verify_key)), method=method.upper(),
                      path=path, query=query, body_sha256=hashlib.sha256(body).hexdigest(),
                      timestamp=int(time.time()) if timestamp is None else timestamp,
                      nonce=nonce or secrets.token_hex(16), signature="", node=node)
    signature = b64url(key.sign(att.message()).signature)
    headers = {HEADER_AGENT: agent_id, HEADER_KEY_ID: att.key_id, HEADER_TIMESTAMP: str(att.timestamp),
               HEADER_NONCE: att.nonce, HEADER_SIGNATURE: signature}
    if node:
        headers[HEADER_NODE] = node
    return headers


def registration_message(agent_id: str, public_key: str, timestamp: int) -> bytes:
    """What a key's owner signs to register it: proof that whoever registers the key holds it."""
    return "\n".join((REGISTRATION_SCHEME, agent_id, public_key, str(timestamp))).encode("utf-8")


def sign_registration(key: SigningKey, agent_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """The body of a key registration (HTTP ``POST /api/v1/agents/keys``, MCP ``memory_agent_key_register``)."""
    public_key = b64url(bytes(key.verify_key))
    ts = int(time.time()) if timestamp is None else timestamp
    proof = b64url(key.sign(registration_message(agent_id, public_key, ts)).signature)
    return {"agent_id": agent_id, "public_key": public_key, "timestamp": ts, "proof": proof}


def verify_registration(agent_id: str, public_key: bytes, timestamp: int, proof: str) -> bool:
    try:
        verify_key(public_key).verify(registration_message(agent_id, b64url(public_key), timestamp),
                                     b64url_decode(proof))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def attestation_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope's optional ``attestation`` block."""
    strings = ("agent_id", "key_id", "method", "path", "query", "body_sha256", "nonce", "signature")
    props: dict[str, Any] = {name: {"type": "string"} for name in strings}
    props["timestamp"] = {"type": "integer"}
    props["node"] = {"type": "string", "description": "the node the request was signed for (absent: unbound)"}
    return {"type": "object", "description": f"the agent's Ed25519 signature over its request ({SCHEME})",
            "properties": props, "required": [*strings[:-1], "timestamp", "signature"],
            "additionalProperties": False}
