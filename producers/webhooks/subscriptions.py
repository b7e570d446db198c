"""Webhook subscriptions, the command side: subscribe, unsubscribe, list, dead letters, replay.

Owners only: every read and every delete is scoped to the calling agent (the original's #870/#872/#1118 gates),
so one agent can neither see nor remove another's webhooks or read its dead-lettered payloads.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.log import Clock, EventLog
from producers.errors import NotFoundError, ValidationError
from producers.identity.visibility import Visibility, visible_page
from producers.input.commands import MAX_INT64
from producers.input.validation import check_namespace
from producers.webhooks.config import WebhookConfig
from producers.webhooks.signing import fingerprint, hmac_key, seal
from producers.webhooks.ssrf import check_url
from producers.write.writer import EventWriter, WriteResult
from projectors import (
    WEBHOOK_EVENT_TYPES,
    DeadLetter,
    DeliveryStore,
    MemoryReadModel,
    SubscriptionQueries,
    SubscriptionRow,
    correlation_id,
    matches,
    parse_events,
    webhook_events,
)
from schemas import Keyring, Memory, now_ts, parse_ts
from schemas.events import Subscription, SubscriptionCreated, SubscriptionDeleted

__all__ = ["MAX_REPLAY", "EventVisibility", "Replayed", "SubscribeCommand", "SubscriptionService"]

#: The most events one replay answers with (``truncated`` says when there were more).
MAX_REPLAY = 1000
MAX_FILTER = 512
# The original's message starts the same; there is no server-wide secret here, so `secret` is the only way.
_SECRET_REQUIRED = ("HMAC secret required: pass `secret` (deliveries are always signed; this node has no "
                    "server-wide secret)")


@dataclass(frozen=True)
class SubscribeCommand:
    url: str
    events: str = "*"
    secret: str | None = None
    namespace_filter: str | None = None
    agent_filter: str | None = None
    #: The original's S33 shape (``{agent_id, namespace}``): "subscribe this agent to a namespace". Without a
    #: secret such a subscription is recorded and listed but never delivered (there is nothing to sign with).
    namespace_only: bool = False

    @classmethod
    def parse(cls, body: Any, *, agent_id: str | None = None) -> SubscribeCommand:
        """The webhook shape ``{url, events, secret, namespace_filter, agent_filter}``; with ``agent_id`` (the
        HTTP route, as the original's), also the namespace shape ``{namespace}`` (``url`` optional: the original
        synthesizes ``http://localhost/_ns/<agent>/<ns>``; ``namespace_filter`` defaults to ``namespace`` and
        ``agent_filter`` to the caller). The MCP tool has no namespace shape (its ``namespace`` is ignored)."""
        if not isinstance(body, dict):
            raise ValidationError("the request body must be a JSON object")
        shaped = agent_id is not None and body.get("namespace") is not None
        namespace = _filter(body, "namespace") if shaped else None
        url = body.get("url")
        if url is None and namespace is not None:
            url = f"http://localhost/_ns/{agent_id}/{namespace}"
        if not isinstance(url, str) or not url.strip():
            raise ValidationError("url or namespace is required")
        ns_filter = _filter(body, "namespace_filter") or namespace
        agent_filter = _filter(body, "agent_filter")
        if namespace is not None and body.get("url") is None:
            agent_filter = agent_filter or agent_id
        return cls(url=url.strip(), events=_events(body.get("events")), secret=_opt(body, "secret"),
                   namespace_filter=ns_filter, agent_filter=agent_filter, namespace_only=namespace is not None)


def _opt(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    return value or None


def _filter(body: dict[str, Any], name: str) -> str | None:
    value = _opt(body, name)
    if value is not None and len(value) > MAX_FILTER:
        raise ValidationError(f"{name} is longer than {MAX_FILTER} characters")
    if value is not None and name in ("namespace_filter", "namespace"):
        value = check_namespace(value, what=name)
    return value


def _events(value: Any) -> str:
    if value is None:
        return "*"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValidationError("events must be a string (\"*\" or a comma list)")
    names = parse_events(value)
    if not names:
        return "*"
    unknown = [n for n in names if n != "*" and n not in WEBHOOK_EVENT_TYPES]
    if unknown:
        raise ValidationError(f"unknown webhook event type {unknown[0]!r}; valid types: {list(WEBHOOK_EVENT_TYPES)}")
    return ",".join(names)


@dataclass(frozen=True)
class Replayed:
    subscription_id: str
    since: str
    events: list[dict[str, Any]]
    truncated: bool


class EventVisibility:
    """What a subscriber (its owner, read as ``X-Agent-Id`` is) may see of a webhook event: every memory the
    event names must be visible to it, live or archived; a memory that is gone counts as a private memory of the
    event's agent in the event's namespace (so its title, namespace and id reach only that agent)."""

    def __init__(self, visibility: Visibility, model: MemoryReadModel) -> None:
        self._visibility = visibility
        self._model = model

    def _memory(self, memory_id: str) -> Memory | None:
        live = self._model.queries.get_many([memory_id])
        if live:
            return live[0]
        archived = self._model.archive.get(memory_id)
        return archived.memory if archived is not None else None

    def for_owner(self, owner: str) -> Callable[[Any], bool]:
        """``visible(payload)`` for ``owner``'s subscriptions (a payload as delivered, or its JSON text)."""
        reader = self._visibility.reader(None, caller=owner)

        def visible(payload: Any) -> bool:
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    return False
            if not isinstance(payload, dict):
                return False
            namespace, agent = payload.get("namespace"), payload.get("agent_id")
            for memory_id in (payload.get("memory_id"), payload.get("target_id")):
                if not isinstance(memory_id, str):
                    continue
                memory = self._memory(memory_id)
                if memory is not None and not reader.sees(memory):
                    return False
                if memory is None and not reader.sees_row(namespace if isinstance(namespace, str) else "",
                                                          "private", agent if isinstance(agent, str) else None):
                    return False
            return True

        return visible


