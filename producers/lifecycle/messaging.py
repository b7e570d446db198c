"""Messages between agents, as the original: a message is a memory in ``_messages/<recipient>`` (tagged
``_message``, source "notify", the sender as its author), and unread means never recalled
(``access_count == 0``): only a recall that returns the message marks it read; reading the inbox does not.

MCP (memory_notify, memory_inbox) and HTTP (POST /notify, GET /inbox) share this one implementation.
"""

from __future__ import annotations

from typing import Any

from producers.input.commands import parse_create, parse_list_query
from producers.input.validation import check_agent_id, check_content, check_tier, check_title
from producers.memory.service import MemoryService
from schemas import now_ts

__all__ = ["MAX_INBOX", "MessagingService", "messages_namespace"]

MAX_INBOX = 500


def messages_namespace(agent_id: str) -> str:
    return f"_messages/{agent_id}"


class MessagingService:
    def __init__(self, memories: MemoryService) -> None:
        self.memories = memories

    async def notify(self, *, target: Any, title: Any, payload: Any, sender: str, priority: int = 5,
                     tier: Any = "mid") -> dict[str, Any]:
        """Store a message for ``target``; a message with the same title in that inbox is merged into (the
        original's upsert), so it keeps its read state."""
        target = check_agent_id(target)
        title, payload, tier = check_title(title), check_content(payload), check_tier(tier)
        namespace = messages_namespace(target)
        cmd = parse_create({"title": title, "content": payload, "tier": tier, "namespace": namespace,
                            "tags": ["_message"], "priority": max(1, min(10, priority)), "source": "notify",
                            "on_conflict": "merge", "metadata": {"agent_id": sender, "recipient_agent_id": target,
                                                                 "message_kind": "notify"}}, now=now_ts())
        result = await self.memories.store(cmd, agent_id=sender)
        return {"id": result.memory.id, "from": sender, "to": target, "namespace": namespace, "tier": tier,
                "delivered_at": result.memory.created_at}

    async def inbox(self, owner: str, *, unread_only: bool = False, limit: int = 50) -> dict[str, Any]:
        """The first ``limit`` messages in list order (priority, then newest update), then the unread filter,
        as the original (so ``unread_only`` may return fewer than ``limit`` while more unread exist)."""
        namespace = messages_namespace(check_agent_id(owner))
        q = parse_list_query({"namespace": namespace, "limit": min(max(limit, 0), MAX_INBOX)},
                             max_limit=MAX_INBOX)
        items = await self.memories.list_memories(q)
        messages = [{"id": m.id, "from": m.metadata.get("agent_id", ""), "title": m.title, "payload": m.content,
                     "priority": m.priority, "tier": m.tier, "created_at": m.created_at,
                     "read": m.access_count > 0, "access_count": m.access_count}
                    for m in items if not unread_only or m.access_count == 0]
        return {"agent_id": owner, "namespace": namespace, "count": len(messages), "unread_only": unread_only,
                "messages": messages}
