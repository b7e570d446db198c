from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.log import EventLog, LogConfig, open_log
from infra.log.embedded import EmbeddedLog
from tests.contract.log_contract import LogContract, RawAppend, read_all
from tests.factories import node_key, signed


class TestEmbeddedLog(LogContract):
    @pytest.fixture
    async def log(self, tmp_path: Path) -> AsyncIterator[EventLog]:
        log = await open_log(LogConfig(data_dir=tmp_path))
        assert isinstance(log, EmbeddedLog)
        yield log
        await log.close()

    @pytest.fixture
    def raw_append(self, log: EventLog) -> RawAppend:
        assert isinstance(log, EmbeddedLog)

        async def append(body: bytes, signature: bytes | None) -> None:
            db = sqlite3.connect(log.path)
            db.execute("INSERT INTO events (event_id, body, signature) VALUES (?, ?, ?)",
                       (uuid.uuid4().hex, body, signature or b""))
            db.commit()
            db.close()

        return append


class TestEmbeddedLogFile:
    async def test_restart_loses_nothing_acknowledged(self, tmp_path: Path) -> None:
        key = node_key(tmp_path)
        log = EmbeddedLog(tmp_path / "log.db")
        events = [signed(key) for _ in range(20)]
        await log.append(events)
        await log.close()
        again = EmbeddedLog(tmp_path / "log.db")
        assert [r.event.event_id for r in await read_all(again)] == [e.event_id for e in events]
        await again.close()

    async def test_second_process_handle_sees_appends(self, tmp_path: Path) -> None:
        key = node_key(tmp_path)
        writer = EmbeddedLog(tmp_path / "log.db")
        reader = EmbeddedLog(tmp_path / "log.db")
        await writer.append([signed(key)])
        await reader.wait_for_append({"ai-memory": 0}, timeout=1.0)
        assert len(await read_all(reader)) == 1
        await writer.close()
        await reader.close()

    async def test_dedup_survives_restart(self, tmp_path: Path) -> None:
        key = node_key(tmp_path)
        event = signed(key)
        log = EmbeddedLog(tmp_path / "log.db")
        (first,) = await log.append([event])
        await log.close()
        log = EmbeddedLog(tmp_path / "log.db")
        assert await log.append([event]) == [first]
        await log.close()
