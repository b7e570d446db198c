"""``open_confirmations(log)``: the only place that chooses a confirmation channel, as ``open_log`` chooses a
log: the channel travels beside the log it confirms."""

from __future__ import annotations

from infra.confirm.base import Confirmations, LocalConfirmations
from infra.log.base import EventLog

__all__ = ["open_confirmations"]


def open_confirmations(log: EventLog) -> Confirmations:
    """The confirmation channel that goes with ``log``: NATS subjects beside a JetStream stream, a topic beside
    a Kafka topic, else local. A regional log's channel is its region's: quorum counts the region's nodes."""
    from infra.log.jetstream import JetStreamLog
    from infra.log.kafka import KafkaLog
    from infra.log.regional import RegionalLog

    if isinstance(log, JetStreamLog | RegionalLog):
        from infra.confirm.nats import NatsConfirmations

        return NatsConfirmations(log.client, log.confirm_subject)
    if isinstance(log, KafkaLog):
        from infra.confirm.kafka import KafkaConfirmations

        return KafkaConfirmations(log.target, log.producer)
    return LocalConfirmations()
