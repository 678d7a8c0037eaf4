"""spark-submit entry point: bronze Delta tables -> the gold feature table (a new Delta version).

spark-submit jobs/build_features.py [--conf conf/cluster.yaml] [--set features.protocol=seed]
spark-submit jobs/build_features.py --set features.reuse_state=true   # the next-day rebuild
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from pyspark.sql import functions as F  # noqa: E402

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.features.build import build_gold, feature_specs  # noqa: E402
from smp_spark.features.gold import GOLD, read_bronze, write_gold  # noqa: E402
from smp_spark.features.reuse import reusable_state  # noqa: E402


def main(config, args, spark):
    inputs = read_bronze(spark, config)
    kept, why = reusable_state(spark, config, inputs)
    print(f"build_features: {why}" if kept else f"build_features: fitting the feature state ({why})", flush=True)
    gold, state = build_gold(inputs, config, kept.state if kept else None)
    specs = feature_specs(config)
    version = write_gold(spark, config, gold, state, specs, kept.fitted_on if kept else None)
    written = spark.read.format("delta").load(config.table(GOLD))
    counts = written.groupBy("split").agg(F.count(F.lit(1)).alias("posts"), F.avg("label").alias("mean_label"))
    rows = [(r["split"], r["posts"], f"{r['mean_label']:.3f}") for r in counts.orderBy("split").collect()]
    print(format_table(["split", "posts", "mean label"], rows))
    families = {}
    for spec in specs:
        families[spec.family] = families.get(spec.family, 0) + 1
    print(format_table(["family", "features"], sorted(families.items())))
    print(f"{config.table(GOLD)} version {version} ({config.features.protocol} split)")


if __name__ == "__main__":
    run_job("build_features", main)
