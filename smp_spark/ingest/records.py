"""Read raw files into string-typed DataFrames that know each record's position in its file.

SMPD aligns its files (and the key-less label file) by row order, so every record carries
``_record_index``: its 0-based position in its own file, computed on the executors and correct at
any partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smp_spark.errors import InputError
from smp_spark.ingest.files import FileInfo

RECORD_INDEX = "_record_index"
SOURCE_FILE = "_source_file"
CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class Records:
    """A file's records (string columns, ``_source_file``, ``_record_index``) and how many there
    are, counted in the same pass that indexed them."""

    df: DataFrame
    count: int


def with_record_index(df: DataFrame, **per_block: Column) -> tuple[DataFrame, list[dict]]:
    """Adds ``_source_file`` (the file name) and ``_record_index`` (position within that file).

    Must be applied directly to a file scan. Rows of one file split (block) are consecutive in
    one partition, so a row's index is the count of rows in earlier blocks of its file plus its
    offset inside its block. One Spark job counts each block's rows (``_n``), finds its first row
    id (``_first``) and computes the aggregates of ``per_block`` (``name=aggregate``); only these
    rows, one per block, reach the driver, and are returned beside the indexed frame, each with the
    record index of its block's first row (``_start``). The shift of each block goes back as a
    literal CASE expression (a file has a handful of blocks; a multiLine JSON file has one), so
    indexing needs no join.
    """
    tagged = (
        df.withColumn("_file", F.input_file_name())
        .withColumn("_block", F.input_file_block_start())
        .withColumn("_pos", F.monotonically_increasing_id())
        .persist()
    )
    aggregates = [F.count(F.lit(1)).alias("_n"), F.min("_pos").alias("_first")]
    aggregates += [column.alias(name) for name, column in per_block.items()]
    rows = sorted(tagged.groupBy("_file", "_block").agg(*aggregates).collect(), key=lambda r: (r._file, r._block))
    blocks, shift, running = [], None, {}
    for row in rows:
        start = running.get(row["_file"], 0)
        running[row["_file"]] = start + row["_n"]
        blocks.append({**row.asDict(), "_start": start})
        here = (F.col("_file") == row["_file"]) & (F.col("_block") == row["_block"])
        shift = F.when(here, F.lit(start - row["_first"])) if shift is None else shift.when(here, start - row["_first"])
    indexed = (
        tagged.withColumn(RECORD_INDEX, F.col("_pos") + (shift if shift is not None else F.lit(0)))
        .withColumn(SOURCE_FILE, F.element_at(F.split("_file", "/"), -1))
        .drop("_file", "_block", "_pos")
    )
    return indexed, blocks


def read_json_list(spark: SparkSession, info: FileInfo, fields: list[str]) -> Records:
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
    df, blocks = with_record_index(raw, _corrupt=F.count(CORRUPT))
    if any(b["_corrupt"] for b in blocks):
        raise InputError(
            f"{info.path} is not a complete JSON list of records (truncated or malformed JSON, "
            "or an element that is not a {...} record): re-export or re-download that file"
        )
    return Records(df.drop(CORRUPT), sum(b["_n"] for b in blocks))


def read_lines(spark: SparkSession, info: FileInfo, column: str) -> Records:
    """A text file with one value per line (labels, image paths); surrounding quotes are stripped.

    Blank lines after the last value (an editor's extra newline) are not records; a blank line
    between values is one, with its field missing.
    """
    raw = spark.read.text(info.path)
    value = F.regexp_replace(F.trim("value"), r'^"|"$', "")
    indexed, blocks = with_record_index(raw, _last=F.max(F.when(value != "", F.col("_pos"))))
    lines = indexed.withColumn(column, value).drop("value")
    # the record index of the last line with a value: its block's start plus its offset there
    last = max((b["_start"] + b["_last"] - b["_first"] for b in blocks if b["_last"] is not None), default=-1)
    return Records(lines.filter(F.col(RECORD_INDEX) <= last), last + 1)


def read_csv(spark: SparkSession, info: FileInfo, required: list[str]) -> Records:
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
    df, blocks = with_record_index(raw)
    return Records(df, sum(b["_n"] for b in blocks))
