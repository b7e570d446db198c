"""The original's Form 5 confidence calibration (its #758): shadow observations on recall, and the report.

With ``AI_MEMORY_CONFIDENCE_SHADOW=1`` (sampled at ``AI_MEMORY_CONFIDENCE_SHADOW_SAMPLE_RATE``, 0..1, default 1),
each recall also records, for every memory it returned, the caller's confidence beside the one the original's
``confidence::derive`` gives (source age, atom derivation, corroborating links, a 0.5 baseline, a 30-day
half-life). Shadow mode never changes a memory, as in the original: the record is a signed
``confidence.shadow_observed`` event in the same append as the recall's touch, so it reaches every node and
survives a rebuild. ``memory_calibrate_confidence`` groups the observations of the last ``days`` by (namespace,
source): count, median, mean and ten buckets of the derived values.
"""

from __future__ import annotations

import math
import os
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.log import EventLog
from producers.memory.log_scan import envelopes_of
from schemas import Memory, parse_ts
from schemas.events import ConfidenceShadowObserved, ConfidenceSignals, ShadowObservation

__all__ = ["DEFAULT_WINDOW_DAYS", "ShadowSampler", "calibrate", "derive"]

ENV_SHADOW, ENV_SAMPLE_RATE = "AI_MEMORY_CONFIDENCE_SHADOW", "AI_MEMORY_CONFIDENCE_SHADOW_SAMPLE_RATE"
DEFAULT_WINDOW_DAYS = 30
DEFAULT_HALF_LIFE_DAYS = 30.0
NO_BASELINE = 0.5  # the original's value "when no calibrated baseline exists yet"


def derive(source_age_days: float, *, atom_derivation: bool, corroboration: int,
           baseline: float = NO_BASELINE, half_life_days: float = DEFAULT_HALF_LIFE_DAYS
           ) -> tuple[float, ConfidenceSignals]:
    """The original's derivation, term for term: a base of 0.5, +0.1 for an atom, +0.05·log10(1 + links),
    minus an age penalty, blended with the baseline by the freshness factor (halves every half-life)."""
    age = max(source_age_days, 0.0)
    half_life = max(half_life_days, 2.220446049250313e-16)
    decay_rate = math.log(2) / half_life
    freshness = min(max(math.exp(-age * decay_rate), 0.0), 1.0)
    base = 0.5 + (0.1 if atom_derivation else 0.0) + 0.05 * max(math.log10(1 + max(corroboration, 0)), 0.0)
    base = min(max(base - 0.02 * age * decay_rate, 0.0), 1.0)
    anchor = min(max(baseline, 0.0), 1.0)
    value = min(max(base * freshness + anchor * (1.0 - freshness), 0.0), 1.0)
    return value, ConfidenceSignals(age, atom_derivation, max(corroboration, 0), freshness, anchor)


@dataclass(frozen=True)
class ShadowSampler:
    """Decides whether a recall is observed and builds its event. ``memories`` and ``links_from`` read the
    node's read model (the memories by id; the links whose source is one of the ids)."""

    memories: Callable[[list[str]], list[Memory]]
    links_from: Callable[[list[str]], Sequence[Any]]
    sample_rate: float = 1.0
    draw: Callable[[], float] = random.random

    @classmethod
    def from_env(cls, memories: Callable[[list[str]], list[Memory]],
                 links_from: Callable[[list[str]], Sequence[Any]]) -> ShadowSampler | None:
        """The sampler the environment asks for (the original's variables), or None when shadow mode is off."""
        if os.environ.get(ENV_SHADOW) != "1":
            return None
        try:
            rate = min(max(float(os.environ.get(ENV_SAMPLE_RATE, "1")), 0.0), 1.0)
        except ValueError:
            rate = 1.0
        return cls(memories, links_from, rate)

    def observe(self, ids: list[str], at: str) -> ConfidenceShadowObserved | None:
        if not ids or self.draw() >= self.sample_rate:
            return None
        when = parse_ts(at)
        corroboration: dict[str, int] = {}
        for link in self.links_from(ids):
            corroboration[link.source_id] = corroboration.get(link.source_id, 0) + 1
        rows = []
        for memory in self.memories(ids):
            age = (when - parse_ts(memory.created_at)).total_seconds() / 86400
            value, signals = derive(age, atom_derivation=bool(memory.metadata.get("atom_of")),
                                    corroboration=corroboration.get(memory.id, 0))
            rows.append(ShadowObservation(memory.id, memory.namespace, memory.source, memory.confidence, value,
                                          signals))
        return ConfidenceShadowObserved(at, rows) if rows else None


def _baseline(namespace: str, source: str, values: list[float]) -> dict[str, Any]:
    buckets = [0] * 10
    for v in values:
        buckets[min(int(min(max(v, 0.0), 1.0) * 10), 9)] += 1
    return {"namespace": namespace, "source": source, "count": len(values), "median": statistics.median(values),
            "mean": statistics.fmean(values), "buckets": buckets}


async def calibrate(log: EventLog, days: int, now: datetime) -> dict[str, Any]:
    """The original's ``CalibrationReport`` over the observations at or after ``now - days``."""
    since = now - timedelta(days=days)
    groups: dict[tuple[str, str], list[float]] = {}
    async for envelope in envelopes_of(log, ConfidenceShadowObserved.TYPE):
        if parse_ts(str(envelope.payload.get("at") or envelope.ts)) < since:
            continue
        for row in envelope.payload.get("observations", []):
            groups.setdefault((row["namespace"], row["source"]), []).append(float(row["derived_confidence"]))
    baselines = [_baseline(ns, src, values) for (ns, src), values in sorted(groups.items())]
    return {"window_days": days, "total_observations": sum(b["count"] for b in baselines), "baselines": baselines}

