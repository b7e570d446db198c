"""Text → unit vectors with a local sentence model (all-MiniLM-L6-v2, all-mpnet-base-v2) on onnxruntime:
torch-free, offline, sentence-transformers' settings.

Settings that make the vectors interchange with sentence-transformers (and so, for MiniLM, with the original
ai-memory): the shipped tokenizer truncating at the model's ``max_seq_length`` (``sentence_bert_config.json``:
256 for MiniLM, 384 for mpnet) with longest-in-batch padding (the shipped ``tokenizer.json`` says 128 and fixed
padding, which embeds long texts wrongly), mean pooling over the attention mask, then L2 normalisation.
Example::

    embedder = LocalEmbedder.load(cache_dir)                   # MiniLM; model="mpnet" for mpnet
    vectors = embedder.embed(["Deploy order run migrations before the deploy"])   # (1, 384) float32
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from infra.embed.catalog import MINILM, local_model
from infra.embed.errors import ModelUnavailableError
from infra.embed.model_files import cached_onnx, default_cache_dir

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DEVICES", "MINILM", "Embedder", "LocalEmbedder", "MiniLMEmbedder", "embedding_text",
           "execution_providers"]

log = logging.getLogger("ai_memory.embed")

# Characters kept before tokenising: 384 WordPiece tokens never need more unless the text is mostly
# whitespace, and tokenising a 2 MiB body would cost far more than the model call.
_MAX_CHARS = 20_000
_BATCH = 32
#: ``--embed-device``: ``auto`` takes onnxruntime's CUDA provider when it is installed (onnxruntime-gpu) and a GPU
#: answers, else the CPU; ``cuda`` asks for the GPU (and says so in health when it falls back); ``cpu`` never tries.
DEVICES = ("auto", "cuda", "cpu")
_CUDA = "CUDAExecutionProvider"


def embedding_text(title: str, content: str) -> str:
    """What is embedded for a memory: ``title + " " + content``, as the original does."""
    return f"{title} {content}"


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    model: str
    dim: int
    #: Where the vectors are computed: "cpu", "cuda" (onnxruntime's CUDA provider) or "remote" (a service).
    device: str = "cpu"

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row per text, shape ``(len(texts), dim)``; an empty list gives shape ``(0, dim)``.

        Raises:
            EmbedError: the texts could not be embedded now (a remote service down, a refused answer).
        """

    def available(self) -> bool:
        """Whether a call is worth making now (False while a remote service's circuit is open)."""
        return True

    def problem(self) -> str | None:
        """Why the embedder is not working right now, for health and recall's meta; None when it is."""
        return None

    def stats(self) -> dict[str, Any]:
        """Counters and settings worth showing in stats (a remote service's requests, failures, circuit)."""
        return {}

    def close(self) -> None:  # noqa: B027 -- a hook: only a remote embedder holds something to release
        """Release connections and threads (a local model holds none worth releasing)."""


def execution_providers(device: str, available: Sequence[str]) -> list[str]:
    """onnxruntime's providers for ``device`` given those installed; CPU is always last, as the fallback."""
    if device not in DEVICES:
        msg = f"the embedding device must be one of {', '.join(DEVICES)} (got {device!r})"
        raise ValueError(msg)
    if device != "cpu" and _CUDA in available:
        return [_CUDA, "CPUExecutionProvider"]
    if device == "cuda":
        log.warning("--embed-device cuda: onnxruntime has no CUDA provider here (install onnxruntime-gpu in place "
                    "of onnxruntime); embedding on the CPU")
    return ["CPUExecutionProvider"]


class LocalEmbedder(Embedder):
    """A sentence model of :mod:`infra.embed.catalog` run in this process."""

    def __init__(self, session: object, tokenizer: object, *, model: str = MINILM, dim: int = 384,
                 device: str = "cpu") -> None:
        self._session = session
        self.model = model
        self.dim = dim
        self.device = device
        self._tokenizer = tokenizer
        # tokenizers' padding/truncation state is per object; onnxruntime sessions are thread-safe.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, cache_dir: Path | None = None, *, threads: int = 0, device: str = "auto",
             model: str = "minilm") -> LocalEmbedder:
        """Load ``model`` (a name :func:`~infra.embed.catalog.local_model` knows) from its installed weights,
        building (once) and caching the ONNX graph; on the GPU when ``device`` allows it and onnxruntime's CUDA
        provider works (see :data:`DEVICES`).

        Raises:
            ValueError: no local model has that name.
            ModelUnavailableError: weights missing or the graph cannot be built or loaded.
        """
        spec = local_model(model)
        cache = cache_dir or default_cache_dir()
        model_dir = spec.locate(cache)
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            onnx_path = cached_onnx(model_dir, cache, spec.short)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            # Idle worker threads must not spin: recall and projection share these cores with the model.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            providers = execution_providers(device, ort.get_available_providers())
            session = ort.InferenceSession(str(onnx_path), options, providers=providers)
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            max_tokens = int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
            dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
        except ModelUnavailableError:
            raise
        except Exception as exc:
            raise ModelUnavailableError(f"cannot load {spec.name}: {exc}") from exc
        # The shipped padding names the pad token (MiniLM: [PAD]=0, mpnet: <pad>=1); only its length is wrong.
        pad = tokenizer.padding or {"pad_id": 0, "pad_token": "[PAD]"}
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens)
        # No length: pad to the longest in the batch.
        tokenizer.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"])
        # onnxruntime drops a provider that cannot start (no GPU, CUDA libraries missing) with only a log line:
        # the session's own list says where it really runs.
        runs_on = "cuda" if session.get_providers()[0] == _CUDA else "cpu"
        return cls(session, tokenizer, model=spec.name, dim=dim, device=runs_on)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths together: less padding, fewer wasted FLOPs.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), _BATCH):
            chunk = order[start:start + _BATCH]
            out[chunk] = self._embed_batch([texts[i][:_MAX_CHARS] for i in chunk])
        return out

    def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)  # type: ignore[attr-defined]
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})  # type: ignore[attr-defined]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result


#: The name tests and benches have long used for the local embedder (MiniLM is still what ``load()`` loads).
MiniLMEmbedder = LocalEmbedder
