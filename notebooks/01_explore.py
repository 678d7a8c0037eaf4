# Databricks notebook source
# MAGIC %md
# MAGIC # 1. Explore the bronze tables
# MAGIC
# MAGIC What ingest made of the SMPD release and the scraped group tables: table sizes, the label
# MAGIC (log2 of the view count), posts over time, categories, and what was quarantined and why.
# MAGIC
# MAGIC **Parameters** (Databricks widgets; locally environment variables):
# MAGIC `conf` / `SMP_CONF` the profile (default `local`), `set` / `SMP_SET` overrides such as
# MAGIC `paths.lake=/dbfs/smp/lake paths.raw=/dbfs/smp/train`, and `ingest` / `SMP_INGEST`: `true` runs
# MAGIC ingest first (an idempotent MERGE, the same as `jobs/ingest.py`). Otherwise the bronze tables
# MAGIC must exist already.

# COMMAND ----------

import sys
from pathlib import Path

# the checkout's root, so the library imports without an install (a Databricks Git folder adds it too)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent))

from smp_spark.notebook import start_notebook

nb = start_notebook(globals())
config, spark = nb.config, nb.spark

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.sql import functions as F

from smp_spark.ingest import BRONZE_TABLES, build_bronze, quarantine_summary, write_bronze
from smp_spark.lake import read_table

if nb.param("ingest", "false").lower() == "true":
    bronze = build_bronze(spark, config, config.path("raw"), config.path("scraped"))
    write_bronze(spark, config, bronze)
    nb.show_rows(["input file", "rows read"], sorted(bronze.rows_read.items()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tables
# MAGIC One row per post in `bronze/posts`, per user in `bronze/users`, per group in `bronze/groups`;
# MAGIC `bronze/scrape_status` has a row only for photos the scraper reached.

# COMMAND ----------

nb.show_rows(["table", "rows"], [(name, read_table(spark, config.table(name)).count()) for name in BRONZE_TABLES])
posts = read_table(spark, config.table("bronze/posts"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## The label
# MAGIC SMPD's label is log2(views / days since posting + 1): mostly between 0 and 15.

# COMMAND ----------

nb.show(posts.select("label").summary("count", "mean", "stddev", "min", "25%", "50%", "75%", "max"))
by_label = posts.groupBy(F.floor("label").alias("label")).count().orderBy("label").collect()
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar([r["label"] for r in by_label], [r["count"] for r in by_label], width=0.9)
ax.set_xlabel("label (floored)")
ax.set_ylabel("posts")
ax.set_title("Label distribution")
nb.show_figure(fig, "label_distribution")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Posts over time
# MAGIC The chronological split cuts this timeline: the earliest 80% of posts train, the next 10%
# MAGIC validate, the last 10% test.

# COMMAND ----------

by_month = (
    posts.groupBy(F.date_trunc("month", F.timestamp_seconds("Postdate")).alias("month"))
    .agg(F.count(F.lit(1)).alias("posts"), F.round(F.avg("label"), 3).alias("mean_label"))
    .orderBy("month")
)
nb.show(by_month, 48)
months = by_month.collect()
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.bar([r["month"] for r in months], [r["posts"] for r in months], width=20, label="posts")
ax.set_ylabel("posts per month")
mean_axis = ax.twinx()
mean_axis.plot([r["month"] for r in months], [r["mean_label"] for r in months], color="tab:red", label="mean label")
mean_axis.set_ylabel("mean label", color="tab:red")
ax.set_title("Posts over time")
fig.tight_layout()
nb.show_figure(fig, "posts_over_time")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Categories, users and the scrape

# COMMAND ----------

nb.show(
    posts.groupBy("Category")
    .agg(F.count(F.lit(1)).alias("posts"), F.round(F.avg("label"), 3).alias("mean_label"))
    .orderBy(F.desc("posts")),
    30,
)
nb.show(posts.groupBy("Uid").count().select(F.col("count").alias("posts_per_user")).summary())
nb.show(read_table(spark, config.table("bronze/scrape_status")).groupBy("status").count().orderBy("status"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quarantine
# MAGIC Every rejected record, by input file and reason (record numbers folded to `N`). Nothing is
# MAGIC dropped silently: `quarantine/rows` holds each one with its file, record index and value.

# COMMAND ----------

nb.show_rows(["quarantined from", "field: reason", "rows"], quarantine_summary(spark, config))
