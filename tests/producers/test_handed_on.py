"""A projector no write waits for (the webhook outbox) is handed this node's records by the writer, so it need
not read back and decode what this process has just written; once stopped, it reads the log as before."""

from __future__ import annotations

from producers.input.commands import parse_create
from producers.runtime.node import Node
from schemas import now_ts


async def test_the_webhook_outbox_is_handed_the_records(node: Node) -> None:
    outbox = node.webhooks.runner  # not started (only serve starts it): nothing but the writer moves it
    await outbox.catch_up()
    stop = node.writer.hand_on(outbox)
    first = await node.service.store(parse_create({"title": "one", "content": "c"}, now=now_ts()), agent_id="a")
    assert outbox.position == first.write.clock()
    stop()
    second = await node.service.store(parse_create({"title": "two", "content": "c"}, now=now_ts()), agent_id="a")
    assert outbox.position == first.write.clock() != second.write.clock()
    await outbox.catch_up()  # what it was not handed it reads, as before
    assert outbox.position == second.write.clock()
