"""The original's two prompts: ``recall-first`` (a system prompt of eight rules) and ``memory-workflow``
(a quick-reference card). Texts are verbatim so agents tuned on the original read the same instructions."""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError

__all__ = ["PROMPTS", "prompt_text"]

PROMPTS: list[dict[str, Any]] = [
    {"name": "recall-first",
     "description": "System prompt for AI clients: proactive memory recall, TOON format, tier strategy.",
     "arguments": [{"name": "namespace", "description": "Optional namespace to scope recall.", "required": False}]},
    {"name": "memory-workflow", "description": "Quick reference card for memory tool usage patterns."},
]

_RECALL_FIRST = (
    "You have access to a persistent memory system (ai-memory). Follow these rules:\n"
    "1. RECALL FIRST: At conversation start, call memory_recall with the user's apparent topic. Before answering "
    "any question about prior work, recall first.\n"
    "2. STORE LEARNINGS: When the user corrects you or teaches something, call memory_store with tier:long, "
    "priority:9.\n"
    "3. TOON FORMAT: All recall/list/search responses default to TOON compact (79% smaller than JSON). Pass "
    "format:\"json\" only if you need structured parsing.\n"
    "4. TIERS: short=6h ephemeral, mid=7d working knowledge, long=permanent. Mid auto-promotes to long at 5 "
    "accesses.\n"
    "5. DEDUP: Storing with an existing title+namespace updates the existing memory, not a duplicate.\n"
    "6. NAMESPACES: Organize by project/topic. Always pass namespace when storing and recalling.\n"
    "7. CAPABILITIES: Call memory_capabilities once per session to discover available features (tier-dependent).\n"
    "8. TAGS: Use tags for cross-cutting concerns. memory_auto_tag can generate them if available.")

_WORKFLOW = (
    "STORE: memory_store(title, content, tier, namespace, tags, priority) \u2014 dedup by title+ns\n"
    "RECALL: memory_recall(context, namespace) \u2192 ranked results (TOON compact default)\n"
    "SEARCH: memory_search(query, namespace) \u2192 exact AND match (TOON compact default)\n"
    "LIST: memory_list(namespace, tier) \u2192 browse with filters (TOON compact default)\n"
    "GET: memory_get(id) \u2192 single memory with links\n"
    "PROMOTE: memory_promote(id) \u2014 mid\u2192long, clears expiry\n"
    "CONSOLIDATE: memory_consolidate(ids, title) \u2014 merge N\u21921, LLM summary if available\n"
    "LINK: memory_link(source_id, target_id, relation) \u2014 related_to|supersedes|contradicts|derived_from\n"
    "TAG: memory_auto_tag(id) \u2014 LLM generates tags (smart+ tier)\n"
    "EXPAND: memory_expand_query(query) \u2014 LLM broadens search terms (smart+ tier)\n"
    "CONTRADICT: memory_detect_contradiction(id_a, id_b) \u2014 LLM checks conflict (smart+ tier)")


def prompt_text(name: str, arguments: dict[str, str] | None) -> str:
    """The text of prompt ``name``; an unknown name is the original's ``unknown prompt: <name>``."""
    if name == "recall-first":
        namespace = (arguments or {}).get("namespace")
        hint = f" Scope recall to namespace \"{namespace}\" when relevant." if namespace else ""
        return _RECALL_FIRST + hint
    if name == "memory-workflow":
        return _WORKFLOW
    raise ValidationError(f"unknown prompt: {name}")
