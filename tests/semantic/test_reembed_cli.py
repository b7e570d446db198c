"""The CLI: `reembed` appends vectors (a model change, or memories stored while no model was loaded); a model
that fails to load leaves the node in keyword mode, reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.embed.model_files import cached_onnx, minilm_dir
from producers.cli.main import main
from producers.runtime.node import NodeConfig, load_embedder


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str]:
    code = main([args[0], "--data-dir", str(data), *args[1:]])
    out, _ = capsys.readouterr()
    return code, out


def test_reembed_fills_in_what_a_keyword_only_node_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> None:
    monkeypatch.setenv("AI_MEMORY_MODEL_CACHE", str(model_cache))
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")
    for i, text in enumerate(["golden retriever named Max", "mushroom risotto", "migrations before deploy"]):
        assert run(capsys, tmp_path, "store", "-T", f"m{i}", "-c", text)[0] == 0
    _, out = run(capsys, tmp_path, "recall", "dog", "--json")
    assert json.loads(out)["count"] == 0, "keyword mode: no word in common"
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "auto")
    code, out = run(capsys, tmp_path, "reembed", "--missing", "--quiet", "--json")
    assert code == 0 and json.loads(out) == {"embedded": 3, "model": "all-MiniLM-L6-v2", "only_missing": True}
    assert json.loads(run(capsys, tmp_path, "reembed", "--missing", "--quiet", "--json")[1])["embedded"] == 0
    _, out = run(capsys, tmp_path, "recall", "dog", "--json")
    assert [m["title"] for m in json.loads(out)["memories"]][:1] == ["m0"]
    code, out = run(capsys, tmp_path, "reembed", "--quiet", "--json")
    assert json.loads(out)["embedded"] == 3, "a full re-embed appends one event per memory"
    _, out = run(capsys, tmp_path, "stats", "--json")
    stats = json.loads(out)
    assert stats["vector_index"]["vectors"] == 3 and stats["embedder"]["embedder_ready"] is True
    _, out = run(capsys, tmp_path, "log", "tail", "--json", "--type", "memory.embedded", "--last", "100")
    assert len(out.splitlines()) == 6


def test_a_model_that_fails_to_load_means_keyword_mode(tmp_path: Path, model_cache: Path) -> None:
    broken = tmp_path / "cache"
    broken.mkdir()
    (broken / cached_onnx(minilm_dir(), model_cache).name).write_bytes(b"\x00garbage")
    embedder, reason = load_embedder(NodeConfig(data_dir=tmp_path, embedder="auto", model_cache=broken))
    assert embedder is None and reason is not None and "cannot load" in reason
    assert load_embedder(NodeConfig(data_dir=tmp_path, embedder="off"))[1] == (
        "the embedder is turned off (AI_MEMORY_EMBEDDER=off)")
