"""Who is calling: agent-id resolution per transport (as in the original), and attested agent identity: agent
keys, the signed-request verifier and the operator's mandatory-``as_agent`` namespaces (beyond the original)."""

from __future__ import annotations

import os
import socket
import time
import uuid

from infra.log import EventLog
from producers.errors import AuthError, ForbiddenError, NotFoundError, ValidationError
from producers.identity.attestation import REPLAY_WINDOW_SECS, RequestVerifier
from producers.identity.visibility import Visibility
from producers.input.validation import check_agent_id, check_namespace
from producers.write.writer import Decided, EventWriter, WriteResult
from projectors import AgentKey, IdentityQueries
from schemas import now_ts
from schemas.events import AgentKeyRegistered, AgentKeyRevoked, AsAgentRequirementSet
from schemas.request_signing import b64url, b64url_decode, key_id_for, verify_registration

__all__ = ["ENROLLMENT_ENV", "ENROLLMENT_MODES", "IdentityService", "enrollment_mode", "resolve_cli_agent",
           "resolve_http_agent"]

#: Who may enroll the first key of an agent id: ``operator`` (the default: the CLI, or HTTP with the admin
#: token) or ``open`` (anyone holding the key, first come first served: only where every caller is trusted).
ENROLLMENT_ENV = "AI_MEMORY_KEY_ENROLLMENT"
ENROLLMENT_MODES = ("operator", "open")


def resolve_http_agent(body_agent: object, header_agent: str | None) -> str:
    """Body ``agent_id``, then the ``X-Agent-Id`` header, then ``anonymous:req-<8 hex>``."""
    for candidate in (body_agent, header_agent):
        if isinstance(candidate, str) and candidate:
            try:
                return check_agent_id(candidate)
            except ValidationError as exc:
                raise ValidationError(f"invalid agent_id: {exc}") from None
        if candidate is not None and not isinstance(candidate, str):
            raise ValidationError("invalid agent_id: agent_id must be a string")
    return f"anonymous:req-{uuid.uuid4().hex[:8]}"


def enrollment_mode(value: str | None = None) -> str:
    """The key enrollment mode: ``value``, else ``AI_MEMORY_KEY_ENROLLMENT``, else ``operator``."""
    mode = (value if value is not None else os.environ.get(ENROLLMENT_ENV, "")).strip().lower() or "operator"
    if mode not in ENROLLMENT_MODES:
        raise ValidationError(f"{ENROLLMENT_ENV} must be one of {', '.join(ENROLLMENT_MODES)}, not {mode!r}")
    return mode


def _shares_log(log: EventLog) -> bool:
    """Whether other nodes may append to (and serve from) this node's log: every backend but the embedded file."""
    return not log.url.startswith("sqlite:")


