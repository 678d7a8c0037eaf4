"""Speed and agreement of the EfficientNet-Lite0 image model (smp_spark.features.image_model).

One process, one torch thread (as one Spark task), no Spark:

    .venv/bin/python benchmarks/image_model_speed.py [--images 2000] [--batch 16] [--focus 128]

Images: ``--images`` synthetic JPEGs of 128-256 px on the long side (gradient backgrounds,
coloured shapes, noise, some blur), or every JPEG under ``--source``; for agreement also
``--crops`` random crops of the three real photographs shipped in scikit-learn and matplotlib
(a palace, a daisy, Grace Hopper), re-encoded at 128-256 px. The machine may be shared: rates
are given by wall time and by this process's CPU time (one thread: what an idle core would do).

1. per resolution and precision: images/s end to end (bytes -> decode -> stats -> crop -> logits)
   and of the forward pass alone; agreement with 224 float32 (mean cosine of the 1000 logits,
   top-1 agreement) on both image sets; bfloat16 against float32 at the same resolution;
2. at ``--focus`` px: batch sizes, memory layouts and the inference copy;
3. the CPU side alone (decode, stats, crop) with bicubic and bilinear resizing;
4. two processes at once (the 2 cores of one executor), end to end.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import platform
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RESOLUTIONS = (96, 128, 160, 192, 224)
PRECISIONS = ("float32", "bfloat16")
PHOTOS = (
    resources.files("sklearn.datasets") / "images" / "china.jpg",
    resources.files("sklearn.datasets") / "images" / "flower.jpg",
    resources.files("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg",
)


def jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def synthetic_jpegs(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    blobs = []
    for _ in range(n):
        long_side, ratio = int(rng.integers(128, 257)), float(rng.uniform(0.56, 1.0))
        size = (long_side, max(32, int(long_side * ratio)))
        if rng.random() < 0.3:
            size = size[::-1]  # portrait
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, size[1])[:, None, None]
        base = (top * (1 - ramp) + bottom * ramp) * np.ones((1, size[0], 1))
        base += rng.normal(0, rng.uniform(0, 12), base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 9))):
            x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
            r = int(rng.integers(5, long_side // 3))
            box = (x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5)))
            shape = (draw.ellipse, draw.rectangle)[int(rng.integers(0, 2))]
            shape(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        if rng.random() < 0.5:
            img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3))))
        blobs.append(jpeg(img, int(rng.integers(70, 96))))
    return blobs


def photo_crops(n: int, seed: int = 1) -> list[bytes]:
    """Random crops (25-100 % of the side, any aspect 0.6-1.7) of the real photographs, 128-256 px."""
    rng = np.random.default_rng(seed)
    photos = [Image.open(io.BytesIO(p.read_bytes())).convert("RGB") for p in PHOTOS]
    blobs = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw = int(w * rng.uniform(0.25, 1.0))
        ch = min(h, max(16, int(cw / rng.uniform(0.6, 1.7))))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        part = photo.crop((left, top, left + cw, top + ch))
        scale = int(rng.integers(128, 257)) / max(part.size)
        part = part.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.BICUBIC)
        blobs.append(jpeg(part.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else part, 85))
    return blobs


def timed(fn, *args):
    """``fn(*args)``, its wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def forward(model, batches, precision: str) -> np.ndarray:
    """Logits of every batch with ``model`` in torch, every layer under autocast for ``bfloat16``
    (part 2's layouts; part 1 times the product's :func:`class_scores`)."""
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        return np.concatenate([model(batch).float().numpy() for batch in batches])


def product_forward(batches, precision: str) -> list:
    """Logits of every batch as the image stage computes them (:func:`class_scores`)."""
    from smp_spark.features.image_model import class_scores

    return [class_scores(batch, precision) for batch in batches]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def batches_of(images, resolution: int, batch: int) -> list:
    from smp_spark.features.image_model import preprocess

    return [preprocess(images[i : i + batch], resolution) for i in range(0, len(images), batch)]


def cpu_side(blobs, resolution: int, resample) -> float:
    """CPU seconds to decode, measure and crop every blob (no model)."""
    from smp_spark.features import image_model as im

    start = time.process_time()
    for blob in blobs:
        img = im.decode(blob, resolution)
        im.colour_stats(img)
        w, h = img.size
        side = min(w, h) * resolution / im.target_side(resolution)
        left, top = (w - side) / 2, (h - side) / 2
        np.asarray(img.resize((resolution, resolution), resample, box=(left, top, left + side, top + side)))
    return time.process_time() - start


