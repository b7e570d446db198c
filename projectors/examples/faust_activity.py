"""A faust-streaming consumer of the ai-memory Kafka topic: per-namespace activity counts, signatures checked.

It shows what any Kafka-native consumer does with our events: the record value is the canonical envelope JSON
(never re-encoded), the ``Ai-Memory-Signature`` header is the base64 Ed25519 signature over exactly those
bytes, and ``schemas.verify`` with a :class:`schemas.Keyring` of trusted ``<key-id>.pub`` files checks it.
Events that do not verify are counted as rejected and never counted as activity.

The view is a faust Table (``activity``: namespace → verified events), keyed like the topic (the record key is
the namespace), with its changelog in Kafka. Every half second the counts are written, as JSON, to
``$AI_MEMORY_ACTIVITY_OUT`` if set.

Run it in a venv of its own: faust pins ``click<8.4``, which the main install cannot share, and only
``schemas`` (pure Python + pynacl) is imported from this project, so the repository goes on ``PYTHONPATH``::

    python -m venv .venv-faust && .venv-faust/bin/pip install 'faust-streaming>=0.15' 'pynacl>=1.5'
    PYTHONPATH=. AI_MEMORY_KAFKA=kafka://127.0.0.1:9092 AI_MEMORY_TOPIC=ai-memory \\
        AI_MEMORY_KEYS=~/.ai-memory/keys .venv-faust/bin/python projectors/examples/faust_activity.py worker -l warn

``AI_MEMORY_PARTITIONS`` (default 8) must equal the topic's partition count.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from pathlib import Path
from typing import Any

import faust

from schemas import Keyring, SchemaError, SignedEvent, verify

BROKER = os.environ.get("AI_MEMORY_KAFKA", "kafka://127.0.0.1:9092")
TOPIC = os.environ.get("AI_MEMORY_TOPIC", "ai-memory")
KEYS = Path(os.environ.get("AI_MEMORY_KEYS", "~/.ai-memory/keys")).expanduser()
OUT = os.environ.get("AI_MEMORY_ACTIVITY_OUT")
APP_ID = os.environ.get("AI_MEMORY_FAUST_APP", "ai-memory-activity")  # the consumer group, and topic prefix
PARTITIONS = int(os.environ.get("AI_MEMORY_PARTITIONS", "8"))  # must match the topic (the table is co-partitioned)
SIGNATURE_HEADER = "Ai-Memory-Signature"

# tansu holds a consumer group's first join for half the session timeout (faust's default, 60 s, means a lone
# worker waits 30 s before it consumes anything); 10 s is still far above the 3 s heartbeat.
SESSION_TIMEOUT = float(os.environ.get("AI_MEMORY_FAUST_SESSION_TIMEOUT_S", "10"))

app = faust.App(APP_ID, broker=BROKER, store="memory://", web_enabled=False,
                topic_partitions=PARTITIONS, consumer_auto_offset_reset="earliest",
                broker_session_timeout=SESSION_TIMEOUT)
events_topic = app.topic(TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         partitions=PARTITIONS)
activity = app.Table("activity", default=int, partitions=PARTITIONS)
keyring = Keyring.from_dirs(KEYS)
rejected: dict[str, int] = {}


def check(value: bytes, headers: dict[str, bytes]) -> SignedEvent:
    """The signed event in a record, verified against the trusted keys.

    Raises:
        SchemaError: the signature header is missing or malformed, or does not verify.
    """
    try:
        signature = base64.b64decode(headers[SIGNATURE_HEADER], validate=True)
    except (KeyError, binascii.Error) as exc:
        msg = f"no valid {SIGNATURE_HEADER} header"
        raise SchemaError(msg) from exc
    event = SignedEvent.from_parts(value, signature)
    verify(event, keyring)
    return event


def _headers(event: Any) -> dict[str, bytes]:
    raw = event.headers or {}
    items = raw.items() if isinstance(raw, dict) else raw
    return {str(k): bytes(v) for k, v in items}


@app.agent(events_topic)  # type: ignore[untyped-decorator]  # faust ships no type hints
async def count_activity(stream: Any) -> None:
    async for event in stream.events():
        try:
            signed = check(bytes(event.value), _headers(event))
        except SchemaError as exc:
            namespace = (event.key or b"?").decode(errors="replace")
            rejected[namespace] = rejected.get(namespace, 0) + 1
            print(f"rejected {event.message.partition}@{event.message.offset}: {exc}", file=sys.stderr)
            continue
        activity[signed.envelope.namespace] += 1


@app.timer(interval=0.5)  # type: ignore[untyped-decorator]
async def write_snapshot() -> None:
    if OUT is None:
        return
    snapshot = {"activity": dict(activity.items()), "rejected": rejected}
    scratch = Path(OUT + ".tmp")
    scratch.write_text(json.dumps(snapshot, sort_keys=True))
    os.replace(scratch, OUT)


if __name__ == "__main__":
    app.main()
