"""What one text-stage worker holds: the bfloat16 text path's memory and speed, side by side.

Each variant runs in a fresh process on one thread, as a Spark task's Python worker does, and
encodes the same generated texts in calls of ``--chunk`` texts (the text cache hands a task up to
4,000 at a time). It prints the process's resident size before the first call, its peak
(``ru_maxrss``) and its size after the last call, and texts/s. The variants:

- ``shipped``: :mod:`smp_spark.features.text_bf16` as it is;
- ``no trim``: its oneDNN primitive cache, without giving the heap's free pages back;
- ``trim per call``: the free pages given back only after each call;
- ``defaults``: oneDNN's 1,024 primitives and no trim (the path before session 28);
- ``128 primitives``: the shipped trims with 128 primitives kept.

    .venv/bin/python benchmarks/text_worker_memory.py [--texts 8000] [--chunk 4000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.text_model_speed import generated_texts  # noqa: E402

VARIANTS = {  # name -> (oneDNN primitive cache, batches between trims, trim at all)
    "shipped": (None, None, True),
    "no trim": (None, None, False),
    "trim per call": (None, 0, True),
    "defaults": (1024, 0, False),
    "128 primitives": (128, None, True),
}


def _gib(kib: float) -> float:
    return round(kib / 2**20, 3)


def _resident_kib() -> int:
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(ln.split()[1]) for ln in lines if ln.startswith("VmRSS:"))


def _worker(variant: str, texts: list[str], chunk: int, queue) -> None:
    capacity, trim_every, trim = VARIANTS[variant]
    if capacity is not None:
        os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(capacity)
    from smp_spark.features import text_bf16

    if trim_every is not None:
        text_bf16.TRIM_EVERY = trim_every
    if not trim:
        text_bf16.release_free_memory = lambda: None
    text_bf16.load_model()
    before, started = _resident_kib(), time.time()
    for start in range(0, len(texts), chunk):
        text_bf16.encode(texts[start : start + chunk], 32)
    seconds = time.time() - started
    queue.put(
        dict(
            variant=variant,
            texts_per_s=round(len(texts) / seconds, 1),
            before_gib=_gib(before),
            peak_gib=_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
            after_gib=_gib(_resident_kib()),
            primitive_cache=os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=8000)
    parser.add_argument("--chunk", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    texts = generated_texts(args.texts)
    context = mp.get_context("spawn")  # a fresh interpreter: no primitive made before the variant's settings
    for round_ in range(1, args.rounds + 1):
        for variant in args.variants:
            queue = context.Queue()
            process = context.Process(target=_worker, args=(variant, texts, args.chunk, queue))
            process.start()
            result = queue.get()
            process.join()
            print(json.dumps({"round": round_, **result}), flush=True)


if __name__ == "__main__":
    main()
