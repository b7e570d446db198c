"""The torch-free local models (MiniLM, mpnet) against vectors computed once with sentence-transformers (the
fixtures, tests/fixtures/make_reference.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from infra.embed import MPNET, LocalEmbedder, MiniLMEmbedder, ModelUnavailableError, local_model
from infra.embed.graph import relative_buckets
from infra.embed.model_files import cached_onnx, minilm_dir

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_every_fixture_sentence_matches_sentence_transformers(local: LocalEmbedder) -> None:
    doc = json.loads((FIXTURES / f"{local_model(local.model).short}_reference.json").read_text())
    assert doc["model"] == local_model(local.model).hub_id
    items, limit = doc["items"], doc["max_seq_length"]
    assert sum(i["tokens_untruncated"] > limit for i in items) >= 4, f"the fixture must hold texts past {limit} tokens"
    reference = np.stack([np.frombuffer(base64.b64decode(i["vector"]), dtype="<f4") for i in items])
    ours = local.embed([i["text"] for i in items])
    cosines = (ours * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, (items[worst]["text"][:80], float(cosines[worst]))


def test_vectors_are_unit_length_and_batch_independent(local: LocalEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about deploys and migrations " * 3, ""]
    together = local.embed(texts)
    alone = np.stack([local.embed([t])[0] for t in texts])
    assert together.shape == (3, local.dim) and together.dtype == np.float32
    assert local.dim == (768 if local.model == MPNET else 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-5)
    assert local.embed([]).shape == (0, local.dim)


def test_a_huge_text_is_cut_before_tokenising(local: LocalEmbedder) -> None:
    huge = "memory " * 400_000
    (vector,) = local.embed([huge])
    (head,) = local.embed(["memory " * 400])
    assert float(vector @ head) > 0.999


def test_a_model_is_named_short_long_or_by_hub_id() -> None:
    assert local_model("MPNet").name == local_model("sentence-transformers/all-mpnet-base-v2").name == MPNET
    assert local_model("all-minilm-l6-v2").short == "minilm"
    with pytest.raises(ValueError, match="no local model is called 'e5'"):
        local_model("e5")


def test_mpnets_relative_buckets_follow_its_rule() -> None:
    buckets = relative_buckets(300)
    # Key before the query: buckets 0-15; after: 16-31. Exact up to 7 apart, then log-spaced, capped at 128+.
    assert buckets[10, 10] == 0 and buckets[10, 3] == 7 and buckets[3, 10] == 16 + 7
    assert buckets[20, 12] == 8 and buckets[299, 0] == 15 and buckets[0, 299] == 31
    assert buckets.shape == (300, 300) and buckets.min() == 0 and buckets.max() == 31


def test_the_graph_is_cached_by_a_hash_of_its_sources(model_cache: Path, embedder: MiniLMEmbedder) -> None:
    files = list(model_cache.glob("minilm-*.onnx"))
    assert len(files) == 1 and files[0] == cached_onnx(minilm_dir(), model_cache)


def test_a_broken_model_file_is_reported_not_crashed(tmp_path: Path, model_cache: Path,
                                                    embedder: MiniLMEmbedder) -> None:
    good = cached_onnx(minilm_dir(), model_cache)
    (tmp_path / good.name).write_bytes(b"not an onnx graph")
    with pytest.raises(ModelUnavailableError, match="cannot load"):
        MiniLMEmbedder.load(tmp_path)
