"""The MCP surface's pure parts: catalog, families and profiles, trimming and its token budget, TOON, the
namespace taxonomy, the intent router, agent identity and the per-client ``on_conflict`` default."""

from __future__ import annotations

import json

import pytest

from producers.errors import ValidationError
from producers.mcp.toon import FIELDS, FIELDS_COMPACT, memories_to_toon, search_to_toon
from producers.tools import HANDLERS
from producers.tools.client import ClientIdentity, default_on_conflict, supports_deferred_registration
from producers.tools.core import route_intent
from producers.tools.graph import taxonomy
from producers.tools.registry import (
    FAMILY_TOOLS,
    TOOLS_VERSION,
    Profile,
    ProfileError,
    all_tools,
    tools_for_profile,
    trim_tool,
    unloaded_hint,
)
from projectors import count_tokens

# tools/list sizes per profile (the loaded families plus the always-on memory_capabilities).
PROFILE_SIZES = {"core": 8, "graph": 19, "admin": 22, "power": 31, "full": 74}


def test_catalog_has_the_originals_74_tools_each_with_a_handler_and_a_family() -> None:
    names = [t["name"] for t in all_tools()]
    assert len(names) == len(set(names)) == 74
    assert set(names) == set(HANDLERS)
    assert sorted(n for tools in FAMILY_TOOLS.values() for n in tools) == sorted(names)
    # The original's v0.7.0 families (src/profile.rs).
    assert {f: len(t) for f, t in FAMILY_TOOLS.items()} == {"core": 7, "lifecycle": 6, "graph": 11, "governance": 8,
                                                            "power": 23, "meta": 6, "archive": 4, "other": 9}


@pytest.mark.parametrize(("name", "size"), PROFILE_SIZES.items())
def test_profile_sizes(name: str, size: int) -> None:
    profile = Profile.parse(name)
    assert len(tools_for_profile(profile)) == size
    assert profile.loads("memory_capabilities") and profile.loads("memory_store")


def test_profile_parsing() -> None:
    assert Profile.parse(None) == Profile.parse("") == Profile.parse("core") == Profile(("core",))
    assert Profile.parse("graph,archive").families == ("core", "graph", "archive")
    assert Profile.parse("lifecycle").families == ("core", "lifecycle")
    assert Profile.parse("admin, power").label == "core,lifecycle,governance,power"
    assert Profile.parse("power,full").label == "full"
    with pytest.raises(ProfileError, match=r"unknown profile or family 'nope'\. Valid profiles: core, graph"):
        Profile.parse("core,nope")
    with pytest.raises(ProfileError, match="uppercase"):
        Profile.parse("Core")


def test_unloaded_hint_names_family_and_profile() -> None:
    assert "family 'graph'" in unloaded_hint("memory_kg_query") and "--profile core,graph" in unloaded_hint(
        "memory_kg_query")
    assert unloaded_hint("memory_nope").startswith("tool 'memory_nope' is not registered")


def test_trim_keeps_required_plus_namespace_and_format_and_drops_prose() -> None:
    recall = next(t for t in all_tools() if t["name"] == "memory_recall")
    trimmed = trim_tool(recall, verbose=False)
    assert "docs" not in trimmed and trimmed["description"] == recall["description"]
    assert list(trimmed["inputSchema"]["properties"]) == ["context", "namespace", "format"]
    assert all("description" not in p for p in trimmed["inputSchema"]["properties"].values())
    assert trim_tool(recall, verbose=True) == recall


def test_tools_list_token_budget() -> None:
    """The original's CI gate: the full profile's trimmed tools/list within 3500 cl100k tokens, each tool 1500."""
    full = {"tools": tools_for_profile(Profile.parse("full")), "toolsVersion": TOOLS_VERSION}
    assert count_tokens(json.dumps(full, separators=(",", ":"))) <= 3500
    assert max(count_tokens(json.dumps(t, separators=(",", ":"))) for t in all_tools()) <= 1500


def _memory(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "m1", "title": "Postgres: 16|17", "tier": "long", "namespace": "infra/db", "priority": 9,
        "confidence": 1.0, "score": 0.763, "access_count": 2, "tags": ["pg", "db"], "source": "claude",
        "created_at": "2026-04-03T15:00:00+00:00", "updated_at": "2026-04-03T15:00:00+00:00",
        "metadata": {"agent_id": "ai:x@h:pid-1", "b": True}}
    base.update(over)
    return base


