"""Raw SMPD release files -> validated bronze posts and users, plus quarantine rows.

A *post* is the record at one row position in every release file (category, text,
temporal-spatial, user, additional, image path, label). A post is good only when each of its
records passes its rules and the files agree on its Pid and Uid; otherwise every failing field goes
to quarantine and the post is left out of ``bronze/posts``.

Duplicate rules (also in docs/data.md):
- duplicate Pid: the first occurrence in file order wins; later ones are quarantined;
- user profiles: every post keeps its own user record (point in time); ``bronze/users`` holds one
  row per Uid, taken from the user's latest post (Postdate, then file order), for what is keyed by
  user alone.
"""

from __future__ import annotations

from functools import partial, reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smp_spark.config import Config
from smp_spark.errors import InputError
from smp_spark.ingest.files import SECOND_IMAGE_LIST, Release
from smp_spark.ingest.records import RECORD_INDEX, SOURCE_FILE, Records, read_json_list, read_lines
from smp_spark.ingest.validate import (
    ERRORS,
    QUARANTINE_COLUMNS,
    Field,
    add_error,
    no_errors,
    parse_fields,
    quarantine_rows,
)
from smp_spark.session import concurrently

KEYS = [Field("Uid", required=True), Field("Pid", "int", required=True, low=0)]
LABEL = Field("label", "float", required=True, low=0, high=30)
IMAGE = Field("img_path", required=True)
LOCAL_IMAGE = Field("img_local", required=True)  # the second image list, when a release has both
UNREADABLE_PID = " (the post's Pid is unreadable in every file of this record)"
USER_COLUMNS = [
    "photo_firstdate",
    "photo_count",
    "ispro",
    "canbuypro",
    "timezone_offset",
    "photo_firstdatetaken",
    "timezone_id",
    "user_description",
    "location_description",
]
POST_COLUMNS = [
    "Pid",
    "Uid",
    "release",
    "record_index",
    "Postdate",
    "Category",
    "Subcategory",
    "Concept",
    "Title",
    "Mediatype",
    "Alltags",
    "Latitude",
    "Longitude",
    "Geoaccuracy",
    "Pathalias",
    "Ispublic",
    "Mediastatus",
    "img_path",
    "img_url",
    "flickr_photo_id",
    "label",
]


def release_rules(config: Config) -> dict[str, list[Field]]:
    """The fields read from each JSON file of a release, with their rules."""
    return {
        "category": KEYS
        + [
            Field("Category", required=True),
            Field("Subcategory", required=True),
            Field("Concept", required=True),
        ],
        "text": KEYS + [Field("Title"), Field("Tile"), Field("Mediatype"), Field("Alltags")],
        "temporalspatial": KEYS
        + [
            Field("Postdate", "int", required=True, low=config.ingest.min_postdate, high=config.ingest.max_postdate),
            Field("Latitude", "float", low=-90, high=90),
            Field("Longitude", "float", low=-180, high=180),
            Field("Geoaccuracy", "int", low=0, high=16),
        ],
        # user_data sometimes lacks Pid; it still aligns by row order
        "user": [Field("Uid", required=True), Field("Pid", "int", low=0)]
        + [
            Field("photo_firstdate", "int", low=0),
            Field("photo_count", "int", low=0),
            Field("ispro", "int", low=0, high=1),
            Field("canbuypro", "int", low=0, high=1),
            Field("timezone_offset", "float", low=-24, high=24),
            Field("photo_firstdatetaken", missing=("", "None", "null")),
            Field("timezone_id"),
            Field("user_description", "vector"),
            Field("location_description", "vector"),
        ],
        "additional": KEYS
        + [
            Field("Pathalias", missing=("", "None")),
            Field("Ispublic", "int", low=0, high=1),
            Field("Mediastatus"),
        ],
    }


def read_release_files(spark: SparkSession, config: Config, release: Release) -> dict[str, Records]:
    """Every file of the release, parsed with its rules (each row keeps its ``_errors``), and its
    record count.

    Each file is read, indexed and materialised once (later joins then plan over small, cut
    lineages), the files at once (:func:`concurrently`): a multiLine JSON file is a single task,
    so one file at a time kept one core busy."""
    rules = release_rules(config)
    sources = {source: (release.files[source], [f.name for f in fields]) for source, fields in rules.items()}
    lists = {"img": IMAGE}
    if SECOND_IMAGE_LIST in release.files:
        lists[SECOND_IMAGE_LIST] = LOCAL_IMAGE
    if release.has_labels:
        lists["label"] = LABEL
    rules.update({source: [field] for source, field in lists.items()})

    def parsed(source: str) -> Records:
        if source in lists:
            records = read_lines(spark, release.files[source], lists[source].name)
        else:
            records = read_json_list(spark, *sources[source])
        return Records(parse_fields(records.df, rules[source]).localCheckpoint(), records.count)

    return concurrently(spark, {source: partial(parsed, source) for source in rules})


