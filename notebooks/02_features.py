# Databricks notebook source
# MAGIC %md
# MAGIC # 2. Build the gold feature table
# MAGIC
# MAGIC Runs the library's feature build on the bronze tables (the same calls as
# MAGIC `jobs/build_features.py`): the train / valid / test split, then seven feature families, every
# MAGIC fitted piece (TF-IDF + PCA, category indices and encodings, label aggregates) fitted on the
# MAGIC training split only. Writes `gold/features` as a new Delta version, `gold/feature_manifest`
# MAGIC and the fitted state.
# MAGIC
# MAGIC **Parameters**: `conf` / `SMP_CONF` and `set` / `SMP_SET`, as in notebook 1. With
# MAGIC `features.text_embeddings` on, posts not embedded yet are embedded first (cached by text:
# MAGIC slow the first time at full scale; `features.text_embeddings=false` skips them).

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

from smp_spark.features.build import build_gold, feature_specs
from smp_spark.features.embeddings import EMBEDDINGS, update_embeddings
from smp_spark.features.gold import GOLD, read_bronze, read_manifest, write_gold
from smp_spark.features.image_embeddings import embed_bronze_images
from smp_spark.lake import read_table

if config.features.text_embeddings:
    posts = read_table(spark, config.table("bronze/posts"))
    done = update_embeddings(spark, posts, config.table(EMBEDDINGS), config.features.embedding_batch_size)
    print(f"{done['posts']} posts; {done['texts_encoded']} texts encoded now")
if config.features.image_embeddings:
    done = embed_bronze_images(spark, config)
    print(f"{done['posts']} posts with an image; {done['encoded']} images encoded now")

# COMMAND ----------

inputs = read_bronze(spark, config)
gold, state = build_gold(inputs, config)
specs = feature_specs(config)
version = write_gold(spark, config, gold, state, specs)
print(f"{config.table(GOLD)} version {version} ({config.features.protocol} split, {len(specs)} features)")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The manifest
# MAGIC Every feature with its type (`categorical` columns are declared to the trees), family, the
# MAGIC bronze columns it comes from and the rows it may read (its time window).

# COMMAND ----------

manifest = read_manifest(spark, config, version)
nb.show(manifest.groupBy("family").count().orderBy("family"))
nb.show(manifest.drop("gold_version"), 200)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Split boundaries
# MAGIC With the chronological protocol the three splits are consecutive, non-overlapping time
# MAGIC ranges: nothing fitted on train has seen a later post. (`features.protocol=seed`, the
# MAGIC research's random split, makes the ranges overlap: it is leaky and only for comparison.)

# COMMAND ----------

features = read_table(spark, config.table(GOLD), version)
nb.show(
    features.groupBy("split")
    .agg(
        F.count(F.lit(1)).alias("posts"),
        F.timestamp_seconds(F.min("Postdate")).alias("first_post"),
        F.timestamp_seconds(F.max("Postdate")).alias("last_post"),
        F.round(F.avg("label"), 3).alias("mean_label"),
    )
    .orderBy("first_post")
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## A few feature distributions
# MAGIC Summaries over every post; the histograms use a sample of at most 5,000 posts. Nulls are
# MAGIC kept as nulls (no history yet, not scraped, no location), never filled with 0.

# COMMAND ----------

shown = ["tag_count", "user_prev_posts", "user_prev_mean_label", "group_count_log", "account_age_days", "hour"]
nb.show(features.select(*shown).summary("count", "mean", "min", "50%", "max"))
fraction = min(1.0, 5000 / max(1, features.count()))
sample = features.select(*shown).sample(fraction=fraction, seed=7).toPandas()
fig, axes = plt.subplots(2, 3, figsize=(12, 6))
for ax, column in zip(axes.flat, shown):
    ax.hist(sample[column].dropna(), bins=30)
    ax.set_title(f"{column} ({sample[column].isna().mean():.0%} null)")
fig.tight_layout()
nb.show_figure(fig, "feature_distributions")
