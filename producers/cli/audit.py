"""The audit behind ``ai-memory verify`` (and ``rebuild`` on a Postgres read model): every record's signature,
every writer's hash chain, and optionally a checkpoint kept outside the log.

A record that is not an event, or whose signature does not verify, is *bad*: reported and left out of the chain
audit (a forged event cannot fill a gap). The chain audit (:class:`schemas.ChainAudit`) reports *breaks*:
missing seqs, wrong links, duplicates, reorders. A checkpoint file holds each epoch's last seq and hash from an
earlier clean run; a log that since lost an epoch's tail (which no chain can show) breaks it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.errors import ValidationError
from projectors import unreadable_reason
from schemas import ChainAudit, ChainBreak, Keyring, SchemaError, verify

if TYPE_CHECKING:
    from collections.abc import Callable

    from infra.log import EventLog, LogRecord

__all__ = ["LogAudit", "audit_log", "read_checkpoint", "write_checkpoint"]


@dataclass
class LogAudit:
    checked: int = 0
    bad: list[dict[str, Any]] = field(default_factory=list)
    chain: ChainAudit = field(default_factory=ChainAudit)
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "bad": self.bad,
            "ok": self.ok,
            "chain": {**self.chain.summary(), "breaks": [b.to_dict() for b in self.breaks]},
        }


def _bad(record: LogRecord, keyring: Keyring) -> str | None:
    if record.unreadable is not None:
        return unreadable_reason(record)
    try:
        verify(record.event, keyring)
    except SchemaError as exc:
        return str(exc)
    return None


async def audit_log(
    log: EventLog,
    keyring: Keyring,
    *,
    checkpoint: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LogAudit:
    """Read all of ``log`` once; ``progress(n)`` after each batch of n records."""
    audit = LogAudit(chain=ChainAudit(checkpoint=checkpoint))
    position: dict[str, int] = {}
    while batch := await log.read(after=position, limit=2000):
        for record in batch:
            position[record.partition] = record.offset
            reason = _bad(record, keyring)
            if reason is None:
                audit.chain.add(record.partition, record.offset, record.event)
            else:
                audit.bad.append(
                    {
                        "partition": record.partition,
                        "offset": record.offset,
                        "event_id": record.event.event_id,
                        "error": reason,
                    }
                )
        audit.checked += len(batch)
        if progress is not None:
            progress(len(batch))
    audit.breaks = audit.chain.finish()
    return audit


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The tips saved by an earlier clean run; None when the file does not exist yet."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tips = data["tips"]
        if not isinstance(tips, dict) or not all(
            isinstance(t, dict) and isinstance(t.get("seq"), int) and isinstance(t.get("hash"), str)
            for t in tips.values()
        ):
            raise TypeError("tips must map origin/epoch to {seq, hash}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"checkpoint {path} is not a verify checkpoint: {exc}") from None
    return tips


def write_checkpoint(path: Path, audit: LogAudit, *, log_url: str) -> None:
    """Save each epoch's tip, to keep where the log cannot reach (another host, a signed commit, WORM storage)."""
    body = {"log": log_url, "checked": audit.checked, "tips": audit.chain.tips()}
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    scratch.replace(path)
