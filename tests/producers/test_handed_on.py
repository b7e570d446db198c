"""A node's other projectors (the vector index, the webhook outbox) follow its memory projector: they are handed
each batch it applies, judged once, so they need not read back and decode the records themselves; once no longer
led, they read the log as before."""

from __future__ import annotations

from producers.input.commands import parse_create
from producers.runtime.node import Node
from schemas import now_ts


async def test_the_webhook_outbox_is_handed_the_records(node: Node) -> None:
    outbox = node.webhooks.runner  # not started (only serve starts it): nothing but its leader moves it
    await outbox.catch_up()
    stop = node.runner.lead(outbox)
    first = await node.service.store(parse_create({"title": "one", "content": "c"}, now=now_ts()), agent_id="a")
    assert outbox.position == first.write.clock()
    stop()
    second = await node.service.store(parse_create({"title": "two", "content": "c"}, now=now_ts()), agent_id="a")
    assert outbox.position == first.write.clock() != second.write.clock()
    await outbox.catch_up()  # what it was not handed it reads, as before
    assert outbox.position == second.write.clock()
