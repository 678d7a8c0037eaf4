"""spark-submit entry point: SMPD release + scraped tables -> bronze Delta tables.

spark-submit jobs/ingest.py [--conf conf/cluster.yaml] [--set paths.raw=/data/smpd/train]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.ingest import build_bronze, quarantine_summary, write_bronze  # noqa: E402
from smp_spark.ingest.pipeline import format_table  # noqa: E402


def main(config, args, spark):
    bronze = build_bronze(spark, config, config.path("raw"), config.path("scraped"))
    written = write_bronze(spark, config, bronze)
    print(format_table(["input file", "rows read"], sorted(bronze.rows_read.items())))
    print()
    print(format_table(["table", "rows"], sorted(written.items())))
    print()
    print(format_table(["quarantined from", "field: reason", "rows"], quarantine_summary(spark, config)))
    spark.catalog.clearCache()


if __name__ == "__main__":
    run_job("ingest", main)
