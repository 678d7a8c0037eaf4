"""Raw SMPD release files and scraped tables -> validated bronze Delta tables."""

from smp_spark.ingest.pipeline import (
    BRONZE_TABLES,
    build_bronze,
    ingest_release,
    quarantine_summary,
    replace_bronze,
    write_bronze,
)

__all__ = ["BRONZE_TABLES", "build_bronze", "ingest_release", "quarantine_summary", "replace_bronze", "write_bronze"]
