"""Tampering with a JetStream log shows as it does on the embedded one: a stream replaced by one without an event breaks
its writer's hash chain (``verify``, ``rebuild``), and a message that is not an event is reported and skipped."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nats
import pytest

from infra.cluster import NatsServer
from infra.log.jetstream import JetStreamLog, subject_for
from producers.cli.main import main
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from schemas import now_ts
from tests.contract.log_contract import read_all

pytestmark = pytest.mark.nats


@pytest.fixture(autouse=True)
def _no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")


def run(capsys: pytest.CaptureFixture[str], data: Path, log_url: str, *args: str) -> tuple[int, str]:
    code = main([args[0], "--data-dir", str(data), "--log", log_url, *args[1:]])
    return code, capsys.readouterr().out


async def _write(data: Path, log_url: str) -> None:
    """One node run (one chain epoch): store, delete, store, store."""
    async with await Node.open(NodeConfig(data_dir=data, log_url=log_url)) as node:
        await node.start()
        ids = []
        for title in ("secret", "after", "last"):
            stored = await node.service.store(
                parse_create({"title": title, "content": "x"}, now=now_ts()), agent_id="a"
            )
            ids.append(stored.memory.id)
            if title == "secret":
                await node.service.delete(stored.memory.id, agent_id="a")


async def _tamper(server: NatsServer, stream: str) -> None:
    """The stream refuses message deletes, so replace it: every event again (the same signed bytes) but the
    memory.deleted one, then a message that is not an event."""
    log = await JetStreamLog.connect(server.url, stream=stream)
    events = [r.event for r in await read_all(log)]
    await log.close()
    assert [e.envelope.type for e in events][1] == "memory.deleted"
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await js.delete_stream(stream)
    log = await JetStreamLog.connect(server.url, stream=stream)
    await log.append([e for e in events if e.envelope.type != "memory.deleted"])
    await log.close()
    await js.publish(
        subject_for(f"aimem.{stream}", "junk"), b"\x00 not an event", headers={"Nats-Msg-Id": uuid.uuid4().hex}
    )
    await nc.close()


def test_a_stream_missing_an_event_breaks_the_chain_and_junk_is_skipped(
    tmp_path: Path, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = f"tamper-{uuid.uuid4().hex[:8]}"
    log_url = f"{nats_server.url}/{stream}"
    asyncio.run(_write(tmp_path, log_url))
    code, out = run(capsys, tmp_path, log_url, "verify", "--quiet", "--json")
    assert code == 0 and json.loads(out)["chain"]["chained"] == 4

    asyncio.run(_tamper(nats_server, stream))
    code, out = run(capsys, tmp_path, log_url, "verify", "--quiet", "--json")
    report = json.loads(out)
    assert code == 8 and report["checked"] == 4
    assert [(b["kind"], b["seq"]) for b in report["chain"]["breaks"]] == [("missing", 2)]
    assert [b["error"].split(":")[0] for b in report["bad"]] == ["unreadable record"]

    code, out = run(capsys, tmp_path, log_url, "rebuild", "--quiet", "--json")
    assert code == 8 and json.loads(out)["refused"] is True
    code, out = run(capsys, tmp_path, log_url, "rebuild", "--quiet", "--json", "--allow-breaks")
    assert code == 0 and len(json.loads(out)["chain_breaks"]) == 1
    code, out = run(capsys, tmp_path, log_url, "stats", "--json")
    assert code == 0 and json.loads(out)["projector"]["rejected_events"] == 1
