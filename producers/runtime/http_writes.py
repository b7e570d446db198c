"""One socket write per HTTP answer: uvicorn writes an answer's head and its body with a write each, and on
uvloop each write is a system call at once (two per answer; on loopback the sender's call also does the
receiver's TCP work and wakes it). :class:`CoalescingHttpToolsProtocol` is uvicorn's httptools protocol on a
transport that holds the writes of one turn of the event loop and hands them on together, as one ``writev``,
when the loop next runs its ready callbacks: the head and body of an answer, sent back to back, go out as one.

Nothing else changes: the bytes and their order are the same, a close or ``write_eof`` sends what is held
first, an abort drops it (as an abort drops the transport's own buffer), and flow control stays the
transport's own (uvicorn's pause and resume act on it directly; more than :data:`HOLD_LIMIT` bytes in one
turn go on at once).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HOLD_LIMIT", "CoalescedWrites", "CoalescingHttpToolsProtocol"]

#: Bytes held at most before they go on at once (uvloop's default high-water mark: beyond it the transport
#: would pause the writer anyway).
HOLD_LIMIT = 64 * 1024


class CoalescedWrites(asyncio.Transport):
    """``transport`` with the writes of one event loop turn sent together (see the module's docstring)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
            self._held_bytes = 0
        self._held.append(bytes(data))  # a caller may reuse a mutable buffer once write returns
        self._held_bytes += len(data)
        if self._held_bytes >= HOLD_LIMIT:
            self._flush()  # a large answer streamed without a pause: on to the transport, and its flow control

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if not self._held:
            return
        held, self._held, self._held_bytes = self._held, [], 0
        if not self._transport.is_closing():
            self._transport.writelines(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    # Everything else is the transport's own.

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol, writing each answer with one system call."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport, self.loop))
