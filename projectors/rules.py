"""How memory events change a memory, as pure functions shared by every read-model backend.

The SQLite and Postgres appliers differ only in SQL; what a merge keeps, what an update sets and when an event
is inapplicable is decided here once, so the two backends cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import orjson

from schemas import VECTOR_DIM, Memory, PayloadError, decode_vector
from schemas.events import MemoryEmbedded, MemoryStored, MemoryUpdated

__all__ = ["DIM_RANGE", "MAX_VERSION_SUFFIX", "WRONG_DIMENSION", "Inapplicable", "buried", "cause_refusal",
           "check_daily_quota", "clash_id", "json_column", "merged_values", "over_link_quota", "over_quota",
           "place_store", "quota_figures", "stored_author", "tier_max", "title_clash", "updated_values",
           "vector_bytes", "versioned", "versioned_titles"]

#: The highest n tried for a versioned title "title (n)".
MAX_VERSION_SUFFIX = 1024


def json_column(value: Any) -> str:
    """How both read models store a JSON column (tags, metadata): compact, keys sorted, UTF-8 as is."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson cannot write (integers beyond 64 bits): the stdlib can
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

_TIER_RANK = {"short": 0, "mid": 1, "long": 2}
WRONG_DIMENSION = "wrong dimension"
#: Dimensions a read model keeping several models' vectors accepts: every embedding model in use lies inside
#: (384 MiniLM … 3,072 OpenAI large); a fixed rule, not a setting, so every node applies the same events.
DIM_RANGE = (16, 4096)


class Inapplicable(Exception):
    """The event is valid but cannot be applied to the current state (recorded as rejected)."""


def tier_max(old: str, new: str) -> str:
    """Tiers never go down."""
    return old if _TIER_RANK[old] >= _TIER_RANK[new] else new


