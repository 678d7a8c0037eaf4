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

    return load_config("test", [
        f"paths.lake={tmp_path / 'lake'}",
        f"paths.raw={tmp_path / 'raw'}",
        f"paths.raw_test={tmp_path / 'raw_test'}",
        f"paths.scraped={tmp_path / 'scraped'}",
        f"paths.scraped_test={tmp_path / 'scraped_test'}",
        f"paths.reports={tmp_path / 'reports'}",
    ])
