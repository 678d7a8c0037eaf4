"""Field rules for every raw record, and the split of a typed frame into good rows and errors.

A rule set is a list of :class:`Field`. :func:`parse_fields` turns the string columns into typed
ones and collects, per record, an ``_errors`` array of ``{field, reason, value}``; a record with
no errors is good. :func:`quarantine_rows` turns the errors into rows of ``quarantine/rows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from smp_spark.ingest.records import RECORD_INDEX, SOURCE_FILE

ERRORS = "_errors"
ERROR_TYPE = "array<struct<field:string,reason:string,value:string>>"
# Pid and Uid: the post and user the record belongs to, wherever they can be known
QUARANTINE_COLUMNS = ["release", "source_file", "record_index", "Pid", "Uid", "field", "reason", "value"]
MAX_EXACT_INT = 2**53 - 1  # integer fields are parsed through a double: beyond this, digits change


@dataclass(frozen=True)
class Field:
    """One raw field: its type, whether it must be present, and its allowed range."""

    name: str
    kind: str = "str"  # str | int | float | vector
    required: bool = False
    low: float | None = None
    high: float | None = None
    missing: tuple[str, ...] = ("",)  # raw strings that mean "absent"


def _blank(raw: Column, field: Field) -> Column:
    return raw.isNull() | F.trim(raw).isin(list(field.missing))


def _error(field: str, reason: Column | str, raw: Column) -> Column:
    reason_col = reason if isinstance(reason, Column) else F.lit(reason)
    return F.struct(F.lit(field).alias("field"), reason_col.alias("reason"), F.substring(raw, 1, 200).alias("value"))


def _typed(raw: Column, field: Field) -> tuple[Column, list[tuple[Column, Column | str]]]:
    """The typed value of a present field, and (condition, reason) pairs that make it bad."""
    text = F.trim(raw)
    if field.kind == "str":
        return raw, []
    if field.kind == "vector":
        values = F.split(text, ",").cast("array<float>")
        bad = F.exists(values, lambda v: v.isNull())
        return values, [(bad, "not a comma-separated list of numbers")]
    number = text.cast("double")
    problems: list[tuple[Column, Column | str]] = [(number.isNull(), "not a number")]
    low = field.low if field.low is not None else float("-inf")
    high = field.high if field.high is not None else float("inf")
    if field.kind == "int":
        # % 1, not floor(): floor() returns a long and saturates above 2^63
        problems.append((number % 1 != 0, "not a whole number"))
        low, high = max(low, -MAX_EXACT_INT), min(high, MAX_EXACT_INT)
        typed = number.cast("long")
    else:
        problems.append((F.isnan(number) | (F.abs(number) == float("inf")), "not a finite number"))
        typed = number
    if (low, high) != (float("-inf"), float("inf")):
        problems.append((~number.between(low, high), f"out of range [{_fmt(low)}, {_fmt(high)}]"))
    return typed, problems


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_fields(df: DataFrame, fields: list[Field]) -> DataFrame:
    """Replace each raw string column by its typed value and add the ``_errors`` array.

    Absent optional fields become null. A record's errors name the field, the reason and the raw
    value, so a user can find and fix it.
    """
    errors: list[Column] = []
    typed_cols = {}
    for field in fields:
        raw = F.col(field.name)
        blank = _blank(raw, field)
        typed, problems = _typed(raw, field)
        # the first failing check names the problem ("not a number" before "out of range")
        reason = F.when(blank, F.lit("missing required field") if field.required else F.lit(None))
        for condition, text in problems:
            reason = reason.when(condition, text if isinstance(text, Column) else F.lit(text))
        errors.append(_error(field.name, reason, raw))
        typed_cols[field.name] = F.when(~blank, typed)
    # errors first: they read the raw strings that the typed columns then replace
    checked = df.withColumn(ERRORS, F.filter(F.array(*errors), lambda e: e["reason"].isNotNull()))
    return checked.withColumns(typed_cols)


def add_error(df: DataFrame, condition: Column, field: str, reason: Column | str, raw: Column) -> DataFrame:
    """Append one more error to ``_errors`` where ``condition`` holds (cross-file checks)."""
    extra = F.when(condition, F.array(_error(field, reason, raw.cast("string"))))
    return df.withColumn(ERRORS, F.concat(F.col(ERRORS), F.coalesce(extra, no_errors())))


def no_errors() -> Column:
    """An empty ``_errors`` array of the right element type."""
    return F.array().cast(ERROR_TYPE)


def good_rows(df: DataFrame) -> DataFrame:
    return df.filter(F.size(ERRORS) == 0).drop(ERRORS)


def key_columns(df: DataFrame) -> list[Column]:
    """``Pid`` (long) and ``Uid`` (string) of ``df``'s rows, null where the frame has no such column."""
    return [
        (F.col(name).cast(kind) if name in df.columns else F.lit(None).cast(kind)).alias(name)
        for name, kind in (("Pid", "long"), ("Uid", "string"))
    ]


def quarantine_rows(df: DataFrame, release: str) -> DataFrame:
    """One quarantine row per error: release, source file, record index, the post's Pid and Uid
    when the record itself has them (readable), field, reason, raw value."""
    return (
        df.filter(F.size(ERRORS) > 0)
        .select(SOURCE_FILE, RECORD_INDEX, *key_columns(df), F.explode(ERRORS).alias("e"))
        .select(
            F.lit(release).alias("release"),
            F.col(SOURCE_FILE).alias("source_file"),
            F.col(RECORD_INDEX).alias("record_index"),
            "Pid",
            "Uid",
            F.col("e.field").alias("field"),
            F.col("e.reason").alias("reason"),
            F.col("e.value").alias("value"),
        )
    )
