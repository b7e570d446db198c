"""The HMAC that authorises ``POST /api/v1/approvals/{pending_id}`` (the original's K10 approval API).

The signature is ``sha256=<hex(HMAC-SHA256(key=hex(SHA256(secret)), msg=canonical))>`` over::

    <ts>.POST.<pending_id>.<raw body>                the original's v0.7.0 canonical: always accepted
    <ts>.POST.<pending_id>@<approver>.<raw body>     ours, which also binds the approver (X-Agent-Id)

Binding the pending id means a signed approval of pending A cannot be replayed to B. The original's clients sign
the first form even when they send ``X-Agent-Id``, so it stays accepted (compatibility is a requirement); a
client that wants the approver bound too (so that a captured signature cannot be re-sent as another voter's
vote on another node) signs the second. Each signature is accepted once per node within its window (as the
original's nonce cache does).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from producers.errors import AuthError, ValidationError
from producers.identity.attestation import MAX_NONCES, NonceCache

__all__ = ["APPROVAL_MAX_AGE_SECS", "APPROVAL_MAX_SKEW_SECS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER",
           "ApprovalAuth", "approval_signature"]

#: The original's window for ``X-AI-Memory-Timestamp``: at most 300 s old, at most 60 s in the future.
APPROVAL_MAX_AGE_SECS = 300
APPROVAL_MAX_SKEW_SECS = 60
SIGNATURE_HEADER = "x-ai-memory-signature"
TIMESTAMP_HEADER = "x-ai-memory-timestamp"
_REFUSED = "invalid or missing X-AI-Memory-Signature"
# All approvals share one replay memory (the signer is the secret's holder, not an agent).
_SIGNER = "approvals"


def approval_signature(secret: str, timestamp: str, pending_id: str, approver: str, body: bytes) -> str:
    """The ``X-AI-Memory-Signature`` value of an approval of ``pending_id`` by ``approver`` ("" for none)."""
    key = hashlib.sha256(secret.encode()).hexdigest().encode()
    target = f"{pending_id}@{approver}" if approver else pending_id
    message = f"{timestamp}.POST.{target}.".encode() + body
    return "sha256=" + hmac.new(key, message, hashlib.sha256).hexdigest()


class ApprovalAuth:
    """Checks approval HMACs for one node: the secret, the time window, the binding and single use."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret
        self._used = NonceCache(APPROVAL_MAX_AGE_SECS, per_agent=MAX_NONCES)

    def check(self, headers: Mapping[str, str], pending_id: str, approver: str, body: bytes, *,
              now: float | None = None) -> None:
        """Refuse (401, the original's message) an approval whose signature is missing, stale, for another
        pending action or approver, or already used.

        Raises:
            AuthError: as above; also when the node has no secret (every approval is refused then).
            ValidationError: a pending id with ``@`` (it would make the signed target ambiguous).
            ReplayCacheFullError: the node cannot remember one more signature within the window.
        """
        if "@" in pending_id:
            raise ValidationError("invalid pending id: it cannot contain '@'")
        timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        if self._secret is None or timestamp is None or signature is None or not signature.startswith("sha256="):
            raise AuthError(_REFUSED)
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise AuthError(_REFUSED)
        clock = time.time() if now is None else now
        age = clock - int(timestamp)
        if age > APPROVAL_MAX_AGE_SECS or age < -APPROVAL_MAX_SKEW_SECS:
            raise AuthError(_REFUSED)
        forms = {approval_signature(self._secret, timestamp, pending_id, "", body)}
        if approver:
            forms.add(approval_signature(self._secret, timestamp, pending_id, approver, body))
        if not any(hmac.compare_digest(form.encode(), signature.encode()) for form in forms):
            raise AuthError(_REFUSED)
        if not self._used.first_use(_SIGNER, signature, int(timestamp), clock):
            raise AuthError(_REFUSED)
