"""Read raw files into string-typed DataFrames that know each record's position in its file.

SMPD aligns its files (and the key-less label file) by row order, so every record carries
``_record_index``: its 0-based position in its own file, computed on the executors and correct at
any partitioning.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smp_spark.errors import InputError
from smp_spark.ingest.files import FileInfo

RECORD_INDEX = "_record_index"
SOURCE_FILE = "_source_file"
CORRUPT = "_corrupt_record"


def with_record_index(df: DataFrame) -> DataFrame:
    """Adds ``_source_file`` (the file name) and ``_record_index`` (position within that file).

    Must be applied directly to a file scan. Rows of one file split (block) are consecutive in
    one partition, so a row's index is the count of rows in earlier blocks of its file plus its
    offset inside its block; only the per-block counts (a handful of rows) reach the driver.
    """
    spark = df.sparkSession
    tagged = (
        df.withColumn("_file", F.input_file_name())
        .withColumn("_block", F.input_file_block_start())
        .withColumn("_pos", F.monotonically_increasing_id())
        .persist()
    )
    blocks = (
        tagged.groupBy("_file", "_block").agg(F.count(F.lit(1)).alias("_n"), F.min("_pos").alias("_first")).collect()
    )
    offsets, running = [], {}
    for row in sorted(blocks, key=lambda r: (r["_file"], r["_block"])):
        start = running.get(row["_file"], 0)
        offsets.append((row["_file"], row["_block"], start, row["_first"]))
        running[row["_file"]] = start + row["_n"]
    schema = "_file string, _block long, _offset long, _first long"
    offset_df = spark.createDataFrame(offsets, schema)
    return (
        tagged.join(F.broadcast(offset_df), ["_file", "_block"])
        .withColumn(RECORD_INDEX, F.col("_offset") + F.col("_pos") - F.col("_first"))
        .withColumn(SOURCE_FILE, F.element_at(F.split("_file", "/"), -1))
        .drop("_file", "_block", "_pos", "_offset", "_first")
    )


def read_json_list(spark: SparkSession, info: FileInfo, fields: list[str]) -> DataFrame:
    """A file holding one JSON list of records, every field read as a string.

    Numbers, strings and nulls are all accepted (numbers arrive as their JSON text). A file that
    is not a complete JSON list of objects (truncated, malformed, or with an element that is not a
    record: Spark's reader cannot tell which element) is a whole-file error.
    """
    schema = T.StructType([T.StructField(f, T.StringType()) for f in fields] + [T.StructField(CORRUPT, T.StringType())])
    raw = (
        spark.read.schema(schema)
        .option("multiLine", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(info.path)
    )
    df = with_record_index(raw)
    if df.filter(F.col(CORRUPT).isNotNull()).limit(1).count():
        raise InputError(
            f"{info.path} is not a complete JSON list of records (truncated or malformed JSON, "
            "or an element that is not a {...} record): re-export or re-download that file"
        )
    return df.drop(CORRUPT)


def read_lines(spark: SparkSession, info: FileInfo, column: str) -> DataFrame:
    """A text file with one value per line (labels, image paths); surrounding quotes are stripped.

    Blank lines after the last value (an editor's extra newline) are not records; a blank line
    between values is one, with its field missing.
    """
    raw = spark.read.text(info.path)
    value = F.regexp_replace(F.trim("value"), r'^"|"$', "")
    lines = with_record_index(raw).withColumn(column, value).drop("value")
    last = lines.filter(F.col(column) != "").agg(F.max(RECORD_INDEX)).first()[0]
    return lines.filter(F.col(RECORD_INDEX) <= (-1 if last is None else last))


def read_csv(spark: SparkSession, info: FileInfo, required: list[str]) -> DataFrame:
    """A CSV file with a header; every column a string. Missing header columns fail the file."""
    header = spark.read.option("header", "true").csv(info.path).columns
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{info.path}: header lacks {', '.join(missing)} (expected columns: {','.join(required)})")
    schema = T.StructType([T.StructField(c, T.StringType()) for c in header] + [T.StructField(CORRUPT, T.StringType())])
    raw = (
        spark.read.schema(schema)
        .option("header", "true")
        .option("multiLine", "true")  # scraped titles may hold quoted newlines
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .csv(info.path)
    )
    return with_record_index(raw)
