"""Row-order alignment: each record's index in its file, at any partitioning."""

from smp_spark.ingest.files import FileInfo
from smp_spark.ingest.records import read_lines


def test_record_index_is_the_line_number_at_any_partitioning(spark, tmp_path):
    lines = [f"{i % 97}.{i % 100:02d}" for i in range(20_000)]
    (tmp_path / "a.txt").write_text("\n".join(lines) + "\n")
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # ~30 splits of one file
    try:
        df = read_lines(spark, FileInfo(str(tmp_path / "a.txt"), 0), "label").df
        assert df.rdd.getNumPartitions() > 10
        got = {r["_record_index"]: r["label"] for r in df.collect()}
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert got == dict(enumerate(lines))
