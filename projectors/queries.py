"""What a memory read model answers. Every backend (SQLite now, Postgres later) implements this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas import Memory, parse_ts

__all__ = ["AmbiguousIdError", "LexicalIndexStatus", "MemoryFilter", "MemoryQueries", "NamespaceCount",
           "ScoredMemory", "inbox_of", "julian_day", "may_see", "owner_sees", "row_visible", "under_any",
           "visibility_rule", "visible_to"]


class AmbiguousIdError(Exception):
    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = matches
        super().__init__(f"ambiguous ID prefix '{prefix}': {len(matches)} matches\n" + "\n".join(matches))


@dataclass(frozen=True, slots=True)
class MemoryFilter:
    """Filters shared by list, search and recall. Timestamps are RFC 3339 strings."""

    namespace: str | None = None
    namespaces: tuple[str, ...] | None = None
    tier: str | None = None
    min_priority: int | None = None
    since: str | None = None
    until: str | None = None
    tag: str | None = None
    agent_id: str | None = None
    as_agent: str | None = None
    now: str | None = None
    #: Namespace subtrees left out entirely: where an operator made ``as_agent`` mandatory and the caller gave none.
    hidden_prefixes: tuple[str, ...] = ()
    #: The reading agent (``X-Agent-Id``): other agents' private memories are left out (:func:`owner_sees`).
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class ScoredMemory:
    memory: Memory
    score: float


@dataclass(frozen=True, slots=True)
class NamespaceCount:
    namespace: str
    count: int


@dataclass(frozen=True, slots=True)
class Stats:
    total: int
    by_tier: list[dict[str, Any]]
    by_namespace: list[dict[str, Any]]
    expiring_soon: int
    db_size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LexicalIndexStatus:
    """Recall's in-memory lexical index (SQLite): ``off`` (none: another backend, or switched off), ``building``
    (FTS5 answers meanwhile), ``ready``, ``waiting`` (none yet and no build running: a bulk replay under way, or
    an in-memory database before its first recall) or ``failed`` (the last build failed; retried later)."""

    state: str
    memories: int
    bytes: int


def visibility_rule(as_agent: str) -> Callable[[str, str], bool]:
    """The original's scope rule for one agent, as ``visible(scope, namespace)``: collective is public; private
    only in the agent's own namespace; team, unit and org reach the agent's 1st, 2nd and 3rd ancestor namespace
    and everything under it. The ancestors are worked out once, so a filter over many rows stays cheap."""
    parts = as_agent.split("/")
    reach = {scope: "/".join(parts[:-level]) for level, scope in ((1, "team"), (2, "unit"), (3, "org"))
             if len(parts) > level}
    below = {scope: ancestor + "/" for scope, ancestor in reach.items()}

    def visible(scope: str, namespace: str) -> bool:
        if scope == "collective":
            return True
        if scope == "private":
            return namespace == as_agent
        ancestor = reach.get(scope)
        return ancestor is not None and (namespace == ancestor or namespace.startswith(below[scope]))

    return visible


def visible_to(scope: str, namespace: str, as_agent: str) -> bool:
    """Whether ``as_agent`` may see a memory of ``scope`` in ``namespace`` (see :func:`visibility_rule`)."""
    return visibility_rule(as_agent)(scope, namespace)


def under_any(namespace: str, prefixes: Iterable[str]) -> bool:
    """True when ``namespace`` is one of ``prefixes`` or below one of them."""
    return any(namespace == p or namespace.startswith(p + "/") for p in prefixes)


def inbox_of(agent_id: str) -> str:
    """The namespace of ``agent_id``'s messages (``_messages/<agent>``): its private rows are the recipient's too."""
    return f"_messages/{agent_id}"


def owner_sees(scope: str, namespace: str, owner: str | None, caller: str) -> bool:
    """The original's v0.7.0 rule (#910) for an identified reader: a private memory (``scope`` private or unset)
    is seen only by its author (``metadata.agent_id``) and, in an inbox, by the inbox's recipient."""
    return scope != "private" or (owner is not None and owner == caller) or namespace == inbox_of(caller)


def row_visible(namespace: str, scope: str, owner: str | None, *, as_agent: str | None,
                hidden_prefixes: Iterable[str] = (), caller: str | None = None) -> bool:
    """The whole read rule for one row (a memory, a graph node, a count), as the SQL filters apply it: outside
    the hidden subtrees, seen by ``as_agent``'s scope rule when given, and by the owner rule when ``caller`` is."""
    if under_any(namespace, hidden_prefixes):
        return False
    if caller is not None and not owner_sees(scope, namespace, owner, caller):
        return False
    return as_agent is None or visible_to(scope, namespace, as_agent)


