"""Confirmations on NATS core subjects ``<stream prefix>-confirm.<node>``, beside (not inside) the stream.

Core pub/sub, not JetStream: confirmations are latest-wins and repeated, so storing them would only cost
disk and replication. The subject sits outside the stream's ``<prefix>.>`` so the stream never captures one.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.client import Client as NatsClient

from infra.confirm.base import Confirmation, Confirmations

__all__ = ["NatsConfirmations", "node_token"]

logger = logging.getLogger(__name__)
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_-]")


def node_token(node: str) -> str:
    """A node id made into one legal subject token."""
    return _TOKEN_BAD.sub("_", node) or "_"


class NatsConfirmations(Confirmations):
    def __init__(self, nc: NatsClient, subject: str) -> None:
        self._nc = nc
        self._subject = subject

    async def close(self) -> None:
        """Nothing to release: the connection belongs to the log, which closes it."""

    async def publish(self, confirmation: Confirmation) -> None:
        if self._nc.is_closed:
            return
        # While reconnecting the client buffers; a dropped confirmation is repeated by the publisher anyway.
        with contextlib.suppress(nats.errors.Error, OSError):
            await self._nc.publish(f"{self._subject}.{node_token(confirmation.node)}", confirmation.encode())

    async def subscribe(self) -> AsyncIterator[Confirmation]:
        sub = await self._nc.subscribe(f"{self._subject}.*")
        try:
            async for msg in sub.messages:
                if (confirmation := Confirmation.decode(msg.data)) is not None:
                    yield confirmation
        finally:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()
