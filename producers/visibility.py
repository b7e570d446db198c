"""Who may read what: scope visibility (``as_agent``) and the operator's mandatory-``as_agent`` namespaces,
applied to every read path from one place.

Without ``as_agent`` the original filters nothing. Here an operator can make ``as_agent`` mandatory for a
namespace prefix; then a read without it that *names* a namespace in that subtree is refused
(:class:`AsAgentRequiredError`, 403), and a read that spans namespaces (no namespace, or another one) leaves
those subtrees out. A memory the caller may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from producers.errors import CommandError, NotFoundError
from projectors import IdentityQueries, MemoryFilter, may_see, under_any, visible_to
from schemas import Memory

__all__ = ["AsAgentRequiredError", "Visibility"]


class AsAgentRequiredError(CommandError):
    """403, exit 5: the namespace needs ``as_agent`` on reads (an operator's requirement)."""

    status = 403
    exit_code = 5

    def __init__(self, namespace: str, prefix: str) -> None:
        self.namespace = namespace
        self.prefix = prefix
        super().__init__(f"as_agent is required to read namespace '{namespace}' (the operator requires it "
                         f"under '{prefix}')")


class Visibility:
    def __init__(self, identity: IdentityQueries) -> None:
        self._identity = identity

    def required_prefixes(self) -> list[str]:
        return self._identity.required_prefixes()

    def _refuse_named(self, named: Iterable[str], prefixes: list[str]) -> None:
        for namespace in named:
            for prefix in prefixes:
                if under_any(namespace, (prefix,)):
                    raise AsAgentRequiredError(namespace, prefix)

    def scoped(self, flt: MemoryFilter) -> MemoryFilter:
        """``flt`` as the caller may run it. With ``as_agent`` it already filters by scope; without, a named
        namespace under a mandatory prefix is refused and every such subtree is left out.

        Raises:
            AsAgentRequiredError: no ``as_agent`` and the read names a namespace where it is mandatory.
        """
        if flt.as_agent is not None:
            return flt
        prefixes = self.required_prefixes()
        if not prefixes:
            return flt
        named = flt.namespaces or ((flt.namespace,) if flt.namespace is not None else ())
        # A recall anchored at a/b/c also reads a and a/b: only the anchor (the deepest) is what it names.
        self._refuse_named(named[-1:] if flt.namespaces else named, prefixes)
        return replace(flt, hidden_prefixes=tuple(prefixes))

    def check_namespace(self, namespace: str | None, as_agent: str | None) -> tuple[str, ...]:
        """For reads that are not a MemoryFilter (taxonomy, export, sync): refuse a named namespace under a
        mandatory prefix without ``as_agent``; return the prefixes to leave out."""
        if as_agent is not None:
            return ()
        prefixes = self.required_prefixes()
        if namespace is not None:
            self._refuse_named((namespace,), prefixes)
        return tuple(prefixes)

    def check(self, memory: Memory, as_agent: str | None) -> Memory:
        """One memory read by id (get).

        Raises:
            AsAgentRequiredError: no ``as_agent`` and the memory lies where it is mandatory.
            NotFoundError: the memory is not visible to ``as_agent``.
        """
        if as_agent is None:
            self._refuse_named((memory.namespace,), self.required_prefixes())
            return memory
        if not may_see(memory, as_agent):
            raise NotFoundError()
        return memory

    def visible(self, memories: Iterable[Memory], as_agent: str | None, hidden: tuple[str, ...] = ()
                ) -> list[Memory]:
        return [m for m in memories if may_see(m, as_agent, hidden)]

    def namespace_counts(self, now: str, as_agent: str | None, hidden: tuple[str, ...]) -> list[tuple[str, int]]:
        """Live memories per namespace that ``as_agent`` may see (what the taxonomy is built from)."""
        counts: dict[str, int] = {}
        for row in self._identity.scope_counts(now):
            if under_any(row.namespace, hidden):
                continue
            if as_agent is not None and not visible_to(row.scope, row.namespace, as_agent):
                continue
            counts[row.namespace] = counts.get(row.namespace, 0) + row.count
        return sorted(counts.items())
