"""The tool catalog, its eight families, and the profiles that decide which tools ``tools/list`` advertises.

``catalog.json`` holds the original's 74 tool definitions: the 51 of v0.6 verbatim (names, parameters, defaults,
limits, short ``description`` and long ``docs``, ported from its ``mcp.rs``, Apache-2.0), and the 23 added in
v0.7.0 with their ``description`` and ``docs`` verbatim and schemas derived from their request structs (field
names, JSON types, required fields, field docs), so that a client written for the original sees the same tools
here. Everything else in this module is pure: no I/O beyond reading that file.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "ALWAYS_ON_TOOLS",
    "FAMILIES",
    "FAMILY_TOOLS",
    "PROFILE_NAMES",
    "TOOLS_VERSION",
    "Profile",
    "ProfileError",
    "all_tools",
    "family_of",
    "tools_for_profile",
    "trim_tool",
    "unloaded_hint",
]

TOOLS_VERSION = "2026-05-06"
FAMILIES: tuple[str, ...] = ("core", "lifecycle", "graph", "governance", "power", "meta", "archive", "other")
ALWAYS_ON_TOOLS: tuple[str, ...] = ("memory_capabilities",)
# Optional parameters that survive the default trim: they route (namespace) and size (format) the answer.
_KEEP_OPTIONAL = ("namespace", "format")
PROFILE_NAMES: tuple[str, ...] = ("core", "graph", "admin", "power", "full")

FAMILY_TOOLS: dict[str, tuple[str, ...]] = {
    "core": ("memory_store", "memory_recall", "memory_list", "memory_get", "memory_search", "memory_load_family",
             "memory_smart_load"),
    "lifecycle": ("memory_update", "memory_delete", "memory_forget", "memory_gc", "memory_promote",
                  "memory_capture_turn"),
    "graph": ("memory_kg_query", "memory_kg_timeline", "memory_kg_invalidate", "memory_link", "memory_get_links",
              "memory_entity_register", "memory_entity_get_by_alias", "memory_get_taxonomy", "memory_replay",
              "memory_verify", "memory_find_paths"),
    "governance": ("memory_pending_list", "memory_pending_approve", "memory_pending_reject",
                   "memory_namespace_set_standard", "memory_namespace_get_standard",
                   "memory_namespace_clear_standard", "memory_subscribe", "memory_unsubscribe"),
    "power": ("memory_consolidate", "memory_detect_contradiction", "memory_check_duplicate", "memory_auto_tag",
              "memory_expand_query", "memory_inbox", "memory_subscription_replay", "memory_subscription_dlq_list",
              "memory_quota_status", "memory_reflect", "memory_reflection_origin", "memory_dependents_of_invalidated",
              "memory_check_agent_action", "memory_rule_list", "memory_export_reflection", "memory_offload",
              "memory_deref", "memory_atomise", "memory_persona", "memory_persona_generate",
              "memory_ingest_multistep", "memory_calibrate_confidence", "memory_share"),
    "meta": ("memory_capabilities", "memory_agent_register", "memory_agent_list", "memory_session_start",
             "memory_stats", "memory_recall_observations"),
    "archive": ("memory_archive_list", "memory_archive_purge", "memory_archive_restore", "memory_archive_stats"),
    "other": ("memory_list_subscriptions", "memory_notify", "memory_skill_register", "memory_skill_list",
              "memory_skill_get", "memory_skill_resource", "memory_skill_export",
              "memory_skill_promote_from_reflection", "memory_skill_compositional_context"),
}
_FAMILY_OF = {tool: family for family, tools in FAMILY_TOOLS.items() for tool in tools}
_PRESETS: dict[str, tuple[str, ...]] = {
    "core": ("core",), "graph": ("core", "graph"), "admin": ("core", "lifecycle", "governance"),
    "power": ("core", "power"), "full": FAMILIES,
}


class ProfileError(ValueError):
    """An unknown profile or family name (the message is the original's)."""


def family_of(tool: str) -> str | None:
    return _FAMILY_OF.get(tool)


@dataclass(frozen=True)
class Profile:
    """The families a server loads. ``memory_capabilities`` is callable under every profile."""

    families: tuple[str, ...] = ("core",)

    @classmethod
    def parse(cls, text: str | None) -> Profile:
        """``core | graph | admin | power | full`` or a comma list of those and family names; core is always in."""
        value = (text or "").strip()
        if any(c.isascii() and c.isupper() for c in value):
            msg = (f"profile '{value}' contains uppercase letters; profile vocabulary is case-sensitive lowercase "
                   "(e.g. 'core', not 'Core')")
            raise ProfileError(msg)
        chosen: set[str] = {"core"}
        for token in (t.strip() for t in value.split(",")):
            if not token:
                continue
            if token in _PRESETS:
                chosen.update(_PRESETS[token])
            elif token in FAMILIES:
                chosen.add(token)
            else:
                msg = (f"unknown profile or family '{token}'. Valid profiles: {', '.join(PROFILE_NAMES)}. "
                       f"Valid families: {', '.join(FAMILIES)}.")
                raise ProfileError(msg)
        return cls(tuple(f for f in FAMILIES if f in chosen))

    @property
    def label(self) -> str:
        for name, families in _PRESETS.items():
            if set(families) == set(self.families):
                return name
        return ",".join(self.families)

    def includes(self, family: str) -> bool:
        return family in self.families

    def loads(self, tool: str) -> bool:
        if tool in ALWAYS_ON_TOOLS:
            return True
        family = _FAMILY_OF.get(tool)
        return family is not None and family in self.families

    def tool_names(self) -> list[str]:
        return [t["name"] for t in all_tools() if self.loads(t["name"])]


@functools.cache
def _catalog() -> dict[str, Any]:
    text = resources.files("producers.tools").joinpath("catalog.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def all_tools() -> list[dict[str, Any]]:
    """Every tool definition, full (with ``docs`` and every parameter), in the original's order. A fresh copy."""
    tools: list[dict[str, Any]] = copy.deepcopy(_catalog()["tools"])
    return tools


def _strip_descriptions(properties: dict[str, Any]) -> None:
    for prop in properties.values():
        if isinstance(prop, dict):
            prop.pop("description", None)
            nested = prop.get("properties")
            if isinstance(nested, dict):
                for value in nested.values():
                    if isinstance(value, dict):
                        value.pop("description", None)


def trim_tool(tool: dict[str, Any], *, verbose: bool) -> dict[str, Any]:
    """The advertised shape: no ``docs`` and no per-parameter descriptions; unless ``verbose``, only the
    required parameters plus ``namespace`` and ``format`` (the original's C2 and C4 trims)."""
    out = copy.deepcopy(tool)
    if verbose:
        return out
    out.pop("docs", None)
    schema = out.get("inputSchema", {})
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = set(schema.get("required", []))
        for name in [n for n in properties if n not in required and n not in _KEEP_OPTIONAL]:
            del properties[name]
        _strip_descriptions(properties)
    return out


def tools_for_profile(profile: Profile) -> list[dict[str, Any]]:
    """What ``tools/list`` returns: the loaded tools, trimmed."""
    return [trim_tool(t, verbose=False) for t in all_tools() if profile.loads(t["name"])]


def unloaded_hint(tool: str) -> str:
    """The -32601 message for a tool that is not callable under the active profile."""
    family = _FAMILY_OF.get(tool)
    if family is None:
        return f"tool '{tool}' is not registered in this build. Call `memory_capabilities` to see available tools."
    return (f"tool '{tool}' is in family '{family}' which is not loaded under the active profile. Restart with "
            f"`--profile <name>` or `--profile core,{family}` to load it, or call `memory_capabilities "
            f"--include-schema family={family}` to expand at runtime.")
