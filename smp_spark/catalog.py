"""The table catalog: every Delta table the project writes, its keys and the job that writes it.

One place for a table's name (its path under ``paths.lake``), so code refers to ``catalog.POSTS``
rather than typing ``"bronze/posts"``, and an error about a missing table can name its producer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str  # the path under the lake, e.g. "bronze/posts"
    keys: tuple[str, ...]  # unique per row
    producer: str  # the job (and make target) that writes it

    def __str__(self) -> str:
        return self.name


INGEST = "jobs/ingest.py (make ingest)"
POSTS = Table("bronze/posts", ("Pid",), INGEST)
USERS = Table("bronze/users", ("Uid",), INGEST)
GROUPS = Table("bronze/groups", ("group_id",), INGEST)
POST_GROUPS = Table("bronze/post_groups", ("Pid", "group_id"), INGEST)
SCRAPE_STATUS = Table("bronze/scrape_status", ("Pid",), INGEST)
IMAGES = Table("bronze/images", ("Pid",), INGEST)
INGEST_LOG = Table("bronze/ingest_log", ("ingested_at", "fingerprint"), INGEST)  # one row per completed ingest
QUARANTINE = Table("quarantine/rows", ("release", "source_file", "record_index", "field", "reason"), INGEST)
TEXT_EMBEDDINGS = Table("gold/text_embeddings", ("Pid",), "jobs/embed_text.py (make embeddings)")
IMAGE_EMBEDDINGS = Table("gold/image_embeddings", ("Pid",), "jobs/embed_images.py (make embeddings)")
FEATURES = Table("gold/features", ("Pid",), "jobs/build_features.py (make features)")
MANIFEST = Table("gold/feature_manifest", ("gold_version", "name"), "jobs/build_features.py (make features)")
MODEL_PREDICTIONS = Table("gold/model_predictions", ("model", "Pid"), "jobs/train_<model>.py (make train-<model>)")
ABLATION = Table("gold/ablation", ("gold_version", "model", "modalities", "split"), "jobs/ablation.py (make ablation)")
SCORES = Table("gold/predictions", ("model", "Pid"), "jobs/score.py (make score)")

# what one ingest writes, in write order
BRONZE = (POSTS, USERS, GROUPS, POST_GROUPS, SCRAPE_STATUS, IMAGES, QUARANTINE)
