"""One session-scoped SparkSession (real Delta, real jars) for the whole suite."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SMP_CONF", "test")


@pytest.fixture(scope="session")
def config():
    from smp_spark.config import load_config

    return load_config("test")


@pytest.fixture(scope="session")
def spark(config):
    from smp_spark.session import get_spark

    session = get_spark(config)
    yield session
    session.stop()


@pytest.fixture
def lake_config(tmp_path):
    """A test config whose lake, raw and scraped folders live in a fresh temporary folder."""
    from smp_spark.config import load_config

    return load_config(
        "test",
        [
            f"paths.lake={tmp_path / 'lake'}",
            f"paths.raw={tmp_path / 'raw'}",
            f"paths.raw_test={tmp_path / 'raw_test'}",
            f"paths.scraped={tmp_path / 'scraped'}",
            f"paths.scraped_test={tmp_path / 'scraped_test'}",
            f"paths.reports={tmp_path / 'reports'}",
            f"paths.models={tmp_path / 'models'}",
        ],
    )


@pytest.fixture(scope="session")
def generated_lake(spark, tmp_path_factory):
    """A generated dataset (``data.scale`` of conf/test.yaml) ingested into bronze, its images embedded,
    once per session.

    Returns the config pointing at it. Tests must not write into this lake's bronze tables.
    """
    from smp_spark.config import load_config
    from smp_spark.features.image_embeddings import embed_bronze_images
    from smp_spark.generate import generate_dataset
    from smp_spark.ingest import ingest_release

    root = tmp_path_factory.mktemp("generated")
    cfg = load_config(
        "test",
        [
            f"paths.raw={root / 'smpd' / 'train'}",
            f"paths.raw_test={root / 'smpd' / 'test'}",
            f"paths.scraped={root / 'scraped' / 'train'}",
            f"paths.scraped_test={root / 'scraped' / 'test'}",
            f"paths.lake={root / 'lake'}",
            f"paths.reports={root / 'reports'}",
            f"paths.models={root / 'models'}",
            "features.image_embeddings=true",
        ],
    )
    generate_dataset(
        cfg.path("raw"),
        cfg.path("raw_test"),
        cfg.path("scraped"),
        cfg.path("scraped_test"),
        cfg.data.scale,
        cfg.data.seed,
        cfg.data.test_fraction,
        cfg.data.description_dims,
    )
    ingest_release(spark, cfg, cfg.path("raw"), cfg.path("scraped"))  # as jobs/ingest.py does
    embed_bronze_images(spark, cfg)
    return cfg


@pytest.fixture(scope="session")
def gold_lake(spark, generated_lake, tmp_path_factory):
    """``generated_lake`` with its gold feature table written, MLflow runs kept in a temp folder."""
    from dataclasses import replace

    from smp_spark.features.build import build_gold, feature_specs
    from smp_spark.features.gold import read_bronze, write_gold

    cfg = replace(
        generated_lake, train=replace(generated_lake.train, tracking_uri=f"file:{tmp_path_factory.mktemp('mlruns')}")
    )
    gold, state = build_gold(read_bronze(spark, cfg), cfg)
    write_gold(spark, cfg, gold, state, feature_specs(cfg))
    return cfg
