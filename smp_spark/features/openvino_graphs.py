"""OpenVINO runs of the models' ONNX graphs: their bfloat16 paths where OpenVINO is installed.

Why: on a CPU with bfloat16 tiles (Intel AMX) OpenVINO's CPU plugin runs EfficientNet-Lite0 in
bfloat16 about 2x torch's bfloat16 forward pass, its depthwise convolutions included, which torch
runs barely faster than float32 there, and MiniLM about 1.15x (``docs/benchmarks.md``, session
31). It has no per-layer precision switch that its CPU plugin honours, so a model whose first
layers must stay float32 is two graphs, compiled one float32 and one bfloat16, the first's output
fed to the second (:func:`smp_spark.features.image_model.split_graphs`).

The graphs are exported from the installed weights into the model cache
(:mod:`smp_spark.model_cache`), named after the weights, the recipe and the OpenVINO version; never
committed. Each compiled model runs one thread, unpinned (Spark runs one task per core, each in its
own worker: OpenVINO's default pinning put two workers' threads on one core), is compiled once per
Python worker, and takes any batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from smp_spark import model_cache

Precision = Literal["f32", "bf16"]  # OpenVINO's INFERENCE_PRECISION_HINT values used here
Bfloat16Runtime = Literal["OpenVINO", "torch"]  # what runs a model's bfloat16 path
_requests: dict = {}  # one infer request per (graph file, precision) per Python worker


def available() -> bool:
    """Whether OpenVINO is installed (the deep-learning extra installs it)."""
    return model_cache.installed("openvino")


def bfloat16_runtime() -> Bfloat16Runtime:
    """What runs the models' bfloat16 paths here: ``OpenVINO`` where installed, else ``torch``
    (each model keeps a torch fallback of the same recipe)."""
    return "OpenVINO" if available() else "torch"


def graph_path(stem: str) -> Path:
    """The cached ONNX file of graph ``stem`` for this machine's OpenVINO version."""
    return model_cache.graph_path(stem, "openvino", "ov")


def infer_request(path: Path, precision: Precision):
    """This worker's one-thread CPU infer request over the graph at ``path``, run in ``precision``
    (``bf16`` converts every layer it can: the CPU plugin keeps float32 only where bfloat16 is not
    supported or at the graph's tail)."""
    key = (str(path), precision)
    if key not in _requests:
        import openvino as ov

        options = {
            "INFERENCE_NUM_THREADS": 1,
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": precision,
            # pinned, every worker's thread went to the same core: two tasks ran at half speed each
            "ENABLE_CPU_PINNING": False,
        }
        _requests[key] = ov.Core().compile_model(str(path), "CPU", options).create_infer_request()
    return _requests[key]


def run(path: Path, precision: Precision, inputs):
    """The first output of the graph at ``path`` on ``inputs`` (one array, or arrays by input
    name): a float32 array of its own (``infer`` copies its outputs unless told to share them)."""
    return infer_request(path, precision).infer(inputs if isinstance(inputs, dict) else {0: inputs})[0]
