"""Signing requests as an agent, for agents that talk to ai-memory over HTTP (or MCP over HTTP) with httpx::

    from producers.identity.agent_client import AgentAuth, load_agent_key
    auth = AgentAuth("alice", load_agent_key(Path("~/.ai-memory/agent-keys/alice.priv").expanduser()))
    httpx.post("http://127.0.0.1:9077/api/v1/memories", json={...}, auth=auth)

Each request gets a fresh timestamp and nonce, and the signature covers the method, path, query and body
(:func:`schemas.request_signing.sign_request`); the same ``auth`` works for ``/mcp``. It also names the target
node once known (``node=``, or learnt from a node that refused an unbound signature: a node of a cluster
answers 401 with its id in ``X-AI-Memory-Node``, and the request is signed again for it, once).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx
from nacl.signing import SigningKey

from schemas.request_signing import HEADER_NODE_ID, sign_registration, sign_request

__all__ = ["AgentAuth", "load_agent_key", "sign_registration", "sign_request"]


def load_agent_key(path: Path) -> SigningKey:
    """An agent key file: the raw 32-byte Ed25519 seed (what ``ai-memory identity keygen`` writes)."""
    seed = path.read_bytes()
    if len(seed) != 32:
        msg = f"{path} is not a 32-byte Ed25519 seed"
        raise ValueError(msg)
    return SigningKey(seed)


class AgentAuth(httpx.Auth):
    """httpx authentication that signs every request as ``agent_id`` with ``key``."""

    requires_request_body = True

    def __init__(self, agent_id: str, key: SigningKey, *, node: str = "") -> None:
        self.agent_id = agent_id
        self.key = key
        self.node = node

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._sign(request)
        response = yield request
        named = response.headers.get(HEADER_NODE_ID)
        if response.status_code == 401 and named and named != self.node:
            self.node = named
            self._sign(request)  # a fresh nonce, bound to the node that answered
            yield request

    def _sign(self, request: httpx.Request) -> None:
        headers = sign_request(self.key, self.agent_id, request.method, request.url.path,
                               request.url.query.decode("ascii"), request.content, node=self.node)
        request.headers.update(headers)