def check_alignment(release: Release, counts: dict[str, int]) -> None:
    """Row-order alignment needs equal record counts in every file; fail clearly otherwise."""
    anchor = release.files["category"]
    for source, n in counts.items():
        if n == 0:  # e.g. only whitespace, or "[]": say so rather than blame the other files
            raise InputError(f"{release.files[source].path} holds no records: re-export or re-download that file")
    for source, n in counts.items():
        if n != counts["category"]:
            fix = (
                "it must hold exactly one label per post, in the order of the JSON lists"
                if source == "label"
                else "every release file must list the same posts in the same order"
            )
            raise InputError(
                f"{release.files[source].path} has {n} records but {anchor.name} has {counts['category']}: {fix}"
            )


def photo_id(path: Column) -> Column:
    """The Flickr photo id: the last segment of a photo URL (``.../<owner>/<id>``), or the file
    stem of an image path (``train/<Uid>/<Pid>.jpg`` in the 2023 release)."""
    last = F.element_at(F.split(F.regexp_replace(path, "/+$", ""), "/"), -1)
    return F.regexp_replace(last, r"\.[A-Za-z0-9]+$", "")


def _for_join(frames: dict[str, DataFrame], source: str, keep: list[str]) -> DataFrame:
    """A file's columns for the row-order join, with its key copies and error count renamed."""
    df = frames[source]
    cols = [F.col(RECORD_INDEX), *[F.col(c) for c in keep]]
    cols += [F.col(SOURCE_FILE).alias(f"_file_{source}"), F.size(ERRORS).alias(f"_bad_{source}")]
    if source != "category":
        cols += [F.col(k).alias(f"_{k}_{source}") for k in ("Uid", "Pid") if k in df.columns]
    return df.select(*cols)


def assemble_posts(frames: dict[str, DataFrame], release_name: str) -> tuple[DataFrame, DataFrame]:
    """Join the files on row position into one row per post and check that their keys agree.

    Returns (good posts, quarantine rows of every file plus the cross-file mismatches).
    """
    layout = {
        "text": ["Title", "Tile", "Mediatype", "Alltags"],
        "temporalspatial": ["Postdate", "Latitude", "Longitude", "Geoaccuracy"],
        "user": USER_COLUMNS,
        "additional": ["Pathalias", "Ispublic", "Mediastatus"],
        "img": ["img_path"],
    }
    if "label" in frames:
        layout["label"] = ["label"]
    if SECOND_IMAGE_LIST in frames:
        layout[SECOND_IMAGE_LIST] = [LOCAL_IMAGE.name]
    posts = _for_join(frames, "category", ["Uid", "Pid", "Category", "Subcategory", "Concept"])
    for source, keep in layout.items():
        posts = posts.join(_for_join(frames, source, keep), RECORD_INDEX)
    posts = posts.withColumn(SOURCE_FILE, F.col("_file_category")).withColumn(ERRORS, no_errors())
    for source in layout:
        for key in ("Uid", "Pid"):
            other = f"_{key}_{source}"
            if other not in posts.columns:
                continue
            differs = F.col(other).isNotNull() & F.col(key).isNotNull() & (F.col(other) != F.col(key))
            reason = F.concat(
                F.lit(f"{key} differs between files at this row: "),
                F.col(f"_file_{source}"),
                F.lit(" has "),
                F.col(other).cast("string"),
                F.lit(", "),
                F.col("_file_category"),
                F.lit(" has "),
                F.col(key).cast("string"),
            )
            posts = add_error(posts, differs, key, reason, F.col(other))
    bad_in_a_file = reduce(lambda a, b: a | b, [F.col(f"_bad_{s}") > 0 for s in ["category", *layout]])
    posts = posts.withColumn("_bad_in_a_file", bad_in_a_file).localCheckpoint()
    quarantine = [quarantine_rows(df, release_name) for df in frames.values()]
    quarantine.append(quarantine_rows(posts, release_name))
    good = posts.filter((F.size(ERRORS) == 0) & ~F.col("_bad_in_a_file"))
    return good, name_posts(union_quarantine(quarantine), record_keys(posts))


