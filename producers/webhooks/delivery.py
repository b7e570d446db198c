"""The webhook sender: the delivery projector (:class:`projectors.deliveries.DeliveryStore` behind its own
:class:`~projectors.ProjectionRunner` and log position) fills an outbox; this sends each pending delivery,
signed, with the original's retry ladder, and records the outcome.

A delivery succeeds when the receiver answers 2xx with ``{"status":"ack","correlation_id":<ours>}`` within the
ACK timeout. After the first attempt and the three retries (200 ms, 1 s, 5 s) fail, a
``subscription.dead_lettered`` event is appended, so every node's read model lists the dead letter. Crash
safety: the outbox row is marked only after the outcome, so a crash mid-delivery resends it after the restart
(with the same correlation id, which receivers can de-duplicate on); a clean restart resends nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra.log import Clock, EventLog, LogError
from infra.tasks import stop_task
from producers.errors import CommandError
from producers.runtime.metrics import Labels, Metrics
from producers.webhooks.config import WebhookConfig
from producers.webhooks.signing import CORRELATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, unseal
from producers.webhooks.ssrf import SsrfError, check_url, resolve
from producers.write.writer import EventWriter
from projectors import (
    Delivery,
    DeliveryStore,
    LocalSubscription,
    ProjectionRunner,
    ProjectorError,
    ReadModel,
    SharedVerifyRunner,
    VerifiedEvents,
)
from schemas import Keyring, NodeKey, now_ts
from schemas.events import SubscriptionDeadLettered

__all__ = ["WebhookDelivery"]

log = logging.getLogger("ai_memory.webhooks")

USER_AGENT = "ai-memory-es/0.1 (webhooks)"


@dataclass
class _Outcome:
    attempts: int = 0
    body: str | None = None
    error: str | None = None
    first_failed_at: str | None = None
    last_failed_at: str | None = None
    errors: list[str] = field(default_factory=list)

    def failed(self, error: str) -> None:
        at = now_ts()
        self.first_failed_at = self.first_failed_at or at
        self.last_failed_at, self.error = at, error


class WebhookDelivery:
    """Owns the delivery store, its runner, and the sending loop. Started and stopped by ``serve`` only: the
    CLI verbs write events but never deliver (the serving node picks their events up from the log)."""

    def __init__(self, *, log_: EventLog, keyring: Keyring, key: NodeKey, writer: EventWriter,
                 leader: ProjectionRunner, path: Path, config: WebhookConfig, metrics: Metrics,
                 verified: VerifiedEvents, host: ReadModel | None = None,
                 visible: Callable[[str], Callable[[Any], bool]] | None = None) -> None:
        """``visible(owner)(payload)``: whether a subscription's owner may see what an event is about
        (:class:`producers.webhooks.subscriptions.EventVisibility`); an event it may not see is never sent to it.
        ``host``: the node's read model, which vouches for the signatures it holds when the host's nodes share it."""
        self.config = config
        self._visible = visible
        self.store = DeliveryStore(path, node_id=key.key_id)
        # The node's memory projector audits the writers' chains; this one would only repeat its findings.
        self.runner = SharedVerifyRunner(log_, self.store, keyring, verified=verified, host=host,
                                         consumer=f"webhooks-{key.key_id}", audit_chain=False)
        self.runner.add_listener(lambda _position: self._wake.set())
        self._log = log_
        self._key = key
        self._writer = writer
        self._leader = leader
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._stop_handing: Callable[[], None] = _nothing

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Catch up with the log (a new store first records the log end as its horizon), then deliver."""
        if self.store.horizon is None:
            self.store.set_horizon(await self._log.end_offsets())
        await self.runner.catch_up()
        self.runner.start()
        # Handed what the node's memory projector applies (its own writes and others'), read and judged once.
        self._stop_handing = self._leader.lead(self.runner)
        self._client = httpx.AsyncClient(timeout=self.config.ack_timeout, follow_redirects=False,
                                         headers={"user-agent": USER_AGENT})
        self._task = asyncio.create_task(self._loop(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stop sending (in-flight deliveries stay pending and resume at the next start), then the runner."""
        self._stop_handing()
        self._stop_handing = _nothing
        task, self._task = self._task, None
        await stop_task(task)
        for inflight in list(self._inflight.values()):
            await stop_task(inflight, give_up_after=2.0)
        self._inflight.clear()
        await self.runner.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def close(self) -> None:
        await self.stop()
        if not self._closed:
            self._closed = True
            self.store.close()

    async def lag(self) -> Clock:
        """Per partition: log events the delivery projector has not applied yet."""
        position = self.runner.position
        return {p: max(0, end - position.get(p, 0)) for p, end in (await self._log.end_offsets()).items()}

    async def samples(self) -> dict[str, dict[Labels, float]]:
        """Gauges for ``/metrics``: the delivery projector's offset and lag, and the outbox by status."""
        counts = self.store.counts()
        return {
            "ai_memory_webhook_offset": {(("partition", p),): o for p, o in self.runner.position.items()},
            "ai_memory_webhook_lag": {(("partition", p),): n for p, n in (await self.lag()).items()},
            "ai_memory_webhook_deliveries": {(("status", s),): counts.get(s, 0)
                                             for s in ("pending", "ack", "dead", "cancelled")},
        }

    # -- the loop -----------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            free = self.config.concurrency - len(self._inflight)
            if free > 0:
                for delivery in self.store.pending(limit=free, exclude=list(self._inflight)):
                    task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.correlation_id}")
                    self._inflight[delivery.correlation_id] = task
                    task.add_done_callback(self._done)
            self._wake.clear()
            try:
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _done(self, task: asyncio.Task[None]) -> None:
        for correlation, inflight in list(self._inflight.items()):
            if inflight is task:
                del self._inflight[correlation]
        self._wake.set()

    async def _deliver(self, delivery: Delivery) -> None:
        sub = self.store.subscription(delivery.subscription_id)
        if sub is None:
            return  # unsubscribed since: the projector cancelled the row
        try:
            if not await self._may_see(delivery, sub):
                self.store.finish(delivery.correlation_id, status="cancelled", attempts=0, body=None,
                                  last_error="not visible to the subscription's owner", at=now_ts())
                return
            outcome = await self._send_with_retries(delivery, sub)
            if outcome.error is None:
                self.store.finish(delivery.correlation_id, status="ack", attempts=outcome.attempts,
                                  body=outcome.body, last_error=None, at=now_ts())
                self._metrics.inc("ai_memory_webhook_deliveries_total", outcome="ack")
                return
            await self._dead_letter(delivery, sub, outcome)
        except (CommandError, LogError, ProjectorError) as exc:
            # Not recorded: the row stays pending and is tried again (the same correlation id).
            log.warning("webhook delivery %s could not be recorded, will retry: %s", delivery.correlation_id, exc)
            await asyncio.sleep(1.0)
        except Exception:
            # A bug must not stop the sender, nor turn into a hot loop on the same row.
            log.exception("webhook delivery %s failed unexpectedly; will retry", delivery.correlation_id)
            await asyncio.sleep(5.0)

    async def _may_see(self, delivery: Delivery, sub: LocalSubscription) -> bool:
        """The same rule as the owner's reads, against a read model that holds the event (its memory)."""
        if self._visible is None:
            return True
        await self._writer.wait({delivery.partition: delivery.offset}, timeout=self.config.ack_timeout)
        return self._visible(sub.created_by)(delivery.payload)

    async def _dead_letter(self, delivery: Delivery, sub: LocalSubscription, outcome: _Outcome) -> None:
        error = outcome.error or "failed"
        at = now_ts()
        event = SubscriptionDeadLettered(
            subscription_id=sub.id, owner=sub.created_by, correlation_id=delivery.correlation_id,
            event_type=delivery.event_type, source_event_id=delivery.source_event_id,
            body=outcome.body or delivery.payload, attempts=outcome.attempts, last_error=error,
            first_failed_at=outcome.first_failed_at or at, last_failed_at=outcome.last_failed_at or at)
        namespace = json.loads(delivery.payload).get("namespace") or "global"
        await self._writer.append([(event, namespace)], actor=self._key.key_id)
        self.store.finish(delivery.correlation_id, status="dead", attempts=outcome.attempts, body=outcome.body,
                          last_error=error, at=at)
        self._metrics.inc("ai_memory_webhook_deliveries_total", outcome="dead")
        log.warning("webhook %s to subscription %s dead-lettered after %d attempts: %s", delivery.correlation_id,
                    sub.id, outcome.attempts, error)

    async def _send_with_retries(self, delivery: Delivery, sub: LocalSubscription) -> _Outcome:
        outcome = _Outcome()
        key = unseal(sub.sealed_key, self._key) if sub.sealed_key else None
        if key is None:
            outcome.failed(f"no HMAC key for node {self._key.key_id}: the subscription's secret was not sealed "
                           "to this node's key (subscribe again once this node's key is trusted)")
            return outcome
        payload: dict[str, Any] = json.loads(delivery.payload)
        for wait in (0.0, *self.config.retry_backoffs):
            if wait:
                await asyncio.sleep(wait)
            outcome.attempts += 1
            self._metrics.inc("ai_memory_webhook_attempts_total")
            outcome.body = json.dumps({**payload, "delivered_at": now_ts()}, ensure_ascii=False, sort_keys=True)
            error = await self._attempt(sub.url, outcome.body, delivery.correlation_id, key)
            if error is None:
                outcome.error = None
                return outcome
            outcome.failed(error)
        return outcome

    async def _attempt(self, url: str, body: str, correlation: str, key: bytes) -> str | None:
        """One POST; None when acknowledged, else a short reason (the original's ``http-503``, ``network: …``)."""
        assert self._client is not None
        try:
            target = check_url(url, allow_private=self.config.allow_private)
            addresses = await resolve(target, allow_private=self.config.allow_private)
        except SsrfError as exc:
            return f"ssrf-rejected: {exc}"
        raw = body.encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {"content-type": "application/json", TIMESTAMP_HEADER: timestamp, CORRELATION_HEADER: correlation,
                   SIGNATURE_HEADER: signature(key, timestamp, raw)}
        error = "network: no address"
        for address in addresses:  # the next checked address only when this one cannot be connected to
            try:
                response = await self._post(url, address, target.host if target.scheme == "https" else None, raw,
                                            headers)
            except httpx.ConnectError as exc:
                error = f"network: ConnectError: {exc}"
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                return f"network: {type(exc).__name__}: {exc}"
            if not response.is_success:
                return f"http-{response.status_code}"
            return _ack_error(response, correlation)
        return error

    async def _post(self, url: str, address: str, sni: str | None, raw: bytes,
                    headers: dict[str, str]) -> httpx.Response:
        """POST to ``address`` (already checked: no second resolution), keeping the URL's Host header and, for
        https, its TLS server name (certificate checked against the name, not the address)."""
        assert self._client is not None
        request = self._client.build_request("POST", url, content=raw, headers=headers)
        request.url = request.url.copy_with(host=address)
        if sni is not None:
            request.extensions["sni_hostname"] = sni
        return await self._client.send(request)


def _nothing() -> None:
    pass


def _ack_error(response: httpx.Response, correlation: str) -> str | None:
    try:
        ack = response.json()
    except ValueError as exc:
        return f"ack-decode: {exc}"
    if not isinstance(ack, dict) or ack.get("status") != "ack":
        return f"ack-status: {ack.get('status') if isinstance(ack, dict) else ack!r}"
    if ack.get("correlation_id") != correlation:
        return f"ack-corr-mismatch: {ack.get('correlation_id')}"
    return None
