"""smp-spark: distributed SMPD popularity prediction on Spark, Delta Lake, SynapseML, xgboost.spark and Horovod.

Pins: the one measured set in which every named package has a release on Python 3.11 with
Spark 3.5 / Scala 2.12 (see README "Stack"). pyarrow stays at 14.0.2 and numpy below 2 because
Petastorm 0.13.1 (the fusion net's data path) breaks on newer pyarrow, and pyarrow >= 26 needs numpy 2.
The JVM halves (Delta, SynapseML LightGBM) come from Maven Central through Spark's own resolver.
The deep-learning stack (torch, Horovod, Petastorm) installs through ``make setup`` (scripts/install_dl.sh):
Horovod 0.28.1 needs a patched source build that pip alone cannot do.
"""
from setuptools import find_packages, setup

BASE = [
    "pyspark==3.5.9",
    "py4j==0.10.9.9",
    "delta-spark==3.3.3",
    "synapseml==1.1.3",
    "numpy==1.26.4",
    "pandas==2.3.3",
    "pyarrow==14.0.2",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "xgboost-cpu==3.2.0",
    "lightgbm==4.7.0",
    "PyYAML==6.0.4",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "catboost==1.2.10",
    "mlflow-skinny==3.17.2",
]

setup(
    name="smp-spark",
    version="0.1.0",
    description="Social-media popularity prediction (SMPD) as a distributed Spark pipeline",
    packages=find_packages(include=["smp_spark", "smp_spark.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=BASE,
    extras_require={
        "dev": ["pytest==9.2.0", "ruff==0.17.5", "deltalake==1.6.6"],  # deltalake: the pandas benchmark
    },
)
