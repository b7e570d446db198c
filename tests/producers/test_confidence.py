"""``memory_calibrate_confidence`` and the confidence shadow mode it reports on (the original's Form 5, #758):
the derivation's terms, the observations recorded as signed events on recall, and the report over HTTP."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from producers.http import create_app
from producers.memory.confidence import ShadowSampler, derive
from producers.runtime.node import Node, NodeConfig
from schemas.events import ConfidenceShadowObserved

ALICE = {"X-Agent-Id": "alice"}


def test_derive_follows_the_original_formula() -> None:
    assert derive(0, atom_derivation=False, corroboration=0)[0] == pytest.approx(0.5)
    assert derive(0, atom_derivation=True, corroboration=0)[0] == pytest.approx(0.6)
    assert derive(0, atom_derivation=False, corroboration=9)[0] == pytest.approx(0.55)
    # One half-life old: freshness 0.5, a penalty of 0.02·ln 2, blended half and half with the 0.5 baseline.
    value, signals = derive(30, atom_derivation=False, corroboration=0)
    assert signals.freshness_factor == pytest.approx(0.5)
    assert value == pytest.approx((0.5 - 0.02 * math.log(2)) * 0.5 + 0.25)
    assert derive(-5, atom_derivation=False, corroboration=-1)[1].source_age_days == 0


def test_shadow_mode_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_MEMORY_CONFIDENCE_SHADOW", raising=False)
    assert ShadowSampler.from_env(lambda ids: [], lambda ids: []) is None
    monkeypatch.setenv("AI_MEMORY_CONFIDENCE_SHADOW", "1")
    monkeypatch.setenv("AI_MEMORY_CONFIDENCE_SHADOW_SAMPLE_RATE", "7")
    sampler = ShadowSampler.from_env(lambda ids: [], lambda ids: [])
    assert sampler is not None and sampler.sample_rate == 1.0
    never = ShadowSampler(lambda ids: [], lambda ids: [], sample_rate=0.0)
    assert never.observe(["x"], "2026-01-01T00:00:00Z") is None


@pytest.fixture
async def shadow_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Node]:
    monkeypatch.setenv("AI_MEMORY_CONFIDENCE_SHADOW", "1")
    node = await Node.open(NodeConfig(data_dir=tmp_path / "node"))
    await node.start()
    yield node
    await node.close()


async def _calibrate(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/api/v1/memory_calibrate_confidence", json=body)


async def test_recalls_are_observed_and_calibrated(shadow_node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(shadow_node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        empty = (await _calibrate(client)).json()
        assert empty == {"report": {"window_days": 30, "total_observations": 0, "baselines": []}}
        ids = []
        for title, source in (("kafka lag", "user"), ("kafka quotas", "user"), ("kafka acls", "claude")):
            r = await client.post("/api/v1/memories", headers=ALICE, json={
                "title": title, "content": "kafka", "namespace": "ops", "source": source, "confidence": 0.9})
            ids.append(r.json()["id"])
        await client.post("/api/v1/links", json={"source_id": ids[0], "target_id": ids[1]}, headers=ALICE)
        recall = await client.get("/api/v1/recall", params={"context": "kafka", "mode": "keyword"}, headers=ALICE)
        assert len(recall.json()["memories"]) == 3
        report = (await _calibrate(client, days=7)).json()["report"]
        assert report["window_days"] == 7 and report["total_observations"] == 3
        by_source = {b["source"]: b for b in report["baselines"]}
        assert list(by_source) == ["claude", "user"] and by_source["user"]["count"] == 2
        # Fresh memories: 0.5, and the linked one 0.5 + 0.05·log10(2).
        linked = 0.5 + 0.05 * math.log10(2)
        assert by_source["user"]["median"] == pytest.approx((0.5 + linked) / 2)
        # (a fresh memory is some seconds old at the recall: just under 0.5, so in the 0.4 bucket or the 0.5 one)
        buckets = by_source["user"]["buckets"]
        assert len(buckets) == 10 and buckets[4] + buckets[5] == 2 == sum(buckets)
        # The caller's confidence is never changed by shadow mode.
        got = (await client.get(f"/api/v1/memories/{ids[0]}", headers=ALICE)).json()["memory"]
        assert got["confidence"] == 0.9
        for days in (0, -3):
            bad = await _calibrate(client, days=days)
            assert bad.status_code == 400 and bad.json() == {"error": "days must be a positive integer"}
        assert (await _calibrate(client, days="x")).json()["report"]["window_days"] == 30
    # The observations are signed events in the log, next to the recall's touch.
    types = [r.event.envelope.type for r in await shadow_node.log.read(after={}, limit=100)]
    assert types.count(ConfidenceShadowObserved.TYPE) == 1
    assert types[types.index(ConfidenceShadowObserved.TYPE) - 1] == "memory.touched"


async def test_without_shadow_mode_nothing_is_observed(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.post("/api/v1/memories", headers=ALICE, json={"title": "t", "content": "kafka"})
        await client.get("/api/v1/recall", params={"context": "kafka", "mode": "keyword"}, headers=ALICE)
        assert (await _calibrate(client)).json()["report"]["total_observations"] == 0
