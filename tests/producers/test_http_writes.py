"""One socket write per HTTP answer (producers/runtime/http_writes.py), on a real socket pair and on a real
uvicorn server: writes of one loop turn reach the peer together, in order, and nothing is lost on close."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from producers.runtime.http_writes import HOLD_LIMIT, CoalescedWrites, CoalescingHttpToolsProtocol


@pytest.fixture
async def pair() -> AsyncIterator[tuple[CoalescedWrites, socket.socket]]:
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    yield CoalescedWrites(transport, loop), peer
    transport.abort()
    peer.close()


def _received(peer: socket.socket) -> bytes:
    try:
        return peer.recv(1 << 20)
    except BlockingIOError:
        return b""


async def test_writes_of_one_turn_go_out_together(pair: tuple[CoalescedWrites, socket.socket]) -> None:
    writes, peer = pair
    head = bytearray(b"HTTP/1.1 200 OK\r\n\r\n")
    writes.write(head)
    head[:4] = b"XXXX"  # a reused buffer does not change what was written
    writes.write(b"")
    writes.write(b"body")
    assert _received(peer) == b""  # held until the loop turns (a plain transport sends the head at once)
    assert writes.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert _received(peer) == b"HTTP/1.1 200 OK\r\n\r\nbody"


async def test_close_sends_what_is_held(pair: tuple[CoalescedWrites, socket.socket]) -> None:
    writes, peer = pair
    writes.writelines([b"a", b"b"])
    writes.close()
    await asyncio.sleep(0.01)
    assert _received(peer) == b"ab"
    assert writes.is_closing()


async def test_abort_drops_what_is_held(pair: tuple[CoalescedWrites, socket.socket]) -> None:
    writes, peer = pair
    writes.write(b"never")
    writes.abort()
    await asyncio.sleep(0.01)
    assert _received(peer) == b""


async def test_a_large_answer_goes_on_at_once(pair: tuple[CoalescedWrites, socket.socket]) -> None:
    writes, peer = pair
    writes.write(b"x" * HOLD_LIMIT)
    assert _received(peer)[:1] == b"x"  # handed to the transport without waiting for the loop


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"a":', "more_body": True})
    await send({"type": "http.response.body", "body": b"1}"})


async def test_uvicorn_answers_through_it() -> None:
    server = uvicorn.Server(uvicorn.Config(_hello, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
                                           http=CoalescingHttpToolsProtocol))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # one keep-alive connection, several answers
                r = await client.post("/x", json={})
                assert r.status_code == 201 and r.json() == {"a": 1}
    finally:
        server.should_exit = True
        await serving