def may_see(memory: Memory, as_agent: str | None, hidden_prefixes: Iterable[str] = (), caller: str | None = None
            ) -> bool:
    """:func:`row_visible` for one memory already read (get, export, sync)."""
    scope, owner = memory.metadata.get("scope"), memory.metadata.get("agent_id")
    return row_visible(memory.namespace, scope if isinstance(scope, str) else "private",
                       owner if isinstance(owner, str) else None, as_agent=as_agent,
                       hidden_prefixes=hidden_prefixes, caller=caller)


def julian_day(ts: str) -> float:
    """SQLite's julianday() of an RFC 3339 timestamp: the recency term of the keyword score counts days in it
    on every backend. Computed once per query instead of once per row."""
    return parse_ts(ts).timestamp() / 86400.0 + 2440587.5


class MemoryQueries(ABC):
    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing beyond the model's connection
        """Release what these queries hold of their own (the read model closes its connection itself)."""

    def lexical_index_status(self) -> LexicalIndexStatus:
        """The in-memory lexical index recall's lexical half ranks with, where the backend keeps one."""
        return LexicalIndexStatus("off", 0, 0)

    @abstractmethod
    def get(self, memory_id: str) -> Memory | None:
        """Exact id, else a unique id prefix; ``None`` if nothing matches.

        Raises:
            AmbiguousIdError: the prefix matches several memories.
        """

    @abstractmethod
    def get_many(self, ids: list[str]) -> list[Memory]: ...

    @abstractmethod
    def find_by_title(self, title: str, namespace: str) -> Memory | None: ...

    @abstractmethod
    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Memory]:
        """Unexpired memories, highest priority first, then most recently updated."""

    @abstractmethod
    def search(self, query: str, flt: MemoryFilter, *, limit: int) -> list[Memory]:
        """Keyword search: every token must match (AND), ranked by the original's composite score."""

    @abstractmethod
    def recall_keyword(self, context: str, flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        """Keyword recall: any token may match (OR), scored by the original's formula, best first."""

    @abstractmethod
    def recall_lexical(self, terms: list[str], flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        """The ``limit`` memories that match any of ``terms`` (each a phrase), best first, scored by keyword
        relevance alone, no static part (the lexical half of our ranking): bm25 on SQLite, ts_rank on Postgres,
        each divided by the most it can give the query, so about 0..1."""

    @abstractmethod
    def similar_titles(self, title: str, namespace: str, *, limit: int = 5) -> list[str]:
        """Ids of memories in ``namespace`` whose title shares words with ``title`` (possible contradictions)."""

    @abstractmethod
    def expired_ids(self, now: str, *, limit: int = 10_000) -> list[str]: ...

    @abstractmethod
    def forget_ids(self, *, namespace: str | None, pattern: str | None, tier: str | None) -> list[str]: ...

    @abstractmethod
    def namespaces(self, now: str) -> list[NamespaceCount]: ...

    @abstractmethod
    def stats(self, now: str, soon: str) -> Stats: ...

    @abstractmethod
    def export(self, now: str) -> list[Memory]: ...

    @abstractmethod
    def vectors(self, ids: list[str], *, model: str | None = None) -> dict[str, bytes]:
        """The stored embedding (little-endian float32 bytes) of each of ``ids`` that has one (by ``model``
        only, when given: vectors of two models are never compared)."""

    @abstractmethod
    def vector_count(self) -> int: ...

    @abstractmethod
    def get_filtered(self, ids: list[str], flt: MemoryFilter) -> list[Memory]:
        """The memories of ``ids`` that exist and pass ``flt`` (expiry, namespace, tag, dates, visibility), in the
        order of ``ids``: one read, where testing the filter and then reading the rows took two."""

    @abstractmethod
    def expiring_ids(self, now: str) -> list[str]:
        """Ids whose expiry is at or before ``now`` (usually none: recall runs GC first)."""

    @abstractmethod
    def embedding_sources(self, *, after_id: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        """``(id, title, content)`` of every memory in id order, a page at a time (for re-embedding)."""

    @abstractmethod
    def tombstoned(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` were deleted (they can never be stored or imported again)."""

    @abstractmethod
    def all_memories(self) -> list[Memory]:
        """Every row, expired or not, ordered by id (for comparing two read models)."""
