"""The capabilities document (v1, v2, v3), the family overview and per-family tool listings.

Shapes are the original's (its ``config.rs`` ``Capabilities``/``CapabilitiesV1``/``CapabilitiesV3`` and
``mcp.rs``); the values report what THIS node has loaded, never what a tier name would promise. One block is our
own, ``event_sourced``: the log backend, log end offsets, projector offsets and lag, and which tools cannot work
yet and why. Served by ``memory_capabilities`` and by ``GET /api/v1/capabilities`` (``Accept-Capabilities``).
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import TYPE_CHECKING, Any

from infra.embed import LOCAL_MODELS
from infra.log import redact_url
from producers.errors import ValidationError
from producers.tools.missing import MISSING
from producers.tools.registry import (
    ALWAYS_ON_TOOLS,
    FAMILIES,
    FAMILY_TOOLS,
    Profile,
    all_tools,
    family_of,
    trim_tool,
)
from projectors import FIRED_EVENT_TYPES

if TYPE_CHECKING:
    from producers.llm.client import LlmClient
    from producers.runtime.node import Node
    from producers.tools.client import ClientIdentity

__all__ = ["document", "families_overview", "family_listing", "parse_accept", "version"]

_BACKENDS = {"sqlite": "embedded", "nats": "nats-jetstream", "kafka": "kafka"}


@functools.cache
def version() -> str:
    try:
        return metadata.version("ai-memory-es")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def parse_accept(text: str | None) -> str:
    """``v1``/``1`` and ``v2``/``2`` pin an older shape; anything else (or nothing) is v3, as in the original."""
    value = (text or "").strip().lower()
    return {"v1": "v1", "1": "v1", "v2": "v2", "2": "v2"}.get(value, "v3")


def _planned(version_label: str) -> dict[str, Any]:
    return {"planned": True, "version": version_label, "enabled": False}


def _features(embedder: bool, llm: bool) -> dict[str, Any]:
    return {"keyword_search": True, "semantic_search": embedder, "hybrid_recall": embedder, "query_expansion": llm,
            "auto_consolidation": False, "auto_tagging": llm, "contradiction_analysis": llm,
            "cross_encoder_reranking": False, "memory_reflection": _planned("v0.7+"), "embedder_loaded": embedder,
            "recall_mode_active": "hybrid" if embedder else "disabled", "reranker_active": "off"}


def _models(node: Node, embedder: bool, llm: LlmClient | None) -> dict[str, Any]:
    """The embedding model and dimension in use (the original names MiniLM by its hub id, and so do we every
    local model), and where it runs: ``cpu``, ``cuda`` or ``remote`` (an embedding service)."""
    status = node.semantic.status()
    local = {m.name: m.hub_id for m in LOCAL_MODELS}
    name = local.get(status.model, status.model) if status.model else status.model
    return {"embedding": name if embedder and name else "none", "embedding_dim": status.dim if embedder else 0,
            "embedding_device": status.device if embedder else "none", "llm": llm.config.model if llm else "none",
            "cross_encoder": "none"}


def _tier(embedder: bool, llm: bool) -> str:
    return "smart" if embedder and llm else "semantic" if embedder else "keyword"


async def _event_sourced(node: Node) -> dict[str, Any]:
    url = redact_url(node.log.url)
    end = await node.log.end_offsets()
    applied = node.runner.position
    lag = {p: max(0, o - applied.get(p, 0)) for p, o in end.items()}
    return {"node_id": node.key.key_id,
            "log": {"backend": _BACKENDS.get(url.split(":", 1)[0], url.split(":", 1)[0]), "url": url,
                    "end_offsets": end},
            "projector": {"offsets": applied, "lag": lag, "lag_total": sum(lag.values()),
                          "applied_events": node.model.applied_count(),
                          "rejected_events": node.model.rejected_count()},
            "unavailable_tools": dict(MISSING)}


def _embedder_ready(node: Node) -> bool:
    """Whether semantic recall can run now (issue #3): an embedder is configured AND its model loaded."""
    semantic = getattr(node, "semantic", None)
    status = getattr(semantic, "status", None)
    return bool(status().ready) if callable(status) else semantic is not None


def _permissions(node: Node) -> dict[str, Any]:
    """The governance mode, how many namespaces have a policy (``active_rules``) and the decisions this
    process's gate has taken per mode (``decision_counts``, as the original's, since process start)."""
    gate = node.governance.gate
    policies = sum(1 for meta in node.model.governance.standards() if gate.standard_policy(meta.namespace)[0])
    return {"mode": gate.config.mode, "active_rules": policies, "inheritance": True,
            "decision_counts": dict(gate.decision_counts)}


def _v2(node: Node, llm: LlmClient | None) -> dict[str, Any]:
    embedder = _embedder_ready(node)
    return {"schema_version": "2", "tier": _tier(embedder, llm is not None), "version": version(),
            "features": _features(embedder, llm is not None), "models": _models(node, embedder, llm),
            "permissions": _permissions(node),
            "hooks": {"registered_count": len(node.model.subscriptions.owned(created_by=None)),
                      "webhook_events": list(FIRED_EVENT_TYPES)},
            "compaction": _planned("v0.8+"),
            "approval": {"pending_requests": node.model.governance.count_pending("pending")},
            "transcripts": _planned("v0.7+"), "hnsw": {"evictions_total": 0, "evicted_recently": False}}


def _v1(v2: dict[str, Any]) -> dict[str, Any]:
    features = {k: v for k, v in v2["features"].items()
                if k not in ("recall_mode_active", "reranker_active", "memory_reflection")}
    features["memory_reflection"] = v2["features"]["memory_reflection"]["enabled"]
    return {"tier": v2["tier"], "version": v2["version"], "features": features, "models": v2["models"]}


def _tool_entries(profile: Profile) -> list[dict[str, Any]]:
    return [{"name": name, "family": family, "loaded": profile.includes(family),
             "callable_now": profile.includes(family) or name in ALWAYS_ON_TOOLS}
            for family in FAMILIES for name in FAMILY_TOOLS[family]]


def _summary(profile: Profile) -> str:
    visible = len(profile.tool_names())
    total = sum(len(t) for t in FAMILY_TOOLS.values())
    return (f"{visible} of {total} tools are advertised in tools/list under the current profile ({profile.label}). "
            f"The other {total - visible} are listed in this manifest but NOT directly callable. To use any "
            "unloaded tool, choose one of: (a) restart the server with --profile <family> or --profile full, "
            "(b) call memory_load_family(family=<name>) \u2014 preferred, (c) call "
            "memory_smart_load(intent='<plain language>') \u2014 easiest, (d) call the tool by name and recover "
            "from JSON-RPC -32601.")


def _describe(profile: Profile) -> str:
    def names(loaded: bool) -> list[str]:
        return [n for f in FAMILIES if profile.includes(f) == loaded for n in FAMILY_TOOLS[f]
                if n not in ALWAYS_ON_TOOLS]

    loaded, unloaded = names(True), names(False)
    preview = ", ".join(n.removeprefix("memory_") for n in loaded[:5]) + (", ..." if len(loaded) > 5 else "")
    if not unloaded:
        return (f"I can directly use all {len(loaded)} memory tools right now ({preview}). Nothing more to load "
                "\u2014 the full memory surface is already active.")
    more = ", ".join(n.removeprefix("memory_") for n in unloaded[:4])
    plural = "" if len(loaded) == 1 else "s"
    return (f"I can directly use {len(loaded)} memory tool{plural} right now ({preview}). {len(unloaded)} more "
            f"({more}, etc.) are available on demand \u2014 I can load them if you ask for something that needs "
            "them, or you can restart the server with a different profile.")


async def document(node: Node, profile: Profile, *, accept: str, identity: ClientIdentity | None = None,
                   llm: LlmClient | None = None) -> dict[str, Any]:
    """The capabilities document in the ``accept`` shape (``v1``, ``v2`` or ``v3``), plus ``event_sourced``."""
    v2 = _v2(node, llm)
    if accept == "v1":
        return {**_v1(v2), "event_sourced": await _event_sourced(node)}
    out = v2
    if accept == "v3":
        out = {"schema_version": "3", "summary": _summary(profile), "to_describe_to_user": _describe(profile),
               "tools": _tool_entries(profile), **{k: v for k, v in v2.items() if k != "schema_version"}}
        deferred = identity.deferred_registration if identity is not None else None
        if deferred is not None:
            out["your_harness_supports_deferred_registration"] = deferred
    out["event_sourced"] = await _event_sourced(node)
    return out


def families_overview(profile: Profile) -> dict[str, Any]:
    names = [t["name"] for t in all_tools()]
    families = [{"name": f, "tool_count": len(tools), "loaded": profile.includes(f), "tools": tools}
                for f in FAMILIES for tools in [[n for n in names if family_of(n) == f]]]
    return {"schema_version": "v0.6.4-families-1", "always_on": list(ALWAYS_ON_TOOLS), "families": families}


def family_listing(family: str, *, include_schema: bool, verbose: bool, profile: Profile) -> dict[str, Any]:
    """One family's tool names, or (``include_schema``) its definitions, trimmed unless ``verbose``."""
    if not family:
        raise ValidationError("memory_capabilities: 'family' must not be empty")
    if family not in FAMILIES:
        raise ValidationError(f"unknown family '{family}'. Valid families: {', '.join(FAMILIES)}.")
    tools = [trim_tool(t, verbose=verbose) for t in all_tools() if family_of(t["name"]) == family]
    loaded = profile.includes(family)
    if include_schema:
        return {"schema_version": "v0.6.4-family-schemas-1", "family": family, "loaded_under_active_profile": loaded,
                "verbose": verbose, "tools": tools}
    return {"schema_version": "v0.6.4-family-list-1", "family": family, "loaded_under_active_profile": loaded,
            "tools": [t["name"] for t in tools]}
