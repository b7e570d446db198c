"""An HNSW index (hnswlib) over memory vectors, keyed by memory id, that filters inside the search.

Each vector carries its memory's namespace and scope, so a recall's namespace, visibility and expiry filters
run inside hnswlib's search (its ``filter`` callback) rather than after it: a small namespace still gets its
nearest neighbours, where filtering the global top-k afterwards would leave it with none. When the filter
lets few vectors through (a small namespace) the index is skipped and those vectors are scanned exactly,
which is both faster and exact; when the filtered graph search comes back short, an exact scan answers.

Vectors are L2-normalised, so inner product is cosine (hnswlib ``ip`` space: distance = 1 - cosine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hnswlib
import numpy as np

from projectors.queries import under_any, visibility_rule

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["HnswIndex", "VectorFilter", "VectorHit"]

# At or under this many candidate vectors, an exact scan beats a filtered graph search.
EXACT_SCAN_MAX = 2048
# A filter over the whole index (visibility) first tries an unfiltered search for this many times k and keeps
# what passes: hnswlib calls a Python filter for every node it visits, which made a filtered search over 100k
# vectors about 12x slower than an unfiltered one; the oversampled search costs a fraction of that.
OVERSAMPLE = 8


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Which vectors a search may return: namespaces (any of), visibility for ``as_agent``, excluded ids."""

    namespaces: frozenset[str] | None = None
    as_agent: str | None = None
    exclude_ids: frozenset[str] = frozenset()
    #: Namespace subtrees never returned (mandatory ``as_agent`` not given).
    hidden_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: str
    cosine: float


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    namespace: str
    scope: str


