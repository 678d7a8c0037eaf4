"""Which float format a model's matrix products run in on this CPU: ``auto``, resolved once a process.

bfloat16 pays only where the CPU runs it natively, and its flag alone does not tell: one thread of
the AMD EPYC with AVX-512 BF16 of sessions 24-26 multiplies 512x512 matrices at 223 GFLOPS in
bfloat16 against 104 in float32, while the Intel CPU with AVX-512 BF16 of the first sessions ran
them at 49 against 103 (``docs/benchmarks.md``). So ``auto`` asks for both: a bfloat16 instruction
set among the CPU's flags, and a one-thread probe of torch's matrix product (about 50 ms, once per
process) that finds bfloat16 at least :data:`MIN_SPEEDUP` times as fast as float32. The two kinds
of CPU lie far either side of it (2.1x and 0.48x), so the choice does not flip from run to run.

Who resolves it: the image stage and the fusion net on the driver (every task or rank then runs
alike, and the choice is recorded: in the image cache's ``encoder``, in the net's fingerprint);
the text stage's ``auto`` is its int8 graph wherever onnxruntime is installed.
"""

from __future__ import annotations

import functools
import time
from typing import Literal

Resolved = Literal["float32", "bfloat16"]

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bfloat16 dot products (AVX-512) or tiles (AMX)
MIN_SPEEDUP = 1.3  # bfloat16 / float32 matrix-product speed at or above which auto picks bfloat16
PROBE_SIZE = 512  # the probe multiplies two PROBE_SIZE x PROBE_SIZE matrices


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this machine's CPU (``/proc/cpuinfo``); empty off Linux."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return frozenset(next((ln.split(":", 1)[1].split() for ln in cpuinfo if ln.startswith("flags")), []))
    except OSError:
        return frozenset()


@functools.cache
def bf16_speedup(repeats: int = 5) -> float:
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


def resolve_precision(precision: str) -> str:
    """``auto`` -> this machine's choice (:func:`choose_precision`); any other value unchanged."""
    return choose_precision(cpu_flags(), bf16_speedup) if precision == "auto" else precision
