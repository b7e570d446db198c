"""How refused writes and transient failures reach the caller: a 409 always has a ``code``, a transient
failure is a 503 with ``Retry-After``, and the projector's refusal reasons round-trip to the writer."""

from __future__ import annotations

from infra.log import AppendConflictError, LogUnavailableError
from producers.errors import ConflictError, QuotaExceededError, reply_for
from producers.write.outcomes import refusal_error
from projectors.rules import clash_id, over_link_quota, over_quota, quota_figures, title_clash, versioned_titles


def test_transient_failures_are_503_with_retry_after() -> None:
    for exc in (AppendConflictError("s", 1, 2), LogUnavailableError("no leader")):
        reply = reply_for(exc)
        assert reply.status == 503 and reply.headers.get("Retry-After") == "1", exc
        assert "error" in reply.body


def test_every_conflict_has_a_code() -> None:
    assert reply_for(ConflictError("taken")).body == {"code": "CONFLICT", "error": "taken"}
    assert reply_for(ConflictError("taken", existing_id="m1")).body["existing_id"] == "m1"


def test_refusal_reasons_round_trip() -> None:
    clash = str(title_clash("a (memory x) title", "ns", "0f6a-1"))
    assert clash_id(clash) == "0f6a-1"
    error = refusal_error(clash, agent_id="a", clash_message="memory with title 'a' already exists")
    assert isinstance(error, ConflictError) and error.existing_id == "0f6a-1" and "already exists" in str(error)
    quota = str(over_quota("bob", 12, 12))
    assert quota_figures(quota) == ("memories_per_day", 12, 12) and clash_id(quota) is None
    error = refusal_error(quota, agent_id="bob")
    assert isinstance(error, QuotaExceededError) and error.body()["code"] == "QUOTA_EXCEEDED"
    links = refusal_error(str(over_link_quota("bob", 3, 3)), agent_id="bob")
    assert isinstance(links, QuotaExceededError)
    assert (links.limit, links.current, links.maximum) == ("links_per_day", 3, 3)
    other = refusal_error("memory m does not exist", agent_id="a")
    assert isinstance(other, ConflictError) and other.body()["code"] == "CONFLICT"


def test_versioned_titles_start_at_two() -> None:
    titles = list(versioned_titles("t"))
    assert titles[:2] == ["t (2)", "t (3)"] and len(titles) == 1023
