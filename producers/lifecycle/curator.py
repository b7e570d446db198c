"""One cycle of the original's curator (its ``curator::run_once``): auto-tags and contradiction flags by the LLM.

Candidates are the mid- and long-tier memories (up to 4 times ``max_ops`` a tier); eligible are those outside
``_``-namespaces, within the include/exclude lists, with 50 characters of content or more and no
``metadata.auto_tags`` yet. For each (up to ``max_ops``) the LLM's tags (at most 8) go to ``metadata.auto_tags``
with ``curated_at``, and when the LLM says the memory contradicts the first other memory of its namespace (with 50
characters or more), that memory's id joins ``metadata.confirmed_contradictions``. Every change is a
``memory.updated`` event by the curator's agent id; ``dry_run`` counts without writing. Without an LLM the cycle
reports ``no LLM client configured``, as the original's.

Not here: the original's autonomy passes (LLM consolidation, forgetting, priority tuning, with its own rollback
log) and persona sweep; their counters stay zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from producers.errors import CommandError
from producers.input.commands import parse_list_query, parse_update
from schemas import now_ts

if TYPE_CHECKING:
    from producers.llm.client import LlmClient
    from producers.runtime.node import Node
    from schemas import Memory

__all__ = ["CuratorConfig", "needs_curation", "run_once"]

MIN_CONTENT_LEN = 50
MAX_AUTO_TAGS = 8
_NEIGHBOURS = 8


@dataclass(frozen=True)
class CuratorConfig:
    max_ops: int = 100
    dry_run: bool = False
    include_namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()


def needs_curation(memory: Memory, cfg: CuratorConfig) -> bool:
    if memory.namespace.startswith("_") or memory.namespace in cfg.exclude_namespaces:
        return False
    if cfg.include_namespaces and memory.namespace not in cfg.include_namespaces:
        return False
    # The original compares the content's length in bytes.
    return len(memory.content.encode()) >= MIN_CONTENT_LEN and not memory.metadata.get("auto_tags")


@dataclass
class _Report:
    dry_run: bool
    started_at: str = field(default_factory=now_ts)
    memories_scanned: int = 0
    memories_eligible: int = 0
    auto_tagged: int = 0
    contradictions_found: int = 0
    operations_attempted: int = 0
    operations_skipped_cap: int = 0
    errors: list[str] = field(default_factory=list)

    def done(self, started: float) -> dict[str, Any]:
        autonomy = {"clusters_formed": 0, "memories_consolidated": 0, "memories_forgotten": 0,
                    "priority_adjustments": 0, "rollback_entries_written": 0, "errors": []}
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return {**self.__dict__, "completed_at": now_ts(), "cycle_duration_ms": elapsed_ms, "autonomy": autonomy,
                "personas_generated": 0}


async def _candidates(node: Node, cfg: CuratorConfig, report: _Report) -> list[Memory]:
    cap = cfg.max_ops * 4
    out: list[Memory] = []
    for tier in ("mid", "long"):
        batch = await node.service.list_memories(parse_list_query({"tier": tier, "limit": cap}, max_limit=cap))
        if len(batch) >= cap:
            report.errors.append(f"collect_candidates truncated at cap={cap} per tier; consider raising "
                                 "max_ops_per_cycle or paginating across cycles")
        out += batch
    return out


async def _neighbour(node: Node, memory: Memory) -> Memory | None:
    batch = await node.service.list_memories(parse_list_query({"namespace": memory.namespace,
                                                               "limit": _NEIGHBOURS}))
    return next((m for m in batch if m.id != memory.id and len(m.content.encode()) >= MIN_CONTENT_LEN), None)


async def _annotate(node: Node, memory: Memory, extra: dict[str, Any], agent: str) -> None:
    # Read again: an earlier step of this cycle may have annotated it already.
    current = await node.service.resolve(memory.id)
    await node.service.update(memory.id, parse_update({"metadata": {**current.metadata, **extra}}), agent_id=agent)


async def _curate(node: Node, llm: LlmClient, memory: Memory, cfg: CuratorConfig, agent: str,
                  report: _Report) -> None:
    try:
        tags = (await llm.auto_tag(memory.title, memory.content))[:MAX_AUTO_TAGS]
        if tags:
            if not cfg.dry_run:
                await _annotate(node, memory, {"auto_tags": tags, "curated_at": now_ts()}, agent)
            report.auto_tagged += 1
    except CommandError as exc:
        report.errors.append(f"auto_tag failed for {memory.id}: {exc}")
        return
    sibling = await _neighbour(node, memory)
    if sibling is None:
        return
    try:
        if not await llm.detect_contradiction(memory.content, sibling.content):
            return
        if not cfg.dry_run:
            known = (await node.service.resolve(memory.id)).metadata.get("confirmed_contradictions") or []
            await _annotate(node, memory, {"confirmed_contradictions": [*known, sibling.id]
                                           if sibling.id not in known else known}, agent)
        report.contradictions_found += 1
    except CommandError as exc:
        report.errors.append(f"detect_contradiction failed ({memory.id} vs {sibling.id}): {exc}")


async def run_once(node: Node, llm: LlmClient | None, cfg: CuratorConfig, *, agent: str) -> dict[str, Any]:
    """One cycle; the original's ``CuratorReport``."""
    started, report = time.monotonic(), _Report(cfg.dry_run)
    candidates = await _candidates(node, cfg, report)
    eligible = [m for m in candidates if needs_curation(m, cfg)]
    report.memories_scanned, report.memories_eligible = len(candidates), len(eligible)
    if llm is None:
        report.errors.append("no LLM client configured")
        return report.done(started)
    for memory in eligible:
        if report.operations_attempted >= cfg.max_ops:
            report.operations_skipped_cap += 1
            continue
        report.operations_attempted += 1
        await _curate(node, llm, memory, cfg, agent, report)
    return report.done(started)
