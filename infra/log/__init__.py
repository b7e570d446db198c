"""Log adapters behind one contract. Choose a backend only through :func:`open_log`."""

from __future__ import annotations

from infra.log.base import (
    UNREADABLE_TYPE,
    Clock,
    EventLog,
    LogPosition,
    LogRecord,
    clock_covers,
    merge_clocks,
    unreadable_record,
)
from infra.log.copy import CopyResult, copy_log
from infra.log.errors import (
    AppendConflictError,
    LogClosedError,
    LogCorruptError,
    LogError,
    LogUnavailableError,
)
from infra.log.factory import LogConfig, open_log, redact_url

__all__ = [
    "UNREADABLE_TYPE",
    "AppendConflictError",
    "Clock",
    "CopyResult",
    "EventLog",
    "LogClosedError",
    "LogConfig",
    "LogCorruptError",
    "LogError",
    "LogPosition",
    "LogRecord",
    "LogUnavailableError",
    "clock_covers",
    "copy_log",
    "merge_clocks",
    "open_log",
    "redact_url",
    "unreadable_record",
]
