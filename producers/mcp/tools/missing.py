"""Tools whose feature this node does not have yet. Each answers with an ``isError`` result that names what is
missing and which issue brings it, instead of pretending to work; ``memory_capabilities`` reports the same list.

When a feature lands, its tools move from :data:`MISSING` to a real handler module.
"""

from __future__ import annotations

from producers.mcp.tools.base import Handler, unavailable

__all__ = ["HANDLERS", "MISSING"]

_GOVERNANCE = "namespace standards and governance are not available on this node yet (issue #5)"
_PENDING = "pending actions and approvals are not available on this node yet (issue #5)"
_QUOTAS = "per-agent quotas are not available on this node yet (issue #5)"
_SUBSCRIPTIONS = "webhook subscriptions are not available on this node yet (issue #6)"
_ARCHIVE = "the archive is not available on this node yet (issue #6); forgotten and expired memories stay in the log"

MISSING: dict[str, str] = {
    "memory_consolidate": "memory_consolidate needs derived_from links and the archive, which are not available "
                          "on this node yet (issue #6)",
    "memory_replay": "sidechain transcripts (memory_replay) are not recorded by this node",
    "memory_namespace_set_standard": _GOVERNANCE, "memory_namespace_get_standard": _GOVERNANCE,
    "memory_namespace_clear_standard": _GOVERNANCE,
    "memory_pending_list": _PENDING, "memory_pending_approve": _PENDING, "memory_pending_reject": _PENDING,
    "memory_quota_status": _QUOTAS,
    "memory_subscribe": _SUBSCRIPTIONS, "memory_unsubscribe": _SUBSCRIPTIONS,
    "memory_list_subscriptions": _SUBSCRIPTIONS, "memory_subscription_replay": _SUBSCRIPTIONS,
    "memory_subscription_dlq_list": _SUBSCRIPTIONS,
    "memory_archive_list": _ARCHIVE, "memory_archive_restore": _ARCHIVE, "memory_archive_purge": _ARCHIVE,
    "memory_archive_stats": _ARCHIVE,
}

HANDLERS: dict[str, Handler] = {name: unavailable(reason) for name, reason in MISSING.items()}
