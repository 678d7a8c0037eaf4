"""Static int8 quantisation of the EfficientNet-Lite0 image graph: speed and agreement (issue 13, target 2).

One process, one thread (as one Spark task), no Spark:

    .venv/bin/python benchmarks/image_int8.py [--resolution 128] [--images 300] [--sqnr]

The product's float32 ONNX Runtime graph (``image_model.onnx_graph``) quantised with ONNX Runtime's
``quantize_static`` (QDQ, per-channel weights), calibrated on 64 synthetic and 64 real-photo crops
(other seeds than the evaluation images), in the variants below; each is compared with the float32
graph on ``--images`` synthetic JPEGs and as many crops of the three real photographs that
``image_model_speed.py`` uses: forward images/s (CPU time, batch 16), cosine of the 1000 logits
(mean and min; issue 13's bar: mean >= 0.99, none below 0.95) and top-1 agreement. The graphs are
built in a temporary folder and thrown away. ``--sqnr`` also prints, for the MinMax graph, the
signal-to-quantisation-noise ratio of its activations against their own QDQ copies (ONNX Runtime's
``qdq_loss_debug``): where the agreement is lost.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from typing import Callable

import numpy as np
from image_model_speed import cosine, photo_crops, synthetic_jpegs

BATCH = 16


def pixels(blobs: list[bytes], resolution: int) -> np.ndarray:
    from smp_spark.features import image_model as im

    images = [im.decode(b, resolution) for b in blobs]
    return np.ascontiguousarray(im.preprocess(images, resolution).numpy())


def batches(x: np.ndarray):
    """An ONNX Runtime calibration reader of ``x`` in batches of ``BATCH`` (read once)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([x[i : i + BATCH] for i in range(0, len(x), BATCH)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"pixels": batch}

    return Reader()


def session(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def logits(sess, x: np.ndarray) -> np.ndarray:
    return np.concatenate([sess.run(None, {"pixels": x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def speed(sess, x: np.ndarray) -> float:
    logits(sess, x[: 2 * BATCH])  # warm-up
    started = time.process_time()
    logits(sess, x)
    return len(x) / (time.process_time() - started)


def main() -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from smp_spark.features import image_model as im

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--sqnr", action="store_true", help="also each MinMax graph activation's QDQ SQNR")
    args = parser.parse_args()
    r = args.resolution
    calibration = pixels(synthetic_jpegs(64, seed=11) + photo_crops(64, seed=12), r)
    synthetic, photos = pixels(synthetic_jpegs(args.images, seed=21), r), pixels(photo_crops(args.images, seed=22), r)

    float_graph = str(im.onnx_graph(r))
    reference = session(float_graph)
    ref_synthetic, ref_photos = logits(reference, synthetic), logits(reference, photos)
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f" {f}" in flags]
    print(f"{r} px, {args.images} synthetic + {args.images} photo crops; {platform.machine()}, {os.cpu_count()} cores")
    print(f"instruction sets: {', '.join(isa)}")
    print(
        "\n| graph | forward img/s (CPU) | vs float32 | synthetic cosine mean / min | photos cosine mean / min "
        "| top-1 synthetic / photos |\n|---|---|---|---|---|---|"
    )
    base = speed(reference, synthetic)
    print(f"| float32 (shipped) | {base:.0f} | 1.00x | 1 / 1 | 1 / 1 | 1 / 1 |")
    common = dict(quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(float_graph, pre, skip_symbolic_shape=True)
        nodes = onnx.load(pre).graph.node
        grouped = [n for n in nodes if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]
        depthwise = [n.name for n in grouped]
        head = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
        variants = {
            "int8 weights (U8S8), MinMax": dict(weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax),
            "int8 weights (U8S8), 99.99th percentile": dict(
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
                extra_options={"CalibPercentile": 99.99},
            ),
            "int8 weights (U8S8), 99.9th percentile": dict(
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
                extra_options={"CalibPercentile": 99.9},
            ),
            "7-bit weights (U8S8, reduce_range)": dict(weight_type=QuantType.QInt8, reduce_range=True),
            "U8S8 reduce_range, depthwise and head in float": dict(
                weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=depthwise + head
            ),
            "uint8 weights (U8U8)": dict(weight_type=QuantType.QUInt8),
        }
        for name, options in variants.items():
            out = os.path.join(tmp, "q.onnx")
            quantize_static(pre, out, batches(calibration), **common, **options)
            q = session(out)
            qs, qp = logits(q, synthetic), logits(q, photos)
            cs, cp = cosine(qs, ref_synthetic), cosine(qp, ref_photos)
            top = (qs.argmax(1) == ref_synthetic.argmax(1)).mean(), (qp.argmax(1) == ref_photos.argmax(1)).mean()
            rate = speed(q, synthetic)
            print(
                f"| {name} | {rate:.0f} | {rate / base:.2f}x | {cs.mean():.4f} / {cs.min():.4f} "
                f"| {cp.mean():.4f} / {cp.min():.4f} | {top[0]:.2f} / {top[1]:.2f} |",
                flush=True,
            )
            if args.sqnr and name.endswith("MinMax"):
                sqnr = activation_sqnr(pre, out, lambda: batches(synthetic[:32]))
                relu6 = sorted(v for k, v in sqnr.items() if "Clip_output" in k)
                other = sorted(v for k, v in sqnr.items() if "Clip_output" not in k)
                print(
                    f"|   its activations' SQNR against their own QDQ, 32 synthetic images: {len(relu6)} ReLU6 outputs "
                    f"{relu6[0]:.1f}-{relu6[-1]:.1f} dB (median {np.median(relu6):.1f}); {len(other)} others "
                    f"{other[0]:.1f}-{other[-1]:.1f} dB (median {np.median(other):.1f}) | | | | |",
                    flush=True,
                )


def activation_sqnr(pre: str, quantized: str, reader: Callable) -> dict[str, float]:
    """Signal-to-quantisation-noise ratio (dB) of each activation tensor against its own QDQ copy,
    from ONNX Runtime's ``qdq_loss_debug`` on the images of ``reader``."""
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    folder = os.path.dirname(quantized)
    float_all, quant_all = os.path.join(folder, "float_all.onnx"), os.path.join(folder, "quant_all.onnx")
    modify_model_output_intermediate_tensors(pre, float_all)
    modify_model_output_intermediate_tensors(quantized, quant_all)
    quant_values, float_values = collect_activations(quant_all, reader()), collect_activations(float_all, reader())
    matched = create_activation_matching(quant_values, float_values)
    return {name: e["qdq_err"] for name, e in compute_activation_error(matched).items() if "qdq_err" in e}


if __name__ == "__main__":
    main()
