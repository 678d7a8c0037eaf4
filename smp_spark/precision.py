"""Which float format a model's matrix products run in on this CPU: ``auto``, decided once per machine.

bfloat16 pays only where the CPU runs it natively, and its flag alone does not tell: one thread of
the AMD EPYC with AVX-512 BF16 of sessions 24-26 multiplies 512x512 matrices at 223 GFLOPS in
bfloat16 against 104 in float32, while the Intel CPU with AVX-512 BF16 of the first sessions ran
them at 49 against 103, and the Intel Xeon with AMX tiles of sessions 27-28 at 5.9x float32
(``docs/benchmarks.md``). So ``auto`` asks for both: a bfloat16 instruction set among the CPU's
flags, and a one-thread probe of torch's matrix product that finds bfloat16 at least
:data:`MIN_SPEEDUP` times as fast as float32. The three kinds of CPU lie far either side of it
(5.9x, 2.1x and 0.48x), but a probe on a busy machine can still land anywhere: the first probe on a
machine is recorded in its model cache (:mod:`smp_spark.model_cache`, under
the CPU model, its flags and the torch version), and every later process reads that record, so
the choice never flips between runs (a flip would refuse a fusion checkpoint and encode every
image again). Delete the file to measure again.

Who resolves it: the image stage and the fusion net on the driver (every task or rank then runs
alike, and the choice is recorded: in the image cache's ``encoder``, in the net's fingerprint).
The text stage has a third choice, its int8 ONNX Runtime graph, and its own rule
(:func:`choose_text_precision`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Literal

from smp_spark.model_cache import cache_dir, ensure

Resolved = Literal["float32", "bfloat16"]
TextResolved = Literal["float32", "bfloat16", "int8"]

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bfloat16 dot products (AVX-512) or tiles (AMX)
TILE_CPU_FLAGS = frozenset({"amx_bf16"})  # bfloat16 tiles: the text model in bfloat16 beats its int8 graph
MIN_SPEEDUP = 1.3  # bfloat16 / float32 matrix-product speed at or above which auto picks bfloat16
PROBE_SIZE = 512  # the probe multiplies two PROBE_SIZE x PROBE_SIZE matrices


def _cpuinfo_field(name: str) -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.split(":", 1)[0].strip() == name), "")
    except OSError:
        return ""


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this machine's CPU (``/proc/cpuinfo``); empty off Linux."""
    return frozenset(_cpuinfo_field("flags").split())


def record_path() -> Path:
    """Where this machine's probe is recorded: named after the CPU model, its flags and torch."""
    from importlib import metadata

    cpu = f"{_cpuinfo_field('model name') or platform.processor()} {sorted(cpu_flags())}"
    key = hashlib.sha256(f"{cpu} torch {metadata.version('torch')}".encode()).hexdigest()[:16]
    return cache_dir() / f"bf16-probe-{key}.json"


@functools.cache
def bf16_speedup() -> float:
    """This machine's recorded :func:`measure_bf16_speedup`, measured and recorded by the first
    process that asks (one at a time, the file written whole)."""

    def measure(partial: Path) -> None:
        partial.write_text(json.dumps({"speedup": measure_bf16_speedup(), "cpu": _cpuinfo_field("model name")}))

    return float(json.loads(ensure(record_path(), measure).read_text())["speedup"])


def measure_bf16_speedup(repeats: int = 20) -> float:
    """How many times faster torch multiplies bfloat16 matrices than float32 ones on one thread of
    this CPU: the best of ``repeats`` timings of each, interleaved (a busy machine slows both)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=generator)
        pairs = {dtype: (a.to(dtype), a.T.contiguous().to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
        best = dict.fromkeys(pairs, float("inf"))
        for _ in range(repeats):
            for dtype, (x, y) in pairs.items():
                start = time.perf_counter()
                torch.mm(x, y)
                best[dtype] = min(best[dtype], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.float32] / best[torch.bfloat16]


def choose_precision(flags: frozenset[str], speedup) -> Resolved:
    """``bfloat16`` if ``flags`` hold a bfloat16 instruction set and ``speedup()`` (called only
    then) is at least :data:`MIN_SPEEDUP`, else ``float32``."""
    return "bfloat16" if flags & BF16_CPU_FLAGS and speedup() >= MIN_SPEEDUP else "float32"


def choose_text_precision(flags: frozenset[str], speedup, onnxruntime: bool) -> TextResolved:
    """The text stage's ``auto``: ``bfloat16`` (:mod:`smp_spark.features.text_bf16`) where
    ``flags`` hold bfloat16 tiles and :func:`choose_precision` picks bfloat16, else ``int8`` where
    ``onnxruntime`` is installed, else :func:`choose_precision`.

    Measured one thread a text model (``benchmarks/text_model_speed.py``): with AMX (session 27,
    probe 5.9x) bfloat16 about 2x the int8 graph; with AVX-512 BF16 alone (session 26's AMD EPYC,
    probe 2.15x) the int8 graph 1.39x bfloat16 autocast; so the tiles decide, not the probe."""
    if flags & TILE_CPU_FLAGS and choose_precision(flags, speedup) == "bfloat16":
        return "bfloat16"
    return "int8" if onnxruntime else choose_precision(flags, speedup)


def resolve_precision(precision: str) -> str:
    """``auto`` -> this machine's choice (:func:`choose_precision`); any other value unchanged."""
    return choose_precision(cpu_flags(), bf16_speedup) if precision == "auto" else precision


if __name__ == "__main__":  # make setup: probe this machine once, while it is quiet
    speedup, choice = bf16_speedup(), resolve_precision("auto")
    print(f"bfloat16 matrix products {speedup:.2f}x float32 -> auto = {choice} ({record_path()})")
