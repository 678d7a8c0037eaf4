"""spark-submit entry point: EfficientNet-Lite0 class scores and colour statistics of every usable
post image (``bronze/images``) into gold/image_embeddings.

Encodes only images whose content is not embedded yet, so a rerun costs nothing.

    spark-submit jobs/embed_images.py [--conf conf/cluster.yaml]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark import catalog  # noqa: E402
from smp_spark.cli import run_job  # noqa: E402
from smp_spark.features.image_embeddings import embed_bronze_images  # noqa: E402


def main(config, args, spark):
    f = config.features
    if not f.image_embeddings:
        print("features.image_embeddings is false: nothing to do")
        return
    done = embed_bronze_images(spark, config)
    print(
        f"{done['posts']} posts with a usable image; {done['encoded']} distinct images encoded now "
        f"at {f.image_resolution} px ({done['failed']} could not be decoded) -> "
        f"{config.table(catalog.IMAGE_EMBEDDINGS.name)}"
    )


if __name__ == "__main__":
    run_job("embed_images", main)
