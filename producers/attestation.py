"""Checking signed requests (attested agent identity) and carrying the verified attestation to the writer.

A request that carries the ``X-Agent-Signature`` header set (see :mod:`schemas.request_signing`) is verified
against the agent's registered key: unknown key, bad signature, a timestamp outside the window or a nonce seen
before is refused with 401. The verified :class:`Attestation` is then *current* for the rest of the request
(a context variable), so :class:`producers.writer.EventWriter` puts it in the envelope of every event the
request's agent causes, and :func:`require_attested` can refuse a claim of a keyed agent id that it does not
back.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

from producers.errors import AuthError
from projectors import IdentityQueries
from schemas.request_signing import (
    HEADER_AGENT,
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Attestation,
)

__all__ = ["REPLAY_WINDOW_SECS", "NonceCache", "RequestVerifier", "attested", "current_attestation",
           "require_attested"]

#: How far a request's timestamp may be from the node's clock, either way.
REPLAY_WINDOW_SECS = 300
_MAX_NONCES = 200_000

_current: ContextVar[Attestation | None] = ContextVar("ai_memory_attestation", default=None)


def current_attestation() -> Attestation | None:
    return _current.get()


@contextlib.contextmanager
def attested(att: Attestation | None) -> Iterator[None]:
    token = _current.set(att)
    try:
        yield
    finally:
        _current.reset(token)


class NonceCache:
    """Nonces seen within the replay window, per agent. A nonce older than the window cannot be replayed (its
    timestamp is refused), so it is forgotten then; the cache is bounded so a flood cannot exhaust memory."""

    def __init__(self, window: int = REPLAY_WINDOW_SECS, max_size: int = _MAX_NONCES) -> None:
        self._window = window
        self._max = max_size
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first_use(self, agent_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False when it was already used."""
        while self._seen and (next(iter(self._seen.values())) < now - 2 * self._window
                              or len(self._seen) >= self._max):
            self._seen.popitem(last=False)
        key = (agent_id, nonce)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


class RequestVerifier:
    def __init__(self, keys: IdentityQueries, *, window: int = REPLAY_WINDOW_SECS) -> None:
        self._keys = keys
        self._window = window
        self.nonces = NonceCache(window)

    @staticmethod
    def is_signed(headers: Mapping[str, str]) -> bool:
        return headers.get(HEADER_SIGNATURE) is not None

    def verify(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str], *,
               now: float | None = None) -> Attestation:
        """The attestation of a signed request.

        Raises:
            AuthError: the signature headers are incomplete, the agent has no key (or another one), the
                signature does not verify, the timestamp is outside the window or the nonce was used before.
        """
        values = [headers.get(h) for h in (HEADER_AGENT, HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE,
                                           HEADER_SIGNATURE)]
        agent_id, key_id, ts, nonce, signature = values
        if agent_id is None or key_id is None or ts is None or nonce is None or signature is None:
            raise AuthError(f"a signed request needs {HEADER_AGENT}, {HEADER_KEY_ID}, {HEADER_TIMESTAMP}, "
                            f"{HEADER_NONCE} and {HEADER_SIGNATURE}")
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 19) or not 8 <= len(nonce) <= 128:  # "²" is a digit
            raise AuthError("invalid agent signature: bad timestamp or nonce")
        att = Attestation(agent_id=agent_id, key_id=key_id, method=method.upper(), path=path, query=query,
                          body_sha256=hashlib.sha256(body).hexdigest(), timestamp=int(ts), nonce=nonce,
                          signature=signature)
        key = self._keys.agent_key(agent_id)
        if key is None or key.key_id != key_id:
            raise AuthError(f"invalid agent signature: agent {agent_id!r} has no registered key {key_id!r}")
        if not att.verify(key.raw):
            raise AuthError("invalid agent signature: the signature does not verify")
        clock = time.time() if now is None else now
        if abs(clock - att.timestamp) > self._window:
            raise AuthError(f"invalid agent signature: timestamp outside the {self._window} s window")
        if not self.nonces.first_use(agent_id, nonce, clock):
            raise AuthError("invalid agent signature: nonce already used (replay)")
        return att

    def require(self, agent_id: str) -> None:
        """Refuse a claim of ``agent_id`` when that agent has a key and the request is not signed by it."""
        att = current_attestation()
        if att is not None and att.agent_id == agent_id:
            return
        if self._keys.agent_key(agent_id) is not None:
            raise AuthError(f"agent {agent_id!r} has a registered key: requests claiming it must be signed "
                            f"({HEADER_SIGNATURE})")


def require_attested(verifier: RequestVerifier, agent_id: str) -> str:
    verifier.require(agent_id)
    return agent_id
