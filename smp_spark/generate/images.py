"""Post images for a "local" (2023-style) release: ``<prefix>/<Uid>/<Pid>.jpg`` under the release
folder, a few of them missing or broken, and a truth CSV beside the release folder.

Everything random is drawn here, in the parent, from named streams; the workers only render and
write (paint.py), each post from its own layout seed, so the bytes depend neither on the number of
processes nor on the chunking.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from smp_spark.generate.common import _stream
from smp_spark.generate.paint import palettes, render
from smp_spark.generate.people import Posts
from smp_spark.generate.world import World

JPEG_QUALITY = 75  # optimised Huffman tables would save ~18% of the bytes at ~40% more encoding time
KNOB_NOISE = 0.6  # sd of the per-image noise added to the appeal for each of the four quality scores
IMAGE_CHUNK = 1000  # posts per worker task
POOL_MIN_POSTS = 20_000  # fewer posts: render in this process (starting workers costs ~1 s)
KINDS = ("ok", "missing", "truncated", "not_image", "empty")
KIND_SHARES = (0.9955, 0.002, 0.001, 0.001, 0.0005)
# (width, height) ratios: landscape 55%, portrait 35%, square 10%
ASPECTS = ((3, 2), (4, 3), (16, 9), (2, 3), (3, 4), (1, 1))
ASPECT_SHARES = (0.25, 0.2, 0.1, 0.2, 0.15, 0.1)
ROTATED_SHARE = {"portrait": 0.2, "other": 0.045}  # phones store portraits sideways: ~10% in all
ROTATIONS = ((6, 0.55), (8, 0.3), (3, 0.15))  # EXIF orientation of a rotated photo
ERROR_PAGES = (
    "<!DOCTYPE html>\n<html><head><title>Flickr: Page Not Found</title></head>\n"
    "<body><h1>This photo is no longer available</h1><p>{path}</p></body></html>\n",
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    "<Key>{path}</Key></Error>\n",
    "503 Service Temporarily Unavailable: please try again later\n",
)
TRUTH_HEADER = "Pid,path,kind,stored_width,stored_height,display_width,display_height,orientation,appeal\n"


def local_path(prefix: str, uid: str, pid: int) -> str:
    """A post's image file, relative to its release folder: ``train/12345@N01/987.jpg``."""
    return f"{prefix}/{uid}/{pid}.jpg"


@dataclass
class ImagePlan:
    """Per post: display size, EXIF orientation, file kind, quality scores and layout seed."""

    width: np.ndarray  # as displayed
    height: np.ndarray
    orientation: np.ndarray  # 1 (no EXIF), or the EXIF tag 3, 6 or 8
    kind: np.ndarray  # index into KINDS
    cut: np.ndarray  # truncated files: share of the scan data kept
    knobs: np.ndarray  # (posts, 4): brightness, contrast, saturation, sharpness scores
    hue_jitter: np.ndarray  # degrees
    layout_seed: np.ndarray

    def take(self, rows: np.ndarray) -> ImagePlan:
        """The plans of the posts at ``rows``, in that order."""
        return ImagePlan(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))

    @property
    def stored(self) -> tuple[np.ndarray, np.ndarray]:
        """Width and height of the pixels as stored (swapped for orientations 6 and 8)."""
        turned = np.isin(self.orientation, (6, 8))
        return np.where(turned, self.height, self.width), np.where(turned, self.width, self.height)


