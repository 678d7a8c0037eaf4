"""Start a session with the configured jars and prove each part of the stack answers.

python jobs/check_stack.py        # `make setup` runs it once, which also warms the Ivy jar cache
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402


def main(config, args, spark):
    import pyspark

    with tempfile.TemporaryDirectory() as tmp:
        spark.range(3).write.format("delta").save(f"{tmp}/t")
        rows = spark.read.format("delta").load(f"{tmp}/t").count()
    from synapse.ml.lightgbm import LightGBMRegressor

    LightGBMRegressor()  # fails with "'JavaPackage' object is not callable" when the jar is missing
    print(
        f"spark {pyspark.__version__}, master {spark.sparkContext.master}, "
        f"delta table read back {rows} rows, SynapseML LightGBM jar loaded"
    )


if __name__ == "__main__":
    run_job("check_stack", main)
