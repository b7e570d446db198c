"""Confidence events: the original's Form 5 shadow-mode telemetry (its #758), one event per sampled recall.

Shadow mode never changes a memory: it records, beside the confidence the caller gave, the value the original's
derivation would have given, so an operator can calibrate before trusting it. The projectors apply nothing for
it; ``memory_calibrate_confidence`` reads these events from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["ConfidenceShadowObserved", "ConfidenceSignals", "ShadowObservation"]


@dataclass(frozen=True, slots=True)
class ConfidenceSignals:
    """The inputs of the derivation (the original's ``ConfidenceSignals``, same names)."""

    source_age_days: float
    atom_derivation: bool
    prior_corroboration_count: int
    freshness_factor: float
    baseline_per_source: float


@dataclass(frozen=True, slots=True)
class ShadowObservation:
    memory_id: str
    namespace: str
    source: str
    caller_confidence: float
    derived_confidence: float
    signals: ConfidenceSignals
    recall_outcome: str | None = None


@dataclass(frozen=True, slots=True)
class ConfidenceShadowObserved:
    """A recall at ``at`` returned these memories; each row pairs the caller's confidence with the derived one."""

    TYPE: ClassVar[str] = "confidence.shadow_observed"
    at: str
    observations: list[ShadowObservation]