class HnswIndex:
    """Vectors by memory id with their namespace and scope. Not thread-safe: one event loop drives it."""

    def __init__(self, dim: int, *, capacity: int = 1024, m: int = 16, ef_construction: int = 200,
                 ef_search: int = 128, index: Any = None) -> None:
        self.dim = dim
        self.ef_search = ef_search
        if index is None:
            index = hnswlib.Index(space="ip", dim=dim)
            index.init_index(max_elements=capacity, M=m, ef_construction=ef_construction,
                             allow_replace_deleted=True, random_seed=100)
        self._index = index
        self.entries: dict[int, Entry] = {}
        self.by_id: dict[str, int] = {}
        self.by_namespace: dict[str, set[int]] = {}
        self.next_label = 0

    # -- changes ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self.by_id

    def entry(self, memory_id: str) -> Entry | None:
        label = self.by_id.get(memory_id)
        return None if label is None else self.entries[label]

    def upsert(self, items: list[tuple[Entry, bytes]]) -> None:
        """Add or replace vectors (little-endian float32 bytes of length ``4·dim``), in one hnswlib call."""
        if not items:
            return
        for entry, _ in items:
            self.remove(entry.id)
        vectors = np.frombuffer(b"".join(raw for _, raw in items), dtype="<f4").reshape(len(items), self.dim)
        labels = np.arange(self.next_label, self.next_label + len(items), dtype=np.uint64)
        self.next_label += len(items)
        self._reserve(len(items))
        self._index.add_items(vectors, labels, replace_deleted=True)
        for label, (entry, _) in zip(labels.tolist(), items, strict=True):
            self._link(int(label), entry)

    def _reserve(self, extra: int) -> None:
        needed = self._index.get_current_count() + extra
        capacity = self._index.get_max_elements()
        if needed > capacity:
            self._index.resize_index(max(needed, capacity * 2))

    def _link(self, label: int, entry: Entry) -> None:
        self.entries[label] = entry
        self.by_id[entry.id] = label
        self.by_namespace.setdefault(entry.namespace, set()).add(label)

    def remove(self, memory_id: str) -> Entry | None:
        label = self.by_id.pop(memory_id, None)
        if label is None:
            return None
        entry = self.entries.pop(label)
        labels = self.by_namespace[entry.namespace]
        labels.discard(label)
        if not labels:
            del self.by_namespace[entry.namespace]
        self._index.mark_deleted(label)
        return entry

    def relabel(self, memory_id: str, *, namespace: str, scope: str) -> None:
        """A memory moved namespace or changed scope; its vector stays."""
        label = self.by_id.get(memory_id)
        if label is None:
            return
        old = self.entries[label]
        self.by_namespace[old.namespace].discard(label)
        if not self.by_namespace[old.namespace]:
            del self.by_namespace[old.namespace]
        self._link(label, Entry(memory_id, namespace, scope))

    # -- search -------------------------------------------------------------------------------------------

    def search(self, query: NDArray[np.float32], k: int, flt: VectorFilter | None = None) -> list[VectorHit]:
        """The ``k`` nearest vectors passing ``flt``, best first."""
        if not self.entries or k <= 0:
            return []
        flt = flt or VectorFilter()
        allowed = self._predicate(flt)
        pool: list[int] | None = None
        if flt.namespaces is not None:
            pool = [label for ns in flt.namespaces for label in self.by_namespace.get(ns, ())]
            if len(pool) <= EXACT_SCAN_MAX:
                return self._exact(query, k, pool, allowed)
        if pool is None and allowed is not None:
            hits = self._oversampled(query, k, allowed)
            if hits is not None:
                return hits
        k_eff = min(k, len(self.entries) if pool is None else len(pool))
        self._index.set_ef(max(self.ef_search, k_eff))
        try:
            labels, distances = self._index.knn_query(query.reshape(1, -1), k=k_eff, num_threads=1, filter=allowed)
        except RuntimeError:
            # hnswlib found fewer than k vectors passing the filter: answer exactly from what passes.
            return self._exact(query, k, list(self.entries) if pool is None else pool, allowed)
        return [VectorHit(self.entries[int(label)].id, 1.0 - float(dist))
                for label, dist in zip(labels[0], distances[0], strict=True) if int(label) in self.entries]

    def _oversampled(self, query: NDArray[np.float32], k: int, allowed: Callable[[int], bool]
                     ) -> list[VectorHit] | None:
        """The best ``k`` passing ``allowed`` among the best ``OVERSAMPLE * k`` overall; None when fewer than
        ``k`` of those pass (and there are more to look at): the caller then runs the filtered search."""
        wide = min(len(self.entries), k * OVERSAMPLE)
        self._index.set_ef(max(self.ef_search, wide))
        try:
            labels, distances = self._index.knn_query(query.reshape(1, -1), k=wide, num_threads=1)
        except RuntimeError:
            return None
        hits: list[VectorHit] = []
        entries = self.entries
        for label, dist in zip(labels[0].tolist(), distances[0].tolist(), strict=True):
            entry = entries.get(label)
            if entry is not None and allowed(label):
                hits.append(VectorHit(entry.id, 1.0 - dist))
                if len(hits) == k:
                    return hits
        return hits if wide == len(entries) else None

    def _exact(self, query: NDArray[np.float32], k: int, pool: list[int],
               allowed: Callable[[int], bool] | None) -> list[VectorHit]:
        labels = [label for label in pool if allowed is None or allowed(label)]
        if not labels:
            return []
        vectors = self._index.get_items(labels, return_type="numpy")
        sims = vectors @ query.reshape(-1)
        top = np.argsort(-sims)[:k]
        return [VectorHit(self.entries[labels[i]].id, float(sims[i])) for i in top]

    def _predicate(self, flt: VectorFilter) -> Callable[[int], bool] | None:
        namespaces, as_agent, hidden = flt.namespaces, flt.as_agent, flt.hidden_prefixes
        excluded = {self.by_id[i] for i in flt.exclude_ids if i in self.by_id}
        if namespaces is None and as_agent is None and not excluded and not hidden:
            return None
        entries = self.entries
        rule = visibility_rule(as_agent) if as_agent is not None else None
        # Memoised per (scope, namespace): a search visits many labels but fewer distinct namespaces.
        seen: dict[tuple[str, str], bool] = {}

        def visible(scope: str, namespace: str) -> bool:
            key = (scope, namespace)
            known = seen.get(key)
            if known is None:
                known = seen[key] = ((rule is None or rule(scope, namespace)) and not under_any(namespace, hidden))
            return known

        def allowed(label: int) -> bool:
            entry = entries.get(label)
            if entry is None or label in excluded:
                return False
            if namespaces is not None and entry.namespace not in namespaces:
                return False
            return visible(entry.scope, entry.namespace)

        return allowed

    def vectors(self, memory_ids: Iterable[str]) -> dict[str, NDArray[np.float32]]:
        labels = [(i, self.by_id[i]) for i in memory_ids if i in self.by_id]
        if not labels:
            return {}
        rows = self._index.get_items([label for _, label in labels], return_type="numpy")
        return {memory_id: rows[n] for n, (memory_id, _) in enumerate(labels)}

    # -- files --------------------------------------------------------------------------------------------

    def save_graph(self, path: Path) -> None:
        self._index.save_index(str(path))

    @classmethod
    def load_graph(cls, path: Path, dim: int, *, ef_search: int = 128) -> HnswIndex:
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), allow_replace_deleted=True)
        return cls(dim, ef_search=ef_search, index=index)

    def memory_bytes(self) -> int:
        """Approximate size of the graph and vectors (hnswlib's own layout)."""
        count = self._index.get_max_elements()
        per = self.dim * 4 + self._index.M * 2 * 4 + 8 + 4
        return int(count * per)
