"""Governance policies as the original writes them in a standard memory's ``metadata.governance``, and the
namespace chain a policy is inherited along. Pure: no I/O; the caller passes what it read from the read model.

A policy: ``write``/``promote``/``delete`` are one of ``any | registered | owner | approve`` (defaults any,
any, owner); ``approver`` is ``"human"``, ``{"agent": id}`` or ``{"consensus": n}``; ``inherit`` (default true).
Beyond the original, ``required_scope`` names the scope every memory written to the namespace must carry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from producers.errors import ValidationError
from producers.input.validation import check_agent_id

__all__ = ["LEVELS", "MODES", "SCOPES", "Approver", "GovernancePolicy", "Mode", "ancestors", "default_mode",
           "namespace_chain", "parse_policy", "policy_of"]

Level = Literal["any", "registered", "owner", "approve"]
Mode = Literal["enforce", "advisory", "off"]
LEVELS: tuple[str, ...] = ("any", "registered", "owner", "approve")
MODES: tuple[str, ...] = ("enforce", "advisory", "off")
SCOPES: tuple[str, ...] = ("private", "team", "unit", "org", "collective")
#: How far an explicit ``parent`` chain is followed above the root of the ``/`` chain (the original's bound).
MAX_EXPLICIT_DEPTH = 8
MODE_ENV = "AI_MEMORY_GOVERNANCE_MODE"


def default_mode() -> Mode:
    """``enforce`` (secure by default; the original defaults to advisory) unless ``AI_MEMORY_GOVERNANCE_MODE``
    says otherwise."""
    value = os.environ.get(MODE_ENV, "enforce").strip().lower() or "enforce"
    if value not in MODES:
        msg = f"{MODE_ENV} must be one of {', '.join(MODES)}, not {value!r}"
        raise ValidationError(msg)
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Approver:
    """Who may approve: ``kind`` human (anyone), agent (only ``agent_id``), consensus (``quorum`` registered
    agents)."""

    kind: Literal["human", "agent", "consensus"] = "human"
    agent_id: str | None = None
    quorum: int = 0

    def to_json(self) -> Any:
        if self.kind == "agent":
            return {"agent": self.agent_id}
        if self.kind == "consensus":
            return {"consensus": self.quorum}
        return "human"


@dataclass(frozen=True)
class GovernancePolicy:
    write: Level = "any"
    promote: Level = "any"
    delete: Level = "owner"
    approver: Approver = Approver()
    inherit: bool = True
    required_scope: str | None = None

    def level(self, action: str) -> Level:
        """The level that gates ``action`` (store and update are writes)."""
        if action == "promote":
            return self.promote
        if action == "delete":
            return self.delete
        return self.write

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"write": self.write, "promote": self.promote, "delete": self.delete,
                               "approver": self.approver.to_json(), "inherit": self.inherit}
        if self.required_scope is not None:
            out["required_scope"] = self.required_scope
        return out


def _level(raw: Mapping[str, Any], name: str, default: Level) -> Level:
    value = raw.get(name, default)
    if value not in LEVELS:
        msg = f"invalid governance: unknown variant `{value}`, expected one of `any`, `registered`, `owner`, `approve`"
        raise ValidationError(msg)
    return value  # type: ignore[no-any-return]


def _approver(value: Any) -> Approver:
    if value is None or value == "human":
        return Approver()
    if isinstance(value, dict) and len(value) == 1:
        if isinstance(value.get("agent"), str):
            return Approver("agent", agent_id=check_agent_id(value["agent"]))
        quorum = value.get("consensus")
        if isinstance(quorum, int) and not isinstance(quorum, bool):
            if quorum < 1:
                raise ValidationError("governance.approver.consensus quorum must be >= 1")
            return Approver("consensus", quorum=quorum)
    msg = 'invalid governance: approver must be "human", {"agent": "<id>"} or {"consensus": <n>}'
    raise ValidationError(msg)


def parse_policy(raw: Any) -> GovernancePolicy:
    """A policy from its JSON form. ``write`` is required (as in the original); the rest have defaults.

    Raises:
        ValidationError: the value is not a valid policy (the message says why).
    """
    if not isinstance(raw, dict):
        raise ValidationError("invalid governance: expected an object")
    if "write" not in raw:
        raise ValidationError("invalid governance: missing field `write`")
    unknown = set(raw) - {"write", "promote", "delete", "approver", "inherit", "required_scope"}
    if unknown:
        raise ValidationError(f"invalid governance: unknown field `{sorted(unknown)[0]}`")
    inherit = raw.get("inherit", True)
    if not isinstance(inherit, bool):
        raise ValidationError("invalid governance: inherit must be a boolean")
    scope = raw.get("required_scope")
    if scope is not None and scope not in SCOPES:
        raise ValidationError(f"invalid governance: required_scope must be one of {', '.join(SCOPES)}")
    return GovernancePolicy(write=_level(raw, "write", "any"), promote=_level(raw, "promote", "any"),
                            delete=_level(raw, "delete", "owner"), approver=_approver(raw.get("approver")),
                            inherit=inherit, required_scope=scope)


def policy_of(metadata: Mapping[str, Any]) -> GovernancePolicy | None:
    """The policy in a standard memory's metadata; None when it has none or it does not parse (as the
    original, which ignores a malformed policy at enforcement time)."""
    raw = metadata.get("governance")
    if raw is None:
        return None
    try:
        return parse_policy(raw)
    except ValidationError:
        return None


def ancestors(namespace: str) -> list[str]:
    """``a/b/c`` → ``[a, a/b, a/b/c]`` (top-down)."""
    parts = namespace.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def namespace_chain(namespace: str, parent_of: Callable[[str], str | None]) -> list[str]:
    """The inheritance chain, most general first: ``*``, the explicit parents of the ``/`` chain's root
    (cycle-safe, at most :data:`MAX_EXPLICIT_DEPTH`), then the ``/`` ancestors down to ``namespace`` itself."""
    if namespace == "*":
        return ["*"]
    hierarchy = ancestors(namespace)
    above: list[str] = []
    current = hierarchy[0]
    for _ in range(MAX_EXPLICIT_DEPTH):
        parent = parent_of(current)
        if parent is None or parent == "*" or parent in above or parent in hierarchy:
            break
        above.append(parent)
        current = parent
    chain = ["*", *reversed(above)]
    chain.extend(ns for ns in hierarchy if ns not in chain)
    return chain