def _keep_author(new_metadata: Mapping[str, Any], old_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The first author of a memory stays its author, whatever later writers send."""
    metadata = dict(new_metadata)
    old_agent = old_metadata.get("agent_id")
    if old_agent is not None:
        metadata["agent_id"] = old_agent
    return metadata


def merged_values(tier: str, expires_at: str | None, metadata: Mapping[str, Any], m: Memory) -> dict[str, Any]:
    """The original's upsert on (title, namespace), given the existing row's tier, expiry and metadata.

    The existing row keeps its id, creation time, access count and author; content, tags and source are
    replaced; the tier never goes down; a long tier clears the expiry. Priority and confidence take the maximum
    (``priority``/``confidence`` here are the incoming values: the backend takes the max in SQL).
    """
    new_tier = tier_max(tier, m.tier)
    return {"content": m.content, "tags": list(m.tags), "source": m.source, "priority": m.priority,
            "confidence": m.confidence, "tier": new_tier, "updated_at": m.updated_at,
            "expires_at": None if new_tier == "long" else (m.expires_at or expires_at),
            "metadata": _keep_author(m.metadata, metadata)}


def updated_values(event: MemoryUpdated, tier: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a ``memory.updated`` event sets, given the row's current tier and metadata.

    ``tags`` and ``metadata`` come back as Python values; the backend encodes them for its column types.
    """
    c = event.changes
    sets: dict[str, Any] = {"updated_at": event.updated_at}
    for name in ("title", "content", "namespace", "priority", "confidence", "source", "expires_at"):
        value = getattr(c, name)
        if value is not None:
            sets[name] = value
    if c.clear_expiry:
        sets["expires_at"] = None
    if c.tier is not None:
        sets["tier"] = tier_max(tier, c.tier)
    if c.tags is not None:
        sets["tags"] = list(c.tags)
    if c.metadata is not None:
        sets["metadata"] = _keep_author(c.metadata, metadata)
    return sets


def buried(memory_id: str) -> Inapplicable:
    """A stored or imported memory whose id has a tombstone: a deleted memory never comes back."""
    return Inapplicable(f"memory {memory_id} was deleted (tombstone): a deleted memory is never restored")


def title_clash(title: str, namespace: str, other_id: str) -> Inapplicable:
    return Inapplicable(f"title {title!r} already exists in namespace {namespace!r} (memory {other_id})")


_CLASH_ID = re.compile(r"^title .* already exists in namespace .* \(memory ([^()\s]+)\)$", re.DOTALL)


def clash_id(reason: str) -> str | None:
    """The id of the memory holding the title, when ``reason`` is a :func:`title_clash` refusal (how a writer
    that waited for its own event tells a 409 from other refusals)."""
    match = _CLASH_ID.match(reason)
    return match.group(1) if match else None


def versioned_titles(title: str) -> Iterator[str]:
    """The candidates for ``on_conflict: version``, in the order they are tried."""
    return (f"{title} ({n})" for n in range(2, MAX_VERSION_SUFFIX + 1))


def versioned(memory: Memory, taken: Callable[[str], bool]) -> Memory:
    """``memory`` under the first free versioned title (``taken(title)`` asks the read model)."""
    for candidate in versioned_titles(memory.title):
        if not taken(candidate):
            return replace(memory, title=candidate)
    raise Inapplicable(f"no free versioned title for {memory.title!r} in namespace {memory.namespace!r}")


class _Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


_R = TypeVar("_R", bound=_Row)


def place_store(memory: Memory, on_conflict: str | None, *, buried_id: Callable[[str], bool],
                insert: Callable[[Memory], bool], title_holder: Callable[[str], _R | None],
                merge: Callable[[_R, Memory], None]) -> None:
    """Apply one store in log order, the same on every read model (each passes its own SQL): insert it; when
    another memory holds its (title, namespace), ``on_conflict`` decides (see :class:`MemoryStored`): refuse
    (``error``), insert under the first free versioned title (``version``), else merge into the holder. This is
    where racing stores of one title are put in order.

    ``title_holder(title)`` is the row holding ``title`` in the memory's namespace (with its ``id``);
    ``insert(memory)`` refuses a buried id (False), so the common case costs no lookup of the tombstones.
    """
    # Insert first (one statement in the common case); look for a tombstone or a title clash only when it was
    # refused.
    if insert(memory):
        return
    if buried_id(memory.id):
        raise buried(memory.id)
    holder = title_holder(memory.title)
    elsewhere = f"memory {memory.id} already exists under another title or namespace"
    if holder is None:
        raise Inapplicable(elsewhere)
    if holder["id"] != memory.id and on_conflict == "error":
        raise title_clash(memory.title, memory.namespace, holder["id"])
    if holder["id"] != memory.id and on_conflict == "version":
        if not insert(versioned(memory, lambda title: title_holder(title) is not None)):
            raise Inapplicable(elsewhere)
        return
    merge(holder, memory)


def cause_refusal(cause: str, refused: str | None, seen: bool) -> str | None:
    """Why an event that carries out a decision (its envelope names the decision as ``cause``) is not applied:
    the decision was refused (``refused``: its reason, e.g. the pending action was decided first elsewhere) or
    was not applied before it (``seen`` false). None: the decision stands, the event is applied on its merits.
    So of two approvals of one pending action, only the first in log order executes the action."""
    if refused is not None:
        return f"follows decision {cause}, which was refused: {refused}"
    if not seen:
        return f"follows decision {cause}, which was not applied before it"
    return None


def stored_author(event: MemoryStored) -> str | None:
    """Whom a store is charged to when the payload alone says (the writer always records ``agent_id``)."""
    author = event.memory.metadata.get("agent_id")
    return author if isinstance(author, str) else None


_QUOTA_FIGURES = re.compile(r"^daily (memory|link) quota: agent .* has (?:stored|linked) (\d+) of (\d+) today$",
                            re.DOTALL)
#: The original's name of each daily limit a projector enforces.
_LIMITS = {"memory": "memories_per_day", "link": "links_per_day"}


def over_quota(agent_id: str, current: int, maximum: int) -> Inapplicable:
    return Inapplicable(f"daily memory quota: agent {agent_id!r} has stored {current} of {maximum} today")


def over_link_quota(agent_id: str, current: int, maximum: int) -> Inapplicable:
    return Inapplicable(f"daily link quota: agent {agent_id!r} has linked {current} of {maximum} today")


def quota_figures(reason: str) -> tuple[str, int, int] | None:
    """(limit, current, maximum) when ``reason`` is an :func:`over_quota` or :func:`over_link_quota` refusal;
    ``limit`` is the original's name for it (``memories_per_day``, ``links_per_day``)."""
    match = _QUOTA_FIGURES.match(reason)
    return (_LIMITS[match.group(1)], int(match.group(2)), int(match.group(3))) if match else None


def check_daily_quota(event: MemoryStored, stored_today: Callable[[str, str], int]) -> None:
    """Refuse a metered store (``max_per_day`` set) that would exceed its author's daily quota, counted in log
    order. The day is the memory's creation day; ``stored_today(agent, day)`` reads the counter."""
    agent = stored_author(event)
    if event.max_per_day is None or agent is None:
        return
    current = stored_today(agent, event.memory.created_at[:10])
    if current + 1 > event.max_per_day:
        raise over_quota(agent, current, event.max_per_day)


def vector_bytes(event: MemoryEmbedded, dim: int | None = VECTOR_DIM) -> bytes:
    """The vector's float32 bytes, or :class:`Inapplicable` when it is malformed or not ``dim`` long (the
    reason starts with ``WRONG_DIMENSION`` then, so such refusals can be counted). ``dim=None`` takes any
    dimension in :data:`DIM_RANGE` (a read model that keeps vectors of several models: SQLite)."""
    # The range first, for every read model: the same malformed event gets the same reason on each backend.
    if not DIM_RANGE[0] <= event.dim <= DIM_RANGE[1]:
        msg = f"{WRONG_DIMENSION}: {event.dim} from {event.model}, outside {DIM_RANGE[0]}..{DIM_RANGE[1]}"
        raise Inapplicable(msg)
    if dim is not None and event.dim != dim:
        raise Inapplicable(f"{WRONG_DIMENSION}: {event.dim} from {event.model}, the index holds {dim}")
    try:
        return decode_vector(event.vector, event.dim)
    except PayloadError as exc:
        raise Inapplicable(str(exc)) from None