class SubscriptionService:
    def __init__(self, writer: EventWriter, queries: SubscriptionQueries, keyring: Keyring, *,
                 deliveries: DeliveryStore, config: WebhookConfig, visible: EventVisibility | None = None) -> None:
        self._writer = writer
        self._queries = queries
        self._keyring = keyring
        self._deliveries = deliveries
        self.config = config
        #: What each owner may see of the events (None: everything; a node always sets it).
        self._visible = visible

    def _visible_to(self, owner: str) -> Callable[[Any], bool]:
        return self._visible.for_owner(owner) if self._visible is not None else lambda payload: True

    async def subscribe(self, cmd: SubscribeCommand, *, agent_id: str) -> tuple[SubscriptionRow, WriteResult]:
        """Validate (the SSRF guard on the URL; names are resolved at each delivery), seal the HMAC key to every
        trusted node key, and append ``subscription.created``."""
        check_url(cmd.url, allow_private=self.config.allow_private)
        if not cmd.secret and not cmd.namespace_only:
            raise ValidationError(_SECRET_REQUIRED)
        # A keyless (namespace-shape) subscription carries no sealed key and no fingerprint: nodes never deliver it.
        key = hmac_key(cmd.secret) if cmd.secret else None
        sub = Subscription(id=str(uuid.uuid4()), url=cmd.url, events=cmd.events, created_by=agent_id,
                           created_at=now_ts(), namespace_filter=cmd.namespace_filter, agent_filter=cmd.agent_filter,
                           sealed_keys=seal(key, self._keyring) if key else {},
                           secret_fingerprint=fingerprint(key) if key else "")
        write = await self._writer.append([(SubscriptionCreated(sub), _namespace(agent_id))], actor=agent_id)
        write = await self._writer.with_quorum(write)
        row = self._queries.get(sub.id)
        if row is None:  # applied before append returned: cannot happen unless the event was refused
            raise NotFoundError(f"subscription {sub.id} was not applied")
        return row, write

    async def unsubscribe(self, subscription_id: str, *, agent_id: str) -> tuple[bool, WriteResult]:
        """Remove the caller's subscription; ``False`` when there is none of that id owned by the caller."""

        async def decide() -> list[tuple[Any, str]]:
            row = self._queries.get(subscription_id)
            if row is None or row.created_by != agent_id:
                return []
            return [(SubscriptionDeleted(id=subscription_id, deleted_at=now_ts()), _namespace(agent_id))]

        write = await self._writer.decide_and_append(decide, actor=agent_id)
        # Removed by this write only if the projector applied it (not removed elsewhere first, in log order).
        return bool(write.positions) and write.refusal(0) is None, await self._writer.with_quorum(write)

    async def unsubscribe_namespace(self, namespace: str, *, agent_id: str) -> tuple[str, bool, WriteResult]:
        """The original's ``DELETE ?agent_id=&namespace=``: remove the caller's first subscription whose
        ``namespace_filter`` is ``namespace``; ``("", False)`` when there is none."""
        ns = check_namespace(namespace, what="namespace")
        target = next((r for r in self.owned(agent_id=agent_id) if r.namespace_filter == ns), None)
        if target is None:
            return "", False, WriteResult(positions=[])
        removed, write = await self.unsubscribe(target.id, agent_id=agent_id)
        return target.id, removed, write

    def owned(self, *, agent_id: str) -> list[SubscriptionRow]:
        return self._queries.owned(created_by=agent_id)

    def dead_letters(self, *, agent_id: str, subscription_id: str | None, limit: int) -> list[DeadLetter]:
        """The owner's dead letters about what it may (still) see."""
        visible = self._visible_to(agent_id)
        return visible_page(
            lambda n, at: self._queries.dead_letters(owner=agent_id, subscription_id=subscription_id, limit=n,
                                                     offset=at),
            lambda letter: visible(letter.payload), limit=limit, offset=0)

    def dispatch_counts(self) -> dict[str, int]:
        """Deliveries acknowledged by THIS node per subscription (each node delivers the events it wrote)."""
        counts: dict[str, int] = {}
        for d in self._deliveries.deliveries():
            if d.status == "ack":
                counts[d.subscription_id] = counts.get(d.subscription_id, 0) + 1
        return counts

    async def replay(self, subscription_id: str, since: str, *, agent_id: str) -> Replayed:
        """What the subscription was sent (or should have been) since ``since``: an RFC 3339 time (events at or
        after it) or a log offset (events after it). Computed from the log, so it covers every node's events;
        ``delivery_status`` is this node's record of the delivery (None when another node delivered it)."""
        row = self._queries.get(subscription_id)
        if row is None or row.created_by != agent_id:
            raise NotFoundError("subscription not found")
        after, since_ts = _since(since)
        visible = self._visible_to(agent_id)
        statuses = {d.correlation_id: d for d in self._deliveries.deliveries(subscription_id=subscription_id)}
        out: list[dict[str, Any]] = []
        async for entry in _matching(self._writer.log, row, after=after, since_ts=since_ts):
            if not visible(entry["payload"]):
                continue
            if len(out) == MAX_REPLAY:
                return Replayed(subscription_id, since, out, truncated=True)
            known = statuses.get(entry["correlation_id"])
            entry["delivery_status"] = known.status if known else None
            entry["delivered_at"] = known.finished_at if known and known.status == "ack" else None
            out.append(entry)
        return Replayed(subscription_id, since, out, truncated=False)


