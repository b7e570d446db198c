"""The WAN proxy on a real TCP echo server: it adds the round trip it is given, a cut closes open connections
and refuses new ones, and a heal lets connections through again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.cluster.wan_proxy import DelayProxy

DELAY_MS = 80.0


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def proxy(echo_port: int, tmp_path: Path) -> Iterator[DelayProxy]:
    with DelayProxy(f"127.0.0.1:{echo_port}", DELAY_MS, tmp_path) as proxy:
        yield proxy


async def _round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    started = time.perf_counter()
    writer.write(b"ping")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    return time.perf_counter() - started


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionError:
        return True


async def test_it_adds_the_round_trip_cuts_and_heals(proxy: DelayProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _round_trip(reader, writer) >= DELAY_MS / 1000
    await asyncio.to_thread(proxy.cut)
    assert proxy.is_cut and await _closed(reader)  # the open connection is severed
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _closed(reader)  # and a new one is closed on arrival
    writer.close()
    await asyncio.to_thread(proxy.heal)
    assert not proxy.is_cut
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await _round_trip(reader, writer) >= DELAY_MS / 1000
    writer.close()
