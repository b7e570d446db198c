"""Who may read what, decided in one place for every read path (HTTP, MCP, CLI, webhooks, sync).

Three rules, applied together by :class:`Reader` (and by the read models' SQL through :class:`MemoryFilter`,
which carries the same three fields; :func:`projectors.row_visible` is the rule for one row):

- **Scope** (``as_agent``, the original's rule): with ``as_agent``, a memory is seen by its scope's reach.
- **Mandatory ``as_agent``** (the operator's, beyond the original): without ``as_agent``, a read that *names* a
  namespace under a prefix where it is mandatory is refused (:class:`AsAgentRequiredError`, 403), and a read that
  spans namespaces leaves those subtrees out.
- **Owner** (the original's v0.7.0 #910): a caller known by ``X-Agent-Id`` does not see other agents' private
  memories (scope ``private`` or unset), except messages in its own inbox. The surface boundary names the caller
  once per request (:func:`reading_as`); every :class:`Reader` resolved during the request carries it. An HTTP
  caller without ``X-Agent-Id`` reads, as the original's, as a fresh ``anonymous:req-…`` agent that owns nothing
  (unless the operator sets ``AI_MEMORY_ANONYMOUS_READS=all``); its search and recall (``ranked`` reads) also take
  that id as ``as_agent``, as the original's SQLite paths do, which leaves only ``collective`` memories.

A memory the caller may not see answers 404, as if it did not exist; anything derived from it (a link, a graph
node, a count, an id in an error, a webhook event) is left out the same way.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

from producers.errors import CommandError, NotFoundError
from projectors import AmbiguousIdError, IdentityQueries, MemoryFilter, NodeRow, may_see, row_visible, under_any
from schemas import Memory

__all__ = ["AMBIGUOUS_LISTED", "ANONYMOUS_READS_ENV", "AsAgentRequiredError", "Reader", "Visibility",
           "anonymous_reader", "anonymous_reads_hidden", "current_caller", "is_anonymous", "reading_as",
           "visible_page"]

T = TypeVar("T")
#: How many matches the read models list for an ambiguous id prefix (at most).
AMBIGUOUS_LISTED = 21

_caller: ContextVar[str | None] = ContextVar("ai_memory_reader", default=None)
#: ``private-hidden`` (the default, the original v0.7.0's #910): an HTTP read without ``X-Agent-Id`` sees no
#: private memories; ``all``: it is not filtered by author (before v0.7.0; a trusted single-user setup).
ANONYMOUS_READS_ENV = "AI_MEMORY_ANONYMOUS_READS"
_ANONYMOUS_PREFIX = "anonymous:req-"


def anonymous_reads_hidden() -> bool:
    """Whether anonymous HTTP reads follow the original v0.7.0's rule (``private-hidden``, the default); the
    operator's opt-out ``all`` keeps them unfiltered by author.

    Raises:
        ValueError: the variable has another value.
    """
    value = os.environ.get(ANONYMOUS_READS_ENV, "private-hidden").strip() or "private-hidden"
    if value not in ("all", "private-hidden"):
        msg = f"{ANONYMOUS_READS_ENV} must be 'all' or 'private-hidden', not {value!r}"
        raise ValueError(msg)
    return value == "private-hidden"


def anonymous_reader() -> str:
    """A reader id that owns nothing and has no inbox: the original's per-request ``anonymous:req-…`` id."""
    return f"{_ANONYMOUS_PREFIX}{uuid.uuid4().hex[:12]}"


def is_anonymous(caller: str | None) -> bool:
    """Whether ``caller`` is an :func:`anonymous_reader` id (a client claiming such an id reads as one, as in
    the original, whose search takes the caller's id as ``as_agent`` whatever it is)."""
    return caller is not None and caller.startswith(_ANONYMOUS_PREFIX)


def current_caller() -> str | None:
    """The agent this request reads as (``X-Agent-Id``), or None (an anonymous or operator read)."""
    return _caller.get()


@contextlib.contextmanager
def reading_as(caller: str | None) -> Iterator[None]:
    """Name the reading agent for the rest of the request (the surface boundary calls this once)."""
    token = _caller.set(caller or None)
    try:
        yield
    finally:
        _caller.reset(token)


class AsAgentRequiredError(CommandError):
    """403, exit 5: the namespace needs ``as_agent`` on reads (an operator's requirement)."""

    status = 403
    exit_code = 5

    def __init__(self, namespace: str, prefix: str) -> None:
        self.namespace = namespace
        self.prefix = prefix
        super().__init__(f"as_agent is required to read namespace '{namespace}' (the operator requires it "
                         f"under '{prefix}')")


