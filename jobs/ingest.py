"""spark-submit entry point: SMPD release + scraped tables -> bronze Delta tables.

spark-submit jobs/ingest.py [--conf conf/cluster.yaml] [--set paths.raw=/data/smpd/train] [--force]

A rerun on the same input (every file's checksum, the listed images' sizes and times, the ingest
settings) is skipped when no bronze table has been written since, and says so; --force ingests again.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.catalog import INGEST_LOG  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.ingest import ingest_release, quarantine_summary  # noqa: E402


def add_args(parser):
    parser.add_argument("--force", action="store_true", help="ingest even when the input is unchanged")


def main(config, args, spark):
    run = ingest_release(spark, config, config.path("raw"), config.path("scraped"), force=args.force)
    if run.skipped_since is not None:
        print(
            f"ingest: skipped: the input is unchanged since the ingest of {run.skipped_since} "
            f"({run.fingerprint.describe()}), and the bronze tables are as it left them (--force ingests again)"
        )
        return
    print(format_table(["input file", "rows read"], sorted(run.rows_read.items())))
    print()
    print(format_table(["table", "rows"], sorted(run.written.items())))
    print(f"input fingerprint: {run.fingerprint.describe()}; logged in {config.table(INGEST_LOG.name)}")
    print()
    print(format_table(["quarantined from", "field: reason", "rows"], quarantine_summary(spark, config)))
    spark.catalog.clearCache()


if __name__ == "__main__":
    run_job("ingest", main, add_args=add_args)
