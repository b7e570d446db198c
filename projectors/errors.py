"""Errors of the read side.

    ProjectorError
    ├── ProjectionStoppedError  the runner died; ``cause`` holds why (it is re-raised to waiters)
    ├── WaitTimeoutError        a read-your-writes wait did not see the position in time
    ├── ReadModelError          the read-model database failed
    │   └── ReadModelBusyError  another process is applying to a shared read model right now
    └── ChainBrokenError        a replay found the log breaking a writer's hash chain (``breaks`` says where)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas import ChainBreak

__all__ = ["ChainBrokenError", "ProjectionStoppedError", "ProjectorError", "ReadModelBusyError", "ReadModelError",
           "WaitTimeoutError"]


class ProjectorError(Exception):
    pass


class ProjectionStoppedError(ProjectorError):
    def __init__(self, cause: BaseException | None) -> None:
        self.cause = cause
        super().__init__(f"projector stopped: {cause!r}" if cause else "projector is not running")


class WaitTimeoutError(ProjectorError):
    def __init__(self, wanted: dict[str, int], reached: dict[str, int], timeout: float) -> None:
        self.wanted = wanted
        self.reached = reached
        self.timeout = timeout
        super().__init__(f"read model reached {reached} but not {wanted} within {timeout:g}s")


class ReadModelError(ProjectorError):
    pass


class ReadModelBusyError(ReadModelError):
    """Another process holds a shared read model's write lock: it is applying, most likely these very records.
    Nothing was changed; look again shortly instead of waiting for the lock."""


class ChainBrokenError(ProjectorError):
    def __init__(self, breaks: list[ChainBreak]) -> None:
        self.breaks = breaks
        super().__init__(f"the log breaks a writer's hash chain in {len(breaks)} place(s), first: {breaks[0]}")