def _encode_worker(args) -> tuple[float, float]:
    """In a fresh process: end-to-end seconds (wall, CPU) for ``blobs``."""
    blobs, resolution, precision, batch = args
    from smp_spark.features.image_model import encode_images

    encode_images(blobs[:batch], resolution, precision, batch)  # warm-up
    return timed(encode_images, blobs, resolution, precision, batch)[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--crops", type=int, default=600, help="photo crops for the agreement columns")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--focus", type=int, default=128, help="resolution of parts 2-4")
    parser.add_argument("--source", type=Path, help="folder of JPEGs to use instead of synthetic ones")
    args = parser.parse_args()

    import torch

    from smp_spark.features.image_model import decode, encode_images, inference_model, load_model
    from smp_spark.precision import resolve_precision

    if args.source:
        files = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
        blobs = [p.read_bytes() for p in files[: args.images]]
    else:
        blobs = synthetic_jpegs(args.images)
    crops = photo_crops(args.crops)
    n, batch = len(blobs), args.batch
    load_model()  # one torch thread from here on
    long_sides = [max(Image.open(io.BytesIO(b)).size) for b in blobs]
    cpu = platform.processor() or platform.machine()
    flags = set(Path("/proc/cpuinfo").read_text().split()) & {"avx512_bf16", "amx_bf16", "avx512f"}
    kilobytes = np.mean([len(b) for b in blobs]) / 1e3
    print(f"{n} JPEGs, long side {min(long_sides)}-{max(long_sides)} px, mean {kilobytes:.1f} kB")
    print(f"{len(crops)} crops of {len(PHOTOS)} real photographs for agreement")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {cpu}, flags {sorted(flags)}, batch {batch}")
    print(f"precision auto -> {resolve_precision('auto')}\n")

    rate, scores, photo_scores = {}, {}, {}
    for resolution in RESOLUTIONS:
        batches = batches_of([decode(b, resolution) for b in blobs], resolution, batch)
        for precision in PRECISIONS:
            encode_images(blobs[:batch], resolution, precision, batch)  # warm-up (oneDNN primitives)
            (scores[resolution, precision], _), e2e_wall, e2e_cpu = timed(
                encode_images, blobs, resolution, precision, batch
            )
            _, fwd_wall, fwd_cpu = timed(product_forward, batches, precision)
            rate[resolution, precision] = [n / e2e_wall, n / e2e_cpu, n / fwd_wall, n / fwd_cpu]
            photo_scores[resolution, precision] = encode_images(crops, resolution, precision, batch)[0]

    print("images/s: wall (cpu)          synthetic vs 224 f32     photo crops vs 224 f32   bf16 vs f32 cos mean/min")
    print("res precision  end-to-end      forward  cos    top-1            cos    top-1            synthetic   photos")
    for resolution in RESOLUTIONS:
        for precision in PRECISIONS:
            e2e_wall, e2e_cpu, fwd_wall, fwd_cpu = rate[resolution, precision]
            line = (
                f"{resolution:>3} {precision:>9} {e2e_wall:>5.0f} ({e2e_cpu:>4.0f}) {fwd_wall:>5.0f} ({fwd_cpu:>4.0f})"
            )
            for got in (scores, photo_scores):
                now, ref = got[resolution, precision], got[224, "float32"]
                line += f" {cosine(now, ref).mean():.4f} {(now.argmax(1) == ref.argmax(1)).mean():>6.3f}          "
            if precision == "bfloat16":
                for got in (scores, photo_scores):
                    same = cosine(got[resolution, precision], got[resolution, "float32"])
                    line += f" {same.mean():.4f}/{same.min():.4f}"
            print(line.rstrip())

    focus = args.focus
    images = [decode(b, focus) for b in blobs]
    print(f"\nat {focus} px: forward images/s by CPU time (wall in brackets)")
    print("batch precision  plain NCHW    plain ch-last  inference copy")
    for size in (8, 16, 32, 64):
        channels_last = batches_of(images, focus, size)  # preprocess returns a channels-last view
        contiguous = [b.contiguous() for b in channels_last]
        for precision in PRECISIONS:
            line = f"{size:>5} {precision:>9}"
            for net, data in (
                (load_model(), contiguous),
                (load_model(), channels_last),
                (inference_model(), channels_last),
            ):
                forward(net, data[:1], precision)  # warm-up
                _, wall, cpu_s = timed(forward, net, data, precision)
                line += f" {n / cpu_s:>6.0f} ({n / wall:>4.0f})"
            print(line)
    precision = "float32"
    print(f"\nend to end at {focus} px, {precision}, by batch size, images/s by CPU time (wall):")
    for size in (8, 16, 32, 64):
        with mp.get_context("spawn").Pool(1) as pool:  # a fresh process each: a clean heap
            wall, cpu_s = pool.apply(_encode_worker, ((blobs, focus, precision, size),))
        print(f"  batch {size:>2}: {n / cpu_s:>4.0f} ({n / wall:>4.0f})")

    print(f"\nCPU side only (decode with draft, stats, crop) at {focus} px, CPU time:")
    for name, resample in (("bicubic", Image.Resampling.BICUBIC), ("bilinear", Image.Resampling.BILINEAR)):
        print(f"  {name:>8}: {n / cpu_side(blobs, focus, resample):.0f} img/s")

    with mp.get_context("spawn").Pool(2) as pool:
        halves = [(blobs[: n // 2], focus, precision, batch), (blobs[n // 2 :], focus, precision, batch)]
        seconds = pool.map(_encode_worker, halves)
    slowest = max(wall for wall, _ in seconds)
    print(
        f"\n2 processes x 1 thread at {focus} px, {precision}, batch {batch}: {n / slowest:.0f} img/s together (wall)"
    )


if __name__ == "__main__":
    main()
