"""Typed configuration: ``conf/base.yaml`` overlaid with a profile and ``--set`` overrides.

Every job loads one :class:`Config`. Unknown keys and values of the wrong type fail with a
:class:`ConfigError` that names the dotted key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from smp_spark.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
DEFAULT_PROFILE = "local"
Modality = Literal["tabular", "text", "image"]  # train.modalities: which inputs a model sees (ablations)
MODALITIES: tuple[str, ...] = typing.get_args(Modality)
Protocol = Literal["chronological", "seed"]
Precision = Literal["auto", "float32", "bfloat16"]
TextPrecision = Literal["auto", "float32", "bfloat16", "int8"]
# features.families: the feature families of smp_spark/features/registry.py a build makes and a model takes
FamilyName = Literal["time", "geo", "text", "user", "social", "category", "image", "embedding"]
FAMILY_NAMES: tuple[str, ...] = typing.get_args(FamilyName)


@dataclass
class PathsConfig:
    raw: str = "data/smpd/train"  # an SMPD training-release folder (JSON files + label file)
    raw_test: str = "data/smpd/test"  # an SMPD test-release folder: new posts to score, no labels
    scraped: str = "data/scraped/train"  # scraped tables for the training release (group_meta*.csv, ...)
    scraped_test: str = "data/scraped/test"  # scraped tables for the test release
    lake: str = "lake"  # root of every Delta table
    reports: str = "reports"
    models: str = "models"  # native model files and Spark models, by model and gold version


@dataclass
class DataConfig:
    scale: int = 680_000  # posts in the generated training release
    seed: int = 2015
    test_fraction: float = 0.05  # size of the generated test release, relative to scale
    description_dims: int = 64  # length of the user/location description vectors (real SMPD: ~400)
    # "local": a JPEG per post under its release folder (the 2023 release); "url": Flickr URLs, no images (2019)
    image_style: Literal["local", "url"] = "local"
    # below 1: an earlier day's release, only this share of the training posts (the earliest ones);
    # generating again with 1.0 into the same folders gives the next day's release (docs/data.md)
    release_share: float = 1.0
    # the release_share of the day before (0: none): its records keep their places, the later posts
    # are appended after them
    previous_release_share: float = 0.0


@dataclass
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "smp-spark"
    packages: list[str] = field(default_factory=list)  # Maven coordinates, resolved by Spark's Ivy
    conf: dict[str, str] = field(default_factory=dict)  # any spark.* setting


@dataclass
class IngestConfig:
    min_postdate: int = 946_684_800  # 2000-01-01: Flickr Postdates before this are implausible
    max_postdate: int = 1_893_456_000  # 2030-01-01
    # an image with more pixels is quarantined unread (a decompression bomb); Flickr originals stay far below
    max_image_pixels: int = 100_000_000


@dataclass
class FeaturesConfig:
    protocol: Protocol = "chronological"  # or "seed": a random split like the research's (leaky, for comparison)
    # the families built into gold and taken by the models; drop one for an ablation (e.g. without "social")
    families: list[FamilyName] = field(default_factory=lambda: list(FAMILY_NAMES))
    train_fraction: float = 0.8
    valid_fraction: float = 0.1
    split_seed: int = 42
    tfidf_vocab: int = 2000  # most frequent 1-2 grams kept per text
    tfidf_min_df: float = 5.0  # a gram must appear in this many training posts
    svd_components: int = 20
    text_embedding_pca_components: int = 20  # PCA of the sentence vector for the trees (the research: 600 GloVe dims)
    encoding_folds: int = 5  # out-of-fold target encoding of the category levels
    encoding_smoothing: float = 20.0
    encoding_seed: int = 2020
    text_embeddings: bool = True  # all-MiniLM-L6-v2 sentence embeddings (a separate, cached stage)
    embedding_batch_size: int = 32
    # "auto": bfloat16 weights on a CPU with AMX tiles, else the int8 ONNX Runtime graph where
    # onnxruntime is installed, else as image_precision (smp_spark.precision.choose_text_precision);
    # or force "float32" / "bfloat16" / "int8"
    embedding_precision: TextPrecision = "auto"
    image_embeddings: bool = True  # EfficientNet-Lite0 class scores + colour stats of each image (cached stage)
    image_resolution: int = 128  # pixels the image model runs at (its native 224 is slower; README: measured)
    image_batch_size: int = 16  # 16 measured fastest end to end at 128 px (benchmarks/image_model_speed.py)
    # "auto": bfloat16 where the CPU runs it faster than float32 (smp_spark.precision), else
    # float32 (the ONNX Runtime graph); or force "float32" / "bfloat16"
    image_precision: Precision = "auto"
    image_pca_components: int = 16  # PCA of the class scores, fitted on the training split, for the trees
    # keep the latest gold version's fitted state when no post moves away from training and the
    # settings are the same (a next-day rebuild; smp_spark/features/reuse.py), else fit again
    reuse_state: bool = False


@dataclass
class TrainConfig:
    seed: int = 2020
    use_embeddings: bool = False  # feed the raw text and image embeddings to the trees too (slower)
    modalities: list[Modality] = field(default_factory=lambda: list(MODALITIES))  # inputs the models see
    learning_rate: float = 0.03  # the research's settings
    num_leaves: int = 64
    max_depth: int = 8
    num_rounds: int = 10_000  # an upper bound: early stopping on the valid split ends training
    early_stopping_rounds: int = 50
    listen_port: int = 12_400  # first port of SynapseML LightGBM's network ring
    num_workers: int = 0  # distributed tasks; 0 = every task slot of the session
    # threads per xgboost.spark worker: its job's spark.task.cpus (xgboost.spark takes nthread from it);
    # 0 = every core of an executor, one worker per executor (fewer allreduces than one per core)
    xgboost_worker_threads: int = 0
    # continue from the model trained on the gold version whose fitted state this one kept (a
    # next-day rerun with features.reuse_state; smp_spark/models/warm_start.py), else train anew
    warm_start: bool = False
    tracking_uri: str = ""  # MLflow; empty = a file store in <project>/mlruns
    experiment: str = "smp-spark"


@dataclass
class FusionConfig:
    """The Horovod fusion net (smp_spark/models/fusion.py); its process count is ``train.num_workers``."""

    epochs: int = 100  # an upper bound: early stopping on the valid MAE ends training
    batch_size: int = 512  # the global batch: each of N Horovod processes takes batch_size / N rows a step
    learning_rate: float = 0.001  # Adam
    early_stopping_patience: int = 6  # epochs without a better valid MAE before training stops (the research's 11)
    warm_start_patience: int = 3  # the same for a net continued from an earlier one (train.warm_start)
    lr_patience: int = 3  # ReduceLROnPlateau on the valid loss (MSE), as the research
    lr_factor: float = 0.2
    min_lr: float = 1e-6
    missing_indicators: bool = True  # a 0/1 input per numeric slot that has nulls in the training split
    # the training steps' matrix products: bfloat16 under torch's CPU autocast (the weights, the
    # loss and every prediction stay float32); auto = bfloat16 where the CPU has bfloat16 matrix
    # instructions that a probe finds faster than float32 (smp_spark.precision), else float32.
    # Resolved on the driver.
    precision: Precision = "auto"
    seed: int = 2020
    # HOROVOD_CYCLE_TIME of the ranks: how long Horovod's background thread sleeps between rounds.
    # Horovod 0.28's 1 ms wakes it so often that, with 2 processes on 2 cores, it takes CPU from the
    # training threads (docs/benchmarks.md, benchmarks/fusion_speed.py). Timing only: same net.
    cycle_time_ms: float = 5.0


@dataclass
class ScrapeConfig:
    """The Flickr group scraper (smp_spark/scrape/); the API key comes only from $FLICKR_API_KEY."""

    base_url: str = "https://api.flickr.com/services/rest"
    calls_per_hour: float = 3600.0  # Flickr allows about 3,600 calls an hour per key; retries count too
    concurrency: int = 4  # requests in flight at once (hides latency; the rate limit still holds)
    max_retries: int = 5  # extra attempts after a 429, a 5xx, a timeout or Flickr's "service unavailable"
    backoff_seconds: float = 2.0  # wait before the first retry; doubles on each further retry
    max_backoff_seconds: float = 300.0  # cap on one wait, Retry-After included
    timeout_seconds: float = 30.0  # per request
    batch_size: int = 500  # photos committed to Delta together: a killed run loses at most one batch
    users: bool = False  # also scrape each owner's public contact and group counts (keyed by the posts' Uids)


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    source: str = ""  # which files this config came from, for logs

    def path(self, name: str) -> str:
        """An entry of ``paths`` as an absolute path (relative ones are under the project root)."""
        value = getattr(self.paths, name)
        if "://" in value or value.startswith("dbfs:"):
            return value
        return str((PROJECT_ROOT / value).resolve()) if not os.path.isabs(value) else value

    def table(self, name: str) -> str:
        """Location of a Delta table under the lake, e.g. ``table('bronze/posts')``."""
        return f"{self.path('lake').rstrip('/')}/{name}"


def _merge(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "conf":
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}  # spark.conf: keys are free-form, merge them flat
        else:
            out[key] = value
    return out


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return _build(annotation, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return {str(k): _scalar_text(v) for k, v in value.items()}
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if any(value == a and type(value) is type(a) for a in allowed):
            return value
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
    raise ConfigError(f"config key '{key}' has an unsupported type {annotation!r}")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown config key '{where}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def parse_override(text: str) -> dict:
    """``'data.scale=5000'`` -> ``{'data': {'scale': 5000}}`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got '{text}'")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set has an empty key part in '{text}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # spark.conf.<spark key with dots>: everything after "spark.conf." is one key
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        return {"spark": {"conf": {".".join(parts[2:]): value}}}
    nested: dict = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def resolve_profile(conf: str | None) -> Path:
    """A profile path from ``--conf``, else ``$SMP_CONF``, else ``conf/local.yaml``.

    A bare name such as ``test`` means ``conf/test.yaml``.
    """
    choice = conf or os.environ.get("SMP_CONF") or DEFAULT_PROFILE
    path = Path(choice)
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / f"{choice}.yaml"
    return path


def load_config(conf: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load ``conf/base.yaml``, overlay the profile, then each ``key=value`` override in order."""
    profile = resolve_profile(conf)
    merged = _read_yaml(CONF_DIR / "base.yaml")
    if profile.resolve() != (CONF_DIR / "base.yaml").resolve():
        merged = _merge(merged, _read_yaml(profile))
    for text in overrides:
        merged = _merge(merged, parse_override(text))
    merged.pop("source", None)
    config = _build(Config, merged)
    config.source = f"{profile}" + (f" + {len(overrides)} override(s)" if overrides else "")
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if config.data.scale < 10:
        raise ConfigError(f"config key 'data.scale' must be at least 10, got {config.data.scale}")
    if not 0 <= config.data.test_fraction <= 1:
        raise ConfigError("config key 'data.test_fraction' must lie in [0, 1]")
    if not 0 < config.data.release_share <= 1:
        raise ConfigError(f"config key 'data.release_share' must lie in (0, 1], got {config.data.release_share}")
    if not 0 <= config.data.previous_release_share < config.data.release_share:
        raise ConfigError(
            "config key 'data.previous_release_share' must lie in [0, data.release_share), "
            f"got {config.data.previous_release_share}"
        )
    if config.data.description_dims < 1:
        raise ConfigError("config key 'data.description_dims' must be at least 1")
    f = config.features
    if not f.families or len(set(f.families)) != len(f.families):
        raise ConfigError(f"config key 'features.families' takes a non-empty list without repeats, got {f.families}")
    if not (0 < f.train_fraction and 0 <= f.valid_fraction and f.train_fraction + f.valid_fraction < 1):
        raise ConfigError("config keys 'features.train_fraction' + 'features.valid_fraction' must leave a test split")
    if f.image_resolution < 32 or f.image_resolution % 32:  # the model's stride-2 padding needs it
        raise ConfigError(f"config key 'features.image_resolution' must be a multiple of 32, got {f.image_resolution}")
    if f.image_batch_size < 1 or f.image_pca_components < 1 or f.text_embedding_pca_components < 1:
        raise ConfigError(
            "config keys 'features.image_batch_size', 'features.image_pca_components' and "
            "'features.text_embedding_pca_components' must be >= 1"
        )
    if not config.train.modalities:
        raise ConfigError(f"config key 'train.modalities' takes a non-empty list of {', '.join(MODALITIES)}")
    if f.encoding_folds < 2:
        raise ConfigError("config key 'features.encoding_folds' must be at least 2")
    if config.ingest.min_postdate >= config.ingest.max_postdate:
        raise ConfigError("config key 'ingest.min_postdate' must be below 'ingest.max_postdate'")
    if config.fusion.early_stopping_patience < 1 or config.fusion.warm_start_patience < 1:
        raise ConfigError("config keys 'fusion.early_stopping_patience' and 'fusion.warm_start_patience' must be >= 1")
    if config.fusion.epochs < 1:
        raise ConfigError("config key 'fusion.epochs' must be at least 1")
    if config.fusion.batch_size < 2:  # batch norm needs two rows a step
        raise ConfigError("config key 'fusion.batch_size' must be at least 2")
    if not 0 < config.fusion.lr_factor < 1:
        raise ConfigError("config key 'fusion.lr_factor' must lie in (0, 1)")
    _validate_scrape(config.scrape)


def _validate_scrape(s: ScrapeConfig) -> None:
    if not s.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"config key 'scrape.base_url' must be an http(s) URL, got '{s.base_url}'")
    if s.calls_per_hour <= 0:
        raise ConfigError("config key 'scrape.calls_per_hour' must be above 0")
    for name in ("concurrency", "batch_size"):
        if getattr(s, name) < 1:
            raise ConfigError(f"config key 'scrape.{name}' must be at least 1")
    if s.max_retries < 0:
        raise ConfigError("config key 'scrape.max_retries' must be 0 or more")
    if s.backoff_seconds < 0 or s.max_backoff_seconds < s.backoff_seconds:
        raise ConfigError("config keys 'scrape.backoff_seconds' must be >= 0 and <= 'scrape.max_backoff_seconds'")
    if s.timeout_seconds <= 0:
        raise ConfigError("config key 'scrape.timeout_seconds' must be above 0")
