"""The torch-free MiniLM path against vectors computed once with sentence-transformers (the fixture)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from infra.embed import MiniLMEmbedder, ModelUnavailableError
from infra.embed.model_files import cached_onnx, minilm_dir

FIXTURE = Path(__file__).parents[1] / "fixtures" / "minilm_reference.json"


def test_every_fixture_sentence_matches_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    doc = json.loads(FIXTURE.read_text())
    items = doc["items"]
    assert sum(i["tokens_untruncated"] > 256 for i in items) >= 5, "the fixture must hold texts past 256 tokens"
    reference = np.stack([np.frombuffer(base64.b64decode(i["vector"]), dtype="<f4") for i in items])
    ours = embedder.embed([i["text"] for i in items])
    cosines = (ours * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, (items[worst]["text"][:80], float(cosines[worst]))


def test_vectors_are_unit_length_and_batch_independent(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about deploys and migrations " * 3, ""]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert together.shape == (3, 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_a_huge_text_is_cut_before_tokenising(embedder: MiniLMEmbedder) -> None:
    huge = "memory " * 400_000
    (vector,) = embedder.embed([huge])
    (head,) = embedder.embed(["memory " * 300])
    assert float(vector @ head) > 0.999


def test_the_graph_is_cached_by_a_hash_of_its_sources(model_cache: Path, embedder: MiniLMEmbedder) -> None:
    files = list(model_cache.glob("minilm-*.onnx"))
    assert len(files) == 1 and files[0] == cached_onnx(minilm_dir(), model_cache)


def test_a_broken_model_file_is_reported_not_crashed(tmp_path: Path, model_cache: Path,
                                                    embedder: MiniLMEmbedder) -> None:
    good = cached_onnx(minilm_dir(), model_cache)
    (tmp_path / good.name).write_bytes(b"not an onnx graph")
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        MiniLMEmbedder.load(tmp_path)