def _namespace(agent_id: str) -> str:
    """Subscription events are filed under the original's per-owner namespace for subscription rows."""
    return f"_subscriptions/{agent_id}"


def _since(since: str) -> tuple[int, datetime | None]:
    text = since.strip()
    if text.isascii() and text.isdigit():  # not "²": a digit to isdigit, not to int
        if len(text) > 19 or int(text) > MAX_INT64:  # (int() refuses 4,300 digits and more)
            raise ValidationError(f"since as a log offset must be at most {MAX_INT64}")
        return int(text), None
    try:
        return 0, parse_ts(text)
    except ValueError:
        raise ValidationError(f"since must be an RFC 3339 timestamp or a log offset, not {since!r}") from None


async def _matching(log: EventLog, sub: SubscriptionRow, *, after: int,
                    since_ts: datetime | None) -> AsyncIterator[dict[str, Any]]:
    """The subscription's webhook events in the log after offset ``after`` (and at or after ``since_ts``)."""
    position: Clock = {}
    created = parse_ts(sub.created_at)
    while True:
        records = await log.read(after=position, limit=500)
        if not records:
            return
        for record in records:
            position[record.partition] = record.offset
            envelope = record.event.envelope
            if record.offset <= after:
                continue
            at = parse_ts(envelope.ts)
            if at < created or (since_ts is not None and at < since_ts):
                continue
            for event in webhook_events(record):
                if matches(sub, event):
                    cid = correlation_id(sub.id, envelope.event_id + "/" + event.event, envelope.ts)
                    yield {"correlation_id": cid, "event_type": event.event, "offset": record.offset,
                           "partition": record.partition, "event_ts": envelope.ts, "origin": envelope.origin,
                           "payload": event.payload(cid)}