@dataclass(frozen=True, slots=True)
class Reader:
    """One reader, resolved: its ``as_agent``, the agent it reads as (``caller``) and the subtrees left out
    (``hidden``). ``Reader()`` sees everything (the node's own work: GC, rebuilds, peer sync)."""

    as_agent: str | None = None
    caller: str | None = None
    hidden: tuple[str, ...] = ()

    @classmethod
    def of(cls, flt: MemoryFilter) -> Reader:
        """The reader ``flt`` was narrowed for (see :meth:`filter`)."""
        return cls(flt.as_agent, flt.caller, flt.hidden_prefixes)

    @property
    def unfiltered(self) -> bool:
        return self.as_agent is None and self.caller is None and not self.hidden

    def filter(self, flt: MemoryFilter) -> MemoryFilter:
        """``flt`` narrowed to what this reader sees (the read models apply it in SQL)."""
        return replace(flt, as_agent=self.as_agent, caller=self.caller, hidden_prefixes=self.hidden)

    def sees(self, memory: Memory) -> bool:
        return may_see(memory, self.as_agent, self.hidden, self.caller)

    def sees_row(self, namespace: str, scope: str, owner: str | None) -> bool:
        """What is known of a memory without reading it: a count, a graph node, a webhook event."""
        return row_visible(namespace, scope, owner, as_agent=self.as_agent, hidden_prefixes=self.hidden,
                           caller=self.caller)

    def sees_node(self, node: NodeRow) -> bool:
        return self.sees_row(node.namespace, node.scope, node.agent_id)

    def visible(self, memories: Iterable[Memory]) -> list[Memory]:
        return [m for m in memories if self.sees(m)]

    def check(self, memory: Memory) -> Memory:
        """``memory`` if this reader sees it.

        Raises:
            NotFoundError: it does not.
        """
        if not self.sees(memory):
            raise NotFoundError()
        return memory


def visible_page(fetch: Callable[[int, int], Sequence[T]], keep: Callable[[T], bool], *, limit: int, offset: int,
                 batch: int = 500) -> list[T]:
    """``limit`` items after ``offset`` of those ``keep`` admits, from an ordered read that is not filtered
    in SQL (``fetch(limit, offset)``): offsets count visible items only, so paging reveals nothing."""
    out: list[T] = []
    skipped = position = 0
    while len(out) < limit:
        rows = fetch(batch, position)
        position += len(rows)
        for row in rows:
            if not keep(row):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(row)
            if len(out) == limit:
                break
        if len(rows) < batch:
            break
    return out


class Visibility:
    """Resolves readers against the operator's mandatory-``as_agent`` prefixes (an event-sourced setting)."""

    def __init__(self, identity: IdentityQueries) -> None:
        self._identity = identity

    def required_prefixes(self) -> list[str]:
        return self._identity.required_prefixes()

    @staticmethod
    def _refuse_named(named: Iterable[str], prefixes: Iterable[str]) -> None:
        for namespace in named:
            for prefix in prefixes:
                if under_any(namespace, (prefix,)):
                    raise AsAgentRequiredError(namespace, prefix)

    def reader(self, as_agent: str | None, *, named: Iterable[str] = (), caller: str | None = None,
               ranked: bool = False) -> Reader:
        """The reader of this request: ``as_agent``, the agent it reads as (``caller``, else the one
        :func:`reading_as` named) and, without ``as_agent``, the mandatory subtrees left out. A ``ranked`` read
        (search, recall) by an anonymous caller without ``as_agent`` also reads with the caller's id as
        ``as_agent``: the original's SQLite search and recall do, so only ``collective`` memories are left.

        Raises:
            AsAgentRequiredError: no ``as_agent`` and the read names a namespace where it is mandatory.
        """
        caller = caller or current_caller()
        if as_agent is not None:
            return Reader(as_agent, caller)
        prefixes = tuple(self.required_prefixes())
        self._refuse_named(named, prefixes)
        return Reader(caller if ranked and is_anonymous(caller) else None, caller, prefixes)

    def scoped(self, flt: MemoryFilter, *, ranked: bool = False) -> MemoryFilter:
        """``flt`` as the caller may run it (see :meth:`reader`)."""
        named = flt.namespaces or ((flt.namespace,) if flt.namespace is not None else ())
        # A recall anchored at a/b/c also reads a and a/b: only the anchor (the deepest) is what it names.
        return self.reader(flt.as_agent, named=named[-1:] if flt.namespaces else named, ranked=ranked).filter(flt)

    def check_namespace(self, namespace: str | None, as_agent: str | None) -> tuple[str, ...]:
        """For reads that are not a MemoryFilter (taxonomy, export, sync): refuse a named namespace under a
        mandatory prefix without ``as_agent``; return the prefixes to leave out."""
        return self.reader(as_agent, named=(namespace,) if namespace is not None else ()).hidden

    def check(self, memory: Memory, as_agent: str | None) -> Memory:
        """One memory read by id (get).

        Raises:
            AsAgentRequiredError: no ``as_agent`` and the memory lies where it is mandatory.
            NotFoundError: the memory is not visible to the reader.
        """
        return self.reader(as_agent, named=(memory.namespace,)).check(memory)

    def one_of(self, ambiguous: AmbiguousIdError, matches: Sequence[Memory], as_agent: str | None) -> Memory:
        """An id prefix several memories share: the one the reader sees, as if the others did not exist.

        Raises:
            AmbiguousIdError: the reader sees several (only those are listed).
            NotFoundError: it sees none.
        """
        visible = sorted(m.id for m in self.reader(as_agent).visible(matches))
        if not visible:
            raise NotFoundError()
        # The read model lists a bounded number of matches: one visible among a full list may not be the only one.
        if len(visible) > 1 or len(matches) >= AMBIGUOUS_LISTED:
            raise AmbiguousIdError(ambiguous.prefix, visible)
        return next(m for m in matches if m.id == visible[0])

    def namespace_counts(self, now: str, reader: Reader) -> list[tuple[str, int]]:
        """Live memories per namespace that ``reader`` may see (what the taxonomy is built from)."""
        counts: dict[str, int] = {}
        for row in self._identity.scope_counts(now):
            if reader.sees_row(row.namespace, row.scope, row.owner):
                counts[row.namespace] = counts.get(row.namespace, 0) + row.count
        return sorted(counts.items())
