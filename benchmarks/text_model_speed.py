"""Speed and agreement of the text embedding model's settings, side by side (issue 13, target 1).

One process, one thread (as one Spark task), no Spark:

    .venv/bin/python benchmarks/text_model_speed.py [--texts 3000] [--rounds 2]

Texts: ``--texts`` posts of a freshly generated release (``smp_spark.generate``, seed 7), cleaned
as ``cleaned_text`` does (the same regular expressions, in Python's ``regex``). Reference: the
float32 sentence-transformers vectors. Settings, run in turn ``--rounds`` times over the same
texts so a busy machine slows them alike (rates are texts per second of wall time and of this
process's CPU time): sentence-transformers float32 and bfloat16 autocast, ``text_bf16`` in
OpenVINO (as shipped) and in torch (its path without openvino), that graph in static int8 in
OpenVINO (calibrated on 300 other generated texts; not shipped), and ONNX Runtime with the fused
float graph, int8 on every MatMul, int8 with the feed-forward output projections in float (recipe
1), and int8 as shipped (those six scaled per word piece). Agreement: mean and min cosine to the reference. Ends with
this machine's ``auto`` setting in two processes at once (the 2 cores of one executor), end to end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import regex

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def generated_texts(n: int) -> list[str]:
    """``n`` cleaned Title + Alltags texts of a generated release (URL-style images: no JPEGs)."""
    from smp_spark.features.embeddings import NOISE_TAGS
    from smp_spark.generate import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        generate_dataset(str(d / "train"), str(d / "test"), str(d / "s"), str(d / "st"), n, 7, 0.0, 4,
                         image_style="url")  # fmt: skip
        posts = json.load(open(next((d / "train").glob("*_text.json"))))
    noise = "|".join(regex.escape(t) for t in NOISE_TAGS)
    texts = []
    for post in posts[:n]:
        text = f"{post.get('Title') or ''} {post.get('Alltags') or ''}".lower()
        text = regex.sub(r"(https?://\S+|www\.\S+)", " ", text)
        text = regex.sub(rf"(^|\s)({noise})(?=\s|$)", " ", text)
        text = regex.sub(r"[^\p{L}\p{N}\s]", " ", text)
        texts.append(regex.sub(r"\s+", " ", text).strip())
    return texts


def openvino_int8(scratch: Path, calibration: list[str], keep_ffn_float: bool) -> Path:
    """The float graph of ``text_bf16`` with its weight MatMuls in static int8 (ONNX Runtime's
    quantizer, QDQ format, symmetric: weights per output channel, activations per tensor from
    ``calibration``, one text per run), run by OpenVINO on the AMX int8 tiles; with
    ``keep_ffn_float`` the six feed-forward output projections stay bfloat16. Session 32: not
    shipped (``docs/benchmarks.md``)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from smp_spark.features import text_bf16, text_model

    source = str(text_bf16.graph())
    model = onnx.load(source)
    weights = {w.name for w in model.graph.initializer}
    excluded = [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul"
        and (n.input[1] not in weights or (keep_ffn_float and n.name.endswith(text_model.FLOAT_MATMULS)
                                           and "attention" not in n.name))
    ]  # fmt: skip

    class Texts(CalibrationDataReader):
        def __init__(self):
            self.encodings = iter(text_model.tokenizer().encode_batch(calibration))

        def get_next(self):
            encoding = next(self.encodings, None)
            if encoding is None:
                return None
            ids = np.asarray([encoding.ids], np.int64)
            return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    dest = scratch / f"openvino_int8_{'ffn_float' if keep_ffn_float else 'all'}.onnx"
    quantize_static(
        source, str(dest), Texts(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )  # fmt: skip
    return dest


def variants(scratch: Path, calibration: list[str]) -> dict:
    """The settings compared: name -> encode(texts, batch) -> array."""
    import torch

    from smp_spark.features import embeddings, text_bf16, text_model

    torch.set_num_threads(1)
    fused = text_model.fuse(text_model.export_float(scratch / "export.onnx"), scratch / "fused.onnx")
    every_int8 = text_model.quantize(fused, scratch / "all_int8.onnx", keep_float=False)
    ffn_float = text_model.quantize(fused, scratch / "ffn_float.onnx")  # recipe 1

    def torch_encoder(precision):
        return lambda texts, batch: np.asarray(embeddings.encode(texts, batch, precision))

    def autocast(texts, batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return embeddings.load_model().encode(texts, batch_size=batch, show_progress_bar=False)

    def bfloat16_in(runtime, onnx_graph=None):
        def encode(texts, batch):
            shipped = text_bf16.runtime, text_bf16.graph
            text_bf16.runtime = lambda: runtime  # the path text_bf16 takes where only that runtime is installed
            if onnx_graph is not None:
                text_bf16.graph = lambda: onnx_graph
            try:
                return text_bf16.encode(texts, batch)
            finally:
                text_bf16.runtime, text_bf16.graph = shipped

        return encode

    def openvino_int8_in(keep_ffn_float):
        return bfloat16_in("OpenVINO", openvino_int8(scratch, calibration, keep_ffn_float))

    def ort_encoder(graph):
        return lambda texts, batch: text_model.encode(texts, graph)  # one text per run

    return {
        "sentence-transformers float32 (reference)": torch_encoder("float32"),
        "sentence-transformers bfloat16 autocast": autocast,
        "bfloat16 in OpenVINO as shipped (text_bf16)": bfloat16_in("OpenVINO"),
        "bfloat16 weights in torch (text_bf16 without openvino)": bfloat16_in("torch"),
        "OpenVINO static int8, every weight MatMul": openvino_int8_in(keep_ffn_float=False),
        "OpenVINO static int8, FFN outputs bfloat16": openvino_int8_in(keep_ffn_float=True),
        "ONNX Runtime float32 (fused graph)": ort_encoder(fused),
        "ONNX Runtime int8, every MatMul": ort_encoder(every_int8),
        "ONNX Runtime int8, FFN outputs float (recipe 1)": ort_encoder(ffn_float),
        "ONNX Runtime int8 as shipped (FFN outputs per word piece)": ort_encoder(None),
    }


def _shipped_worker(texts: list[str], batch: int, precision: str, queue) -> None:
    from smp_spark.features import embeddings

    embeddings.encode(texts[:64], batch, precision)  # load outside the clock
    start = time.perf_counter()
    embeddings.encode(texts, batch, precision)
    queue.put(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    from tokenizers import Tokenizer

    from smp_spark.features.text_model import weights_dir

    texts = generated_texts(args.texts)
    tokenizer = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128
    tokenizer.no_truncation()
    pieces = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    machine = platform.processor() or platform.machine()
    print(f"{len(texts)} generated texts; word pieces median {np.median(pieces):.0f}, p90 "
          f"{np.percentile(pieces, 90):.0f}, max {pieces.max()} (the model keeps 256); {machine}, "
          f"{os.cpu_count()} cores", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        encoders = variants(Path(tmp), generated_texts(args.texts + 300)[-300:])
        for encode in encoders.values():
            encode(texts[:64], args.batch)  # warm up: load models outside the clock
        wall = {name: [] for name in encoders}
        cpu = {name: [] for name in encoders}
        vectors = {}
        for _ in range(args.rounds):
            for name, encode in encoders.items():
                w, c = time.perf_counter(), time.process_time()
                vectors[name] = np.asarray(encode(texts, args.batch), dtype=np.float32)
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
    reference = vectors["sentence-transformers float32 (reference)"]
    print("\n| setting | texts/s (wall) | texts/s (CPU) | vs float32 | mean cosine | min cosine |")
    print("|---|---|---|---|---|---|")
    base = len(texts) / min(wall["sentence-transformers float32 (reference)"])
    for name, v in vectors.items():
        cosine = (v * reference).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(reference, axis=1)
        rate = len(texts) / min(wall[name])
        print(f"| {name} | {rate:.1f} | {len(texts) / min(cpu[name]):.1f} | {rate / base:.2f}x | "
              f"{cosine.mean():.4f} | {cosine.min():.4f} |")  # fmt: skip
    from smp_spark.features.embeddings import resolve_text_precision

    precision = resolve_text_precision("auto")
    queue = mp.get_context("spawn").Queue()
    workers = [
        mp.get_context("spawn").Process(target=_shipped_worker, args=(texts, args.batch, precision, queue))
        for _ in (0, 1)
    ]
    for w in workers:
        w.start()
    seconds = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    print(f"\nauto ({precision}), two processes at once: {2 * len(texts) / max(seconds):.1f} texts/s together")


if __name__ == "__main__":
    main()
