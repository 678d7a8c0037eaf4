"""This machine's model cache: files built once per machine from what is installed, never committed.

``~/.cache/smp-spark/models`` (``SMP_MODEL_CACHE`` moves it) holds what the pretrained models
need built locally: the ONNX graphs ONNX Runtime and OpenVINO run
(:mod:`smp_spark.features.onnx_graphs`, :mod:`smp_spark.features.openvino_graphs`) and the bfloat16
probe's record (:mod:`smp_spark.precision`). Each file is named after everything it
depends on, so a changed input makes a new file; it is built by the first process that needs it,
one builder at a time (a file lock), and written whole before it is visible (a rename).
"""

from __future__ import annotations

import fcntl
import importlib
import os
from importlib import metadata
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    """``SMP_MODEL_CACHE``, else ``~/.cache/smp-spark/models``."""
    return Path(os.environ.get("SMP_MODEL_CACHE", Path.home() / ".cache" / "smp-spark" / "models"))


def installed(module: str) -> bool:
    """Whether ``module`` imports here (the deep-learning extra's optional runtimes)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def graph_path(stem: str, runtime: str, tag: str) -> Path:
    """The cached ONNX file of graph ``stem`` for this machine's version of the ``runtime`` package
    that runs it (``tag`` and that version end the name: another version builds it anew)."""
    return cache_dir() / f"{stem}-{tag}{metadata.version(runtime)}.onnx"


def ensure(path: Path, build: Callable[[Path], object]) -> Path:
    """``path``, first built by ``build(partial_path)`` if this machine has none yet."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = path.with_suffix(".partial")
            build(partial)
            os.replace(partial, path)  # readers never see a half-written file
    return path