def resolve_cli_agent(flag: str | None) -> str:
    """``--agent-id``, then ``AI_MEMORY_AGENT_ID``, then ``host:<host>:pid-<pid>-<8 hex>``."""
    for candidate in (flag, os.environ.get("AI_MEMORY_AGENT_ID")):
        if candidate:
            return check_agent_id(candidate)
    return f"host:{socket.gethostname()}:pid-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class IdentityService:
    """Agent keys (attested agent identity) and the operator's mandatory-``as_agent`` namespaces: commands that
    append identity events through the node's writer, the request verifier, and the visibility rules."""

    def __init__(self, writer: EventWriter, identity: IdentityQueries, *, enrollment: str | None = None) -> None:
        self.writer = writer
        self.queries = identity
        self.enrollment = enrollment_mode(enrollment)
        # In a cluster a signature must name the node it is for, so no other node accepts it (a replay there).
        self.verifier = RequestVerifier(identity, node_id=writer.node_id, require_node=_shares_log(writer.log))
        self.visibility = Visibility(identity)

    async def register_key(self, agent_id: str, public_key: str, timestamp: int, proof: str, *,
                           actor: str, operator: bool) -> tuple[AgentKey, WriteResult]:
        """Register (or rotate) ``agent_id``'s Ed25519 key. ``proof`` is the key's signature over the
        registration (:func:`schemas.request_signing.sign_registration`), made within the replay window.

        The proof shows the caller holds the key, not that the agent id is theirs: so the first key of an id is
        enrolled by the ``operator`` only (unless the node's enrollment is ``open``), and a new key replaces
        the current one only on a request signed with the current key.

        Raises:
            ValidationError: malformed agent id or key.
            AuthError: the proof does not verify or is stale; or the agent already has another key and this
                request is not signed with it (rotation needs the current key; an operator can revoke).
            ForbiddenError: the agent has no key yet and the caller is not the operator (enrollment ``operator``).
        """
        check_agent_id(agent_id)
        try:
            raw = b64url_decode(public_key)
        except ValueError:
            raise ValidationError("public_key must be URL-safe base64 of a 32-byte Ed25519 key") from None
        if len(raw) != 32:
            raise ValidationError("public_key must be URL-safe base64 of a 32-byte Ed25519 key")
        if abs(time.time() - timestamp) > REPLAY_WINDOW_SECS:
            raise AuthError(f"key registration proof is older than {REPLAY_WINDOW_SECS} s (or in the future)")
        if not verify_registration(agent_id, raw, timestamp, proof):
            raise AuthError("key registration proof does not verify with that public key")
        key_id = key_id_for(raw)

        async def decide() -> list[Decided]:
            current = self.queries.agent_key(agent_id)
            if current is not None and current.key_id == key_id:
                return []
            self.authorise_enrollment(agent_id, operator=operator)
            event = AgentKeyRegistered(agent_id=agent_id, key_id=key_id, public_key=b64url(raw), proof=proof,
                                       proof_timestamp=timestamp, registered_at=now_ts())
            return [(event, "_agents")]

        write = await self.writer.decide_and_append(decide, actor=actor)
        stored = self.queries.agent_key(agent_id)
        assert stored is not None
        return stored, await self.writer.with_quorum(write)

    def authorise_enrollment(self, agent_id: str, *, operator: bool) -> None:
        """Refuse a key registration for ``agent_id`` that the caller may not make: a rotation not signed with
        the current key (AuthError), or a first key not enrolled by the operator (ForbiddenError) while
        enrollment is ``operator``. :meth:`register_key` checks it again against the caught-up log."""
        if self.queries.agent_key(agent_id) is not None:
            self.verifier.require(agent_id)  # only the current key may rotate itself
        elif not operator and self.enrollment != "open":
            raise ForbiddenError(
                f"agent {agent_id!r} has no key yet: only the operator enrolls one (ai-memory identity "
                "register, or POST /api/v1/identity/keys with the X-AI-Memory-Admin-Token header); "
                f"{ENROLLMENT_ENV}=open lets anyone holding a key enroll an agent id that has none")

    async def revoke_key(self, agent_id: str, *, actor: str, reason: str = "") -> WriteResult:
        """Withdraw the agent's key (an operator command). Raises NotFoundError when it has none."""
        async def decide() -> list[Decided]:
            current = self.queries.agent_key(agent_id)
            if current is None:
                raise NotFoundError(f"agent {agent_id!r} has no registered key")
            return [(AgentKeyRevoked(agent_id=agent_id, key_id=current.key_id, revoked_at=now_ts(), reason=reason),
                     "_agents")]

        return await self.writer.with_quorum(await self.writer.decide_and_append(decide, actor=actor))

    async def set_as_agent_required(self, prefix: str, required: bool, *, actor: str, reason: str = ""
                                    ) -> WriteResult:
        """Make ``as_agent`` mandatory (or not) for reads in ``prefix`` and below (an operator command)."""
        check_namespace(prefix)
        async def decide() -> list[Decided]:
            if (prefix in self.queries.required_prefixes()) == required:
                return []
            return [(AsAgentRequirementSet(prefix=prefix, required=required, set_at=now_ts(), reason=reason), prefix)]

        return await self.writer.with_quorum(await self.writer.decide_and_append(decide, actor=actor))

    async def keys(self) -> list[AgentKey]:
        await self.writer.caught_up()
        return self.queries.agent_keys()

    async def required_prefixes(self) -> list[str]:
        await self.writer.caught_up()
        return self.queries.required_prefixes()
