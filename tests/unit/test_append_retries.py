"""A writer's first try of an append tells the log its events are new; a retry does not, so a first try that
was stored although it failed is found, not stored twice."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from infra.log import Clock, LogPosition, LogUnavailableError
from infra.log.embedded import EmbeddedLog
from producers.write.writer import EventWriter
from schemas import SignedEvent, load_or_create_node_key
from schemas.events import MemoryDeleted


class StoredButUnacknowledged(EmbeddedLog):
    """Stores the first append, then fails it as a lost acknowledgement would; records each try's ``new``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, partition="p")
        self.tries: list[bool] = []

    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        self.tries.append(new)
        positions = await super().append(events, expected=expected, new=new)
        if len(self.tries) == 1:
            raise LogUnavailableError("the acknowledgement was lost")
        return positions


async def test_a_retry_is_not_new_and_finds_what_its_first_try_stored(tmp_path: Path) -> None:
    log = StoredButUnacknowledged(tmp_path / "log.db")
    key = load_or_create_node_key(tmp_path / "keys", "k")
    writer = EventWriter(log, key, node_id="k", runners=[])
    result = await writer.append([(MemoryDeleted(id="m1"), "p")], actor="a")
    assert log.tries == [True, False]
    assert [p.offset for p in result.positions] == [1]
    assert len(await log.read()) == 1
    await log.close()
