"""Errors raised by every log backend; each backend maps its driver's errors to these at one boundary.

    LogError
    ├── AppendConflictError   the log's end was not the ``expected`` position; nothing was written
    ├── LogUnavailableError   the server cannot be reached or has no leader yet (retriable)
    ├── LogClosedError        the log was used after ``close()``
    └── LogCorruptError       a stored record cannot be read back
"""

from __future__ import annotations

__all__ = ["AppendConflictError", "LogClosedError", "LogCorruptError", "LogError", "LogUnavailableError"]


class LogError(Exception):
    retriable: bool = False


class AppendConflictError(LogError):
    def __init__(self, partition: str, expected: int, actual: int) -> None:
        self.partition = partition
        self.expected = expected
        self.actual = actual
        super().__init__(f"log {partition!r} ends at offset {actual}, expected {expected}; nothing was written")


class LogUnavailableError(LogError):
    retriable = True


class LogClosedError(LogError):
    pass


class LogCorruptError(LogError):
    def __init__(self, partition: str, offset: int, reason: str) -> None:
        self.partition = partition
        self.offset = offset
        self.reason = reason
        super().__init__(f"record {partition}@{offset} is unreadable: {reason}")