def plan_images(seed: int, appeal: np.ndarray) -> ImagePlan:
    """Sizes (long side 128-256 px), aspect, orientation, kind and quality scores of every post."""
    n = len(appeal)
    rng = _stream(seed, "image_files")
    aspect = rng.choice(len(ASPECTS), size=n, p=ASPECT_SHARES)
    long_side = rng.integers(128, 257, n)
    ratio = np.array([a / b for a, b in ASPECTS])[aspect]
    width = np.where(ratio >= 1, long_side, np.rint(long_side * ratio)).astype(np.int64)
    height = np.where(ratio >= 1, np.rint(long_side / ratio), long_side).astype(np.int64)
    portrait = ratio < 1
    rotated = rng.random(n) < np.where(portrait, ROTATED_SHARE["portrait"], ROTATED_SHARE["other"])
    tag = rng.choice([o for o, _ in ROTATIONS], size=n, p=[p for _, p in ROTATIONS])
    orientation = np.where(rotated, tag, 1)
    kind = rng.choice(len(KINDS), size=n, p=KIND_SHARES)
    cut = rng.uniform(0.3, 0.8, n)
    knobs = appeal[:, None] + KNOB_NOISE * _stream(seed, "image_quality").standard_normal((n, 4))
    layout = _stream(seed, "image_layout")
    hue_jitter = layout.uniform(-8.0, 8.0, n)
    layout_seed = layout.integers(0, 2**62, n)
    return ImagePlan(width, height, orientation, kind, cut, knobs, hue_jitter, layout_seed)


@dataclass
class Chunk:
    """One worker task: the posts' files under ``folder`` and everything needed to draw them."""

    release: str
    folder: str
    paths: list[str]
    category: list[int]
    width: list[int]
    height: list[int]
    orientation: list[int]
    kind: list[int]
    cut: list[float]
    colors: np.ndarray  # (posts, 5, 3) uint8
    blur: list[float]
    layout_seed: list[int]


def _truncated(data: bytes, keep: float) -> bytes:
    """A JPEG cut inside its scan data: the header opens, the pixels fail to decode."""
    scan = data.find(b"\xff\xda") + 2
    return data[: scan + int(keep * (len(data) - scan))]


