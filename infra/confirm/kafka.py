"""Confirmations on a Kafka topic beside the log's topic (``<topic>-confirm``, one partition).

Every node produces its latest applied clock there and reads the topic from its end: the same latest-wins,
repeated facts as on NATS, so a lost or duplicated record is harmless and the topic may be compacted or short-
lived. The topic is created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from infra.confirm.base import Confirmation, Confirmations
from infra.log.errors import LogError
from infra.log.kafka import KafkaLog, KafkaTarget

__all__ = ["KafkaConfirmations"]

logger = logging.getLogger(__name__)


class KafkaConfirmations(Confirmations):
    def __init__(self, target: KafkaTarget, producer: AIOKafkaProducer, *, timeout: float = 5.0) -> None:
        self._target = replace(target, topic=f"{target.topic}-confirm", partitions=1)
        self._producer = producer
        self._timeout = timeout
        self._ready = asyncio.Lock()
        self._created = False

    @property
    def topic(self) -> str:
        return self._target.topic

    async def _ensure_topic(self) -> None:
        async with self._ready:
            if not self._created:
                await KafkaLog.ensure_topic(self._target, self._timeout)
                self._created = True

    async def publish(self, confirmation: Confirmation) -> None:
        # Best effort: the publisher repeats its latest clock, so an outage only delays a quorum.
        with contextlib.suppress(KafkaError, OSError, TimeoutError, LogError):
            await self._ensure_topic()
            await asyncio.wait_for(self._producer.send_and_wait(self.topic, confirmation.encode()), self._timeout)

    async def subscribe(self) -> AsyncIterator[Confirmation]:
        await self._ensure_topic()
        consumer = AIOKafkaConsumer(bootstrap_servers=self._target.bootstrap, enable_auto_commit=False,
                                    client_id="ai-memory-confirm")
        await consumer.start()
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_end(partition)
            async for record in consumer:
                if record.value is not None and (confirmation := Confirmation.decode(record.value)) is not None:
                    yield confirmation
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    async def close(self) -> None:
        """Nothing to release: the producer belongs to the log, which closes it."""