def test_toon_compact_field_order_and_escaping() -> None:
    text = memories_to_toon({"count": 1, "mode": "keyword", "tokens_used": 4, "budget_tokens": 10,
                             "memories": [_memory(content="line1\nline2\\")]}, compact=True)
    lines = text.split("\n")
    assert lines[0] == "count:1|mode:keyword|tokens_used:4|budget_tokens:10"
    assert lines[1] == f"memories[{'|'.join(FIELDS_COMPACT)}]:"
    assert lines[2] == r"m1|Postgres\: 16\|17|long|infra/db|9|0.763|pg,db|ai\:x@h\:pid-1"
    assert text.endswith("\n")


def test_toon_full_fields_numbers_nulls_objects_and_standards() -> None:
    text = memories_to_toon({"count": 1, "standard": {"id": "s", "title": "T", "content": "a\r\nb"},
                             "memories": [_memory(title="t", score=None, confidence=1, metadata={})]}, compact=False)
    lines = text.split("\n")
    assert lines[1:3] == ["standards[id|title|content]:", r"s|T|a\r\nb"]
    assert lines[3] == f"memories[{'|'.join(FIELDS)}]:"
    row = lines[4].split("|")
    assert row[5] == "1" and row[6] == "" and row[-1] == ""
    obj = memories_to_toon({"memories": [_memory(metadata={"k": 1, "a": [True]})]}, compact=False)
    assert obj.split("\n")[1].endswith(r'{"a"\:[true],"k"\:1}')


def test_search_toon_reads_results() -> None:
    text = search_to_toon({"results": [_memory()], "count": 1}, compact=True)
    assert text.startswith("count:1\nmemories[") and "\nm1|" in text


def test_taxonomy_tree_counts_depth_and_truncation() -> None:
    counts = [("a", 2), ("a/b", 3), ("a/b/c", 4), ("x", 1)]
    tree = taxonomy(counts, "", 8, 1000)
    assert tree["total_count"] == 10 and not tree["truncated"]
    a = tree["tree"]["children"][0]
    assert (a["name"], a["count"], a["subtree_count"]) == ("a", 2, 9)
    assert a["children"][0]["children"][0]["namespace"] == "a/b/c"
    shallow = taxonomy(counts, "a", 1, 1000)["tree"]
    assert (shallow["count"], shallow["subtree_count"]) == (2, 9)
    assert shallow["children"][0] == {"namespace": "a/b", "name": "b", "count": 3, "subtree_count": 7,
                                      "children": []}
    truncated = taxonomy(counts, "", 8, 2)
    assert truncated["truncated"] and truncated["tree"]["subtree_count"] == 7


def test_intent_router() -> None:
    assert route_intent("debug a flaky test")[0] == "graph"
    assert route_intent("approve the pending review") == ("governance", 0.75, "keyword")
    assert route_intent("zzz qqq") == ("core", 0.0, "fallback")
    assert route_intent("") == ("core", 0.0, "fallback")


def test_agent_id_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_MEMORY_AGENT_ID", raising=False)
    monkeypatch.delenv("AI_MEMORY_ANONYMIZE", raising=False)
    client = ClientIdentity("Claude Desktop")
    assert client.agent_id("explicit-1") == "explicit-1"
    assert client.agent_id(None).startswith("ai:Claude-Desktop@")
    assert ClientIdentity().agent_id(None).startswith("host:")
    assert ClientIdentity().agent_id(None) == ClientIdentity().agent_id(None)  # stable for the process
    monkeypatch.setenv("AI_MEMORY_ANONYMIZE", "1")
    assert ClientIdentity().agent_id(None).startswith("anonymous:pid-")
    monkeypatch.setenv("AI_MEMORY_AGENT_ID", "env-agent")
    assert client.agent_id(None) == "env-agent"
    with pytest.raises(ValidationError, match="invalid character"):
        client.agent_id("bad id")


def test_on_conflict_default_per_client() -> None:
    assert default_on_conflict(None) == "merge"
    assert default_on_conflict("cursor") == "merge"
    assert default_on_conflict("claude-code") == "error"
    assert default_on_conflict("ai:claude-code@host:pid-1") == "error"
    assert default_on_conflict("ai:ai-memory-cli/v2") == "error"
    assert supports_deferred_registration("Claude Code") and not supports_deferred_registration("claude-ai")
