"""Raw SMPD release files and scraped tables -> validated bronze Delta tables."""

from smp_spark.ingest.pipeline import BRONZE_TABLES, build_bronze, quarantine_summary, write_bronze

__all__ = ["BRONZE_TABLES", "build_bronze", "quarantine_summary", "write_bronze"]
