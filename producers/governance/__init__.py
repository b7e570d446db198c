"""Governance of a shared node: namespace standards and their policies, the write gate (levels, modes,
quotas), pending actions with their approvals, and the agent registry — every decision an event."""

from __future__ import annotations

from producers.governance.config import GovernanceConfig
from producers.governance.gate import GatedAction, Verdict, WriteGate
from producers.governance.policy import MODES, Approver, GovernancePolicy, parse_policy
from producers.governance.service import AGENTS_NAMESPACE, REMEMBER, Decision, GovernanceService

__all__ = ["AGENTS_NAMESPACE", "MODES", "REMEMBER", "Approver", "Decision", "GatedAction", "GovernanceConfig",
           "GovernancePolicy", "GovernanceService", "Verdict", "WriteGate", "parse_policy"]
