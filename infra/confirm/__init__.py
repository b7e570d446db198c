"""Confirmations: each node says how far its projectors have applied the log; quorum writes count them.

Choose a backend only through :func:`open_confirmations` (it follows the log's backend).
"""

from __future__ import annotations

from infra.confirm.base import Confirmation, Confirmations, LocalConfirmations, follow
from infra.confirm.factory import open_confirmations

__all__ = ["Confirmation", "Confirmations", "LocalConfirmations", "follow", "open_confirmations"]