def _write_if_changed(target: str, data: bytes) -> None:
    """Write ``data`` unless the file already holds exactly it: a release generated again into its
    folder (a later day's release) leaves its unchanged images, and their times, as they were."""
    try:
        with open(target, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass
    with open(target, "wb") as f:
        f.write(data)


def render_chunk(chunk: Chunk) -> tuple[str, int, int, int]:
    """Render and write a chunk's files (a missing one is skipped). Output: (release, posts,
    files, bytes)."""
    made: set[str] = set()
    files = total = 0
    for i, path in enumerate(chunk.paths):
        kind = KINDS[chunk.kind[i]]
        target = os.path.join(chunk.folder, path)
        if kind == "missing":
            if os.path.lexists(target):  # left by an earlier run into the same folder
                os.remove(target)
            continue
        if kind == "empty":
            data = b""
        elif kind == "not_image":
            data = ERROR_PAGES[chunk.layout_seed[i] % len(ERROR_PAGES)].format(path=path).encode()
        else:
            size, colors = (chunk.width[i], chunk.height[i]), [tuple(c) for c in chunk.colors[i].tolist()]
            args = (chunk.orientation[i], colors, chunk.blur[i], chunk.layout_seed[i], JPEG_QUALITY)
            data = render(chunk.category[i], size, *args)
            if kind == "truncated":
                data = _truncated(data, chunk.cut[i])
        folder = os.path.dirname(target)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        _write_if_changed(target, data)
        files += 1
        total += len(data)
    return chunk.release, len(chunk.paths), files, total


def _hue_shift(world: World, concept: np.ndarray) -> np.ndarray:
    """Degrees added to the category's hue: 8 per subcategory step from the middle one, +-6 by concept."""
    sub = world.concept_sub[concept]
    first = np.searchsorted(world.sub_category, world.sub_category[sub])  # subcategories are grouped by category
    per_category = np.bincount(world.sub_category)[world.sub_category[sub]]
    return 8.0 * (sub - first - (per_category - 1) / 2) + 3.0 * (concept * 7 % 5 - 2)


def _tasks(
    releases: dict[str, tuple[str, int, int, Path]], posts: Posts, uid: list[str], world: World, plan: ImagePlan
) -> Iterator[Chunk]:
    """Chunks of IMAGE_CHUNK posts, each release's posts in owner order: a user's folder is then
    filled at once (file creation is several times cheaper than in record order)."""
    for prefix, (folder, start, stop, _) in releases.items():
        order = start + np.argsort(posts.owner[start:stop], kind="stable")
        for a in range(0, len(order), IMAGE_CHUNK):
            i = order[a : a + IMAGE_CHUNK]
            category = world.sub_category[world.concept_sub[posts.concept[i]]]
            colors, blur = palettes(category, _hue_shift(world, posts.concept[i]) + plan.hue_jitter[i], plan.knobs[i])
            yield Chunk(
                prefix,
                folder,
                [local_path(prefix, uid[o], p) for o, p in zip(posts.owner[i].tolist(), posts.pid[i].tolist())],
                category.tolist(),
                plan.width[i].tolist(),
                plan.height[i].tolist(),
                plan.orientation[i].tolist(),
                plan.kind[i].tolist(),
                plan.cut[i].tolist(),
                colors,
                blur.tolist(),
                plan.layout_seed[i].tolist(),
            )


def _write_truth(path: Path, prefix: str, start: int, stop: int, posts: Posts, uid: list[str], plan: ImagePlan):
    """``image_truth.csv``: every listed image's kind, sizes, orientation and latent appeal."""
    stored_w, stored_h = plan.stored
    with open(path, "w", encoding="utf-8") as f:
        f.write(TRUTH_HEADER)
        f.writelines(
            f"{p},{local_path(prefix, uid[o], p)},{KINDS[k]},{sw},{sh},{w},{h},{r},{a:.4f}\n"
            for p, o, k, sw, sh, w, h, r, a in zip(
                *(x[start:stop].tolist() for x in (posts.pid, posts.owner, plan.kind, stored_w, stored_h)),
                *(x[start:stop].tolist() for x in (plan.width, plan.height, plan.orientation, posts.appeal)),
            )
        )


def write_images(
    releases: dict[str, tuple[str, int, int, Path]],
    plan: ImagePlan,
    posts: Posts,
    uid: list[str],
    world: World,
    workers: int | None = None,
    step: Callable[[str], None] = lambda name: None,
) -> dict:
    """Render every release's images and write its truth CSV.

    Input: ``releases`` maps a prefix ("train", "test") to (release folder, first post, end, truth
    CSV path); ``plan``: every post's :func:`plan_images`; ``workers`` processes (None:
    ``os.cpu_count()`` from POOL_MIN_POSTS posts on, else 1).
    Output: the ground truth's per-release kind counts, files and bytes."""
    total = sum(stop - start for _, start, stop, _ in releases.values())
    if workers is None:
        workers = (os.cpu_count() or 1) if total >= POOL_MIN_POSTS else 1
    workers = max(1, min(workers, -(-total // IMAGE_CHUNK)))
    section: dict = {}
    with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else _Inline() as pool:
        results = pool.imap(render_chunk, _tasks(releases, posts, uid, world, plan))  # workers start now
        for prefix, (_, start, stop, truth_path) in releases.items():
            _write_truth(truth_path, prefix, start, stop, posts, uid, plan)
            counts = np.bincount(plan.kind[start:stop], minlength=len(KINDS))
            section[prefix] = {
                "kinds": dict(zip(KINDS, counts.tolist())),
                "rotated": int(np.sum(plan.orientation[start:stop] != 1)),
                "files": 0,
                "bytes": 0,
                "truth_file": truth_path.name,
            }
        done, shown = 0, 0
        for prefix, n, files, size in results:
            section[prefix]["files"] += files
            section[prefix]["bytes"] += size
            done += n
            if done * 10 // total > shown or done == total:
                shown = done * 10 // total
                step(f"images {done:,}/{total:,}")
    return section


class _Inline:
    """The Pool interface, run in this process."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, fn, items):
        return map(fn, items)