def record_keys(posts: DataFrame) -> DataFrame:
    """``record_index, _Pid, _Uid``: each record's post and user, from the first file in which
    they are readable (the category file first)."""

    def first_readable(key: str):
        copies = [F.col(key)] + [F.col(c) for c in posts.columns if c.startswith(f"_{key}_")]
        return F.coalesce(*copies)

    return posts.select(RECORD_INDEX, first_readable("Pid").alias("_Pid"), first_readable("Uid").alias("_Uid"))


def name_posts(quarantine: DataFrame, keys: DataFrame) -> DataFrame:
    """Quarantine rows of a release's files with the Pid and Uid of the record they belong to
    (the label and image lists carry neither: row order gives them). A record whose Pid is
    unreadable in every file says so in its reason."""
    joined = quarantine.join(keys, quarantine["record_index"] == keys[RECORD_INDEX], "left")
    pid = F.coalesce(F.col("Pid"), F.col("_Pid"))
    reason = F.when(pid.isNull(), F.concat(F.col("reason"), F.lit(UNREADABLE_PID))).otherwise(F.col("reason"))
    return joined.withColumn("Pid", pid).withColumn("Uid", F.coalesce("Uid", "_Uid")).withColumn("reason", reason)


def is_url(path: Column) -> Column:
    return path.rlike(r"^https?://")


def shape_posts(posts: DataFrame, release_name: str) -> DataFrame:
    """The bronze/posts columns: typed fields, the Flickr photo id and the release name.

    ``img_path`` is the post's image as listed (a local path when either image list has one),
    ``img_url`` its Flickr URL when either list has one; the photo id comes from the URL, else
    from the file name."""
    if "label" not in posts.columns:
        posts = posts.withColumn("label", F.lit(None).cast("double"))
    listed = [F.col(IMAGE.name)] + ([F.col(LOCAL_IMAGE.name)] if LOCAL_IMAGE.name in posts.columns else [])
    url = F.coalesce(*[F.when(is_url(c), c) for c in listed])
    local = F.coalesce(*[F.when(~is_url(c), c) for c in listed], F.col(IMAGE.name))
    posts = posts.withColumn("img_url", url).withColumn(IMAGE.name, local)
    return posts.select(
        *[
            F.lit(release_name).alias("release")
            if c == "release"
            else F.col(RECORD_INDEX).alias("record_index")
            if c == "record_index"
            else F.coalesce("Title", "Tile").alias("Title")
            if c == "Title"
            else photo_id(F.coalesce("img_url", "img_path")).alias("flickr_photo_id")
            if c == "flickr_photo_id"
            else F.col(c)
            for c in POST_COLUMNS
        ],
        *USER_COLUMNS,
    )


def dedupe_pids(posts: DataFrame, release_name: str, source_file: str) -> tuple[DataFrame, DataFrame]:
    """The first occurrence of each Pid (in file order) wins; later ones go to quarantine."""
    in_order = Window.partitionBy("Pid").orderBy("record_index")
    ranked = posts.withColumn("_rank", F.row_number().over(in_order)).withColumn(
        "_first_index", F.first("record_index").over(in_order)
    )
    dupes = ranked.filter(F.col("_rank") > 1).select(
        F.lit(release_name).alias("release"),
        F.lit(source_file).alias("source_file"),
        F.col("record_index"),
        F.col("Pid"),
        F.col("Uid"),
        F.lit("Pid").alias("field"),
        F.concat(F.lit("duplicate Pid; first seen at record "), F.col("_first_index").cast("string")).alias("reason"),
        F.col("Pid").cast("string").alias("value"),
    )
    return ranked.filter(F.col("_rank") == 1).drop("_rank", "_first_index"), dupes


def split_users(posts: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(posts, one row per Uid from the user's latest post).

    Each post keeps the profile of its own user record (point in time: SMPD's user file has a
    record per post, and a later post's values must not reach an earlier post); the users table
    is for what is keyed by user alone (the scraped user statistics)."""
    latest = Window.partitionBy("Uid").orderBy(F.col("Postdate").desc(), F.col("record_index").desc())
    users = (
        posts.withColumn("_rank", F.row_number().over(latest))
        .filter(F.col("_rank") == 1)
        .select("Uid", *USER_COLUMNS, F.col("Postdate").alias("last_postdate"))
    )
    return posts, users


def union_quarantine(frames: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, [df.select(*QUARANTINE_COLUMNS) for df in frames])
