"""Checking signed requests (attested agent identity) and carrying the verified attestation to the writer.

A request that carries the ``X-Agent-Signature`` header set (see :mod:`schemas.request_signing`) is verified
against the agent's registered key: unknown key, bad signature, a timestamp outside the window, a nonce seen
before, or a signature bound to another node is refused with 401. The verified :class:`Attestation` is then
*current* for the rest of the request (a context variable), so :class:`producers.write.writer.EventWriter` puts it in
the envelope of every event the request's agent causes, and :func:`require_attested` can refuse a claim of a
keyed agent id that it does not back.

Replays. A node remembers every nonce it accepted until that request's timestamp leaves the window (after
which the timestamp alone refuses it), per agent. The memory is bounded per agent and in all, and a full
memory *refuses* new signed requests (429, :class:`ReplayCacheFullError`) rather than forgetting a nonce that
could still be replayed: an agent flooding with its own key only ever locks itself out. Across the nodes of a
cluster, a signature names the node it was made for (``X-Agent-Node``) and every other node refuses it, so
each nonce only ever needs to be remembered by the one node that can accept it. The memory lives in the
process, so a node refuses requests signed before it started.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from producers.errors import AuthError, CommandError
from projectors import IdentityQueries
from schemas.request_signing import (
    HEADER_AGENT,
    HEADER_KEY_ID,
    HEADER_NODE,
    HEADER_NODE_ID,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Attestation,
)

__all__ = ["MAX_NONCES", "MAX_NONCES_PER_AGENT", "REPLAY_WINDOW_SECS", "NodeBindingError",
           "NonceCache", "ReplayCacheFullError", "RequestVerifier", "attested", "current_attestation",
           "require_attested"]

#: How far a request's timestamp may be from the node's clock, either way.
REPLAY_WINDOW_SECS = 300
#: Nonces one agent may have in flight within the window (about 166 signed requests a second, sustained).
MAX_NONCES_PER_AGENT = 50_000
#: Nonces of all agents together: what bounds the node's memory (a few hundred bytes each).
MAX_NONCES = 1_000_000

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


class ReplayCacheFullError(CommandError):
    """429, exit 6: the node remembers as many of the agent's (or all agents') nonces as it may; it refuses
    the request rather than forget one that could still be replayed. ``Retry-After``: when the node's next
    nonce expires (the earliest that room can appear; found in O(1), so refusing a flood stays cheap)."""

    status = 429
    exit_code = 6

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "code": "REPLAY_CACHE_FULL", "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NodeBindingError(AuthError):
    """401: the signature is bound to another node, or this node of a cluster needs it bound to itself. The
    answer names this node (``X-AI-Memory-Node``, ``HEADER_NODE_ID``) so a client can sign again for it."""

    def __init__(self, message: str, *, node_id: str) -> None:
        super().__init__(message)
        self.node_id = node_id

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "node": self.node_id}

    def headers(self) -> dict[str, str]:
        return {HEADER_NODE_ID: self.node_id}


class NonceCache:
    """The nonces accepted within the replay window, per agent.

    A nonce is kept until its request's timestamp is more than ``window`` seconds in the past, the moment the
    timestamp check starts refusing that request anyway; so nothing that could still be replayed is ever
    forgotten. A full cache (``per_agent`` nonces of one agent, or ``total`` of all) refuses new ones.
    """

    def __init__(self, window: int = REPLAY_WINDOW_SECS, *, per_agent: int = MAX_NONCES_PER_AGENT,
                 total: int = MAX_NONCES) -> None:
        self._window = window
        self._per_agent = per_agent
        self._total = total
        self._seen: dict[str, dict[str, float]] = {}  # agent id -> nonce -> expiry (unix seconds)
        self._expiries: list[tuple[float, str, str]] = []  # a heap of (expiry, agent id, nonce)

    def __len__(self) -> int:
        return len(self._expiries)

    def first_use(self, agent_id: str, nonce: str, timestamp: float, now: float) -> bool:
        """Record the nonce of a request signed at ``timestamp``; False when the agent already used it.

        Raises:
            ReplayCacheFullError: the agent (or the node) has as many nonces in the window as allowed.
        """
        self._expire(now)
        seen = self._seen.get(agent_id)
        if seen is not None and nonce in seen:
            return False
        if seen is not None and len(seen) >= self._per_agent:
            raise ReplayCacheFullError(
                f"too many signed requests from agent {agent_id!r}: {len(seen)} nonces within the "
                f"{self._window} s replay window (the most one agent may have); retry later",
                retry_after=self._expiries[0][0] - now)
        if len(self._expiries) >= self._total:
            raise ReplayCacheFullError(
                f"too many signed requests on this node: {len(self._expiries)} nonces within the {self._window} s "
                f"replay window; retry later", retry_after=self._expiries[0][0] - now)
        expiry = timestamp + self._window
        self._seen.setdefault(agent_id, {})[nonce] = expiry
        heapq.heappush(self._expiries, (expiry, agent_id, nonce))
        return True

    def _expire(self, now: float) -> None:
        """Forget the nonces whose timestamps the window refuses at ``now``."""
        while self._expiries and self._expiries[0][0] < now:
            _, agent_id, nonce = heapq.heappop(self._expiries)
            seen = self._seen[agent_id]
            del seen[nonce]
            if not seen:
                del self._seen[agent_id]


class RequestVerifier:
    """Checks signed requests for one node: ``node_id`` is the node a bound signature must name, and
    ``require_node`` (a node that shares its log with others) refuses signatures that name no node."""

    def __init__(self, keys: IdentityQueries, *, node_id: str = "", require_node: bool = False,
                 window: int = REPLAY_WINDOW_SECS) -> None:
        self._keys = keys
        self._window = window
        self.node_id = node_id
        self.require_node = require_node
        self.nonces = NonceCache(window)
        # The nonces accepted before a restart are gone with the process: refuse what was signed before it.
        self.started_at = int(time.time())

    @staticmethod
    def is_signed(headers: Mapping[str, str]) -> bool:
        return headers.get(HEADER_SIGNATURE) is not None

    def verify(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str], *,
               now: float | None = None) -> Attestation:
        """The attestation of a signed request.

        Raises:
            AuthError: the signature headers are incomplete, the agent has no key (or another one), the
                signature does not verify, the timestamp is outside the window or the nonce was used before.
            NodeBindingError: the signature names another node, or none where this node requires it.
            ReplayCacheFullError: the node cannot remember one more of this agent's nonces.
        """
        values = [headers.get(h) for h in (HEADER_AGENT, HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE,
                                           HEADER_SIGNATURE)]
        agent_id, key_id, ts, nonce, signature = values
        if agent_id is None or key_id is None or ts is None or nonce is None or signature is None:
            raise AuthError(f"a signed request needs {HEADER_AGENT}, {HEADER_KEY_ID}, {HEADER_TIMESTAMP}, "
                            f"{HEADER_NONCE} and {HEADER_SIGNATURE}")
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 12) or not 8 <= len(nonce) <= 128:
            raise AuthError("invalid agent signature: bad timestamp or nonce")
        att = Attestation(agent_id=agent_id, key_id=key_id, method=method.upper(), path=path, query=query,
                          body_sha256=hashlib.sha256(body).hexdigest(), timestamp=int(ts), nonce=nonce,
                          signature=signature, node=headers.get(HEADER_NODE) or "")
        key = self._keys.agent_key(agent_id)
        if key is None or key.key_id != key_id:
            raise AuthError(f"invalid agent signature: agent {agent_id!r} has no registered key {key_id!r}")
        if not att.verify(key.raw):
            raise AuthError("invalid agent signature: the signature does not verify")
        clock = time.time() if now is None else now
        if abs(clock - att.timestamp) > self._window:
            raise AuthError(f"invalid agent signature: timestamp outside the {self._window} s window")
        if att.timestamp < self.started_at:
            raise AuthError("invalid agent signature: signed before this node started (it cannot know whether "
                            "that request was used already); sign it again")
        self._check_node(att.node)
        if not self.nonces.first_use(agent_id, nonce, att.timestamp, clock):
            raise AuthError("invalid agent signature: nonce already used (replay)")
        return att

    def _check_node(self, signed_for: str) -> None:
        if signed_for and signed_for != self.node_id:
            raise NodeBindingError(f"invalid agent signature: it was made for node {signed_for!r}, this is node "
                                   f"{self.node_id!r}", node_id=self.node_id)
        if not signed_for and self.require_node:
            raise NodeBindingError(
                f"this node shares its log with other nodes: a signed request must name it ({HEADER_NODE}: "
                f"{self.node_id}), so that it cannot be replayed on another node", node_id=self.node_id)

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
