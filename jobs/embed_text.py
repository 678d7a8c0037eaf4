"""spark-submit entry point: sentence embeddings of every bronze post into gold/text_embeddings.

Encodes only posts whose cleaned text is not embedded yet, so a rerun costs nothing.

    spark-submit jobs/embed_text.py [--conf conf/cluster.yaml]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.features.embeddings import EMBEDDINGS, embed_bronze_posts  # noqa: E402


def main(config, args, spark):
    if not config.features.text_embeddings:
        print("features.text_embeddings is false: nothing to do")
        return
    done = embed_bronze_posts(spark, config)
    print(f"{done['posts']} posts; {done['texts_encoded']} distinct texts encoded now -> {config.table(EMBEDDINGS)}")


if __name__ == "__main__":
    run_job("embed_text", main)
