"""Quotas are the operator's to set, from the environment of serve, mcp and the CLI."""

from __future__ import annotations

import pytest

from producers.governance.config import (
    DEFAULT_MAX_LINKS_PER_DAY,
    DEFAULT_MAX_MEMORIES_PER_DAY,
    DEFAULT_MAX_STORAGE_BYTES,
    GovernanceConfig,
)


def test_the_originals_defaults_without_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AI_MEMORY_MAX_MEMORIES_PER_DAY", "AI_MEMORY_MAX_LINKS_PER_DAY", "AI_MEMORY_MAX_STORAGE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    config = GovernanceConfig()
    assert (config.max_memories_per_day, config.max_links_per_day, config.max_storage_bytes) == (
        DEFAULT_MAX_MEMORIES_PER_DAY, DEFAULT_MAX_LINKS_PER_DAY, DEFAULT_MAX_STORAGE_BYTES)


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_MAX_MEMORIES_PER_DAY", "25000")
    monkeypatch.setenv("AI_MEMORY_MAX_LINKS_PER_DAY", " 7 ")
    monkeypatch.setenv("AI_MEMORY_MAX_STORAGE_BYTES", "1048576")
    config = GovernanceConfig()
    assert (config.max_memories_per_day, config.max_links_per_day, config.max_storage_bytes) == (25000, 7, 1048576)


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1e6", "3.5"])
def test_a_bad_limit_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AI_MEMORY_MAX_LINKS_PER_DAY", value)
    with pytest.raises(ValueError, match="AI_MEMORY_MAX_LINKS_PER_DAY must be a positive integer"):
        GovernanceConfig()
