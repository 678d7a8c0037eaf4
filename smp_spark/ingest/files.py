"""Find the files of an SMPD release and of the scraped tables, through Hadoop's FileSystem.

Going through the JVM's FileSystem (not ``os``) keeps ingest working on HDFS, S3 and DBFS paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from smp_spark.errors import InputError

# Each SMPD source, with the file names the releases have used (first match wins).
RELEASE_FILES: dict[str, tuple[str, ...]] = {
    "category": ("{p}_category.json",),
    "text": ("{p}_text.json", "{p}_tags.json"),
    "temporalspatial": ("{p}_temporalspatial_information.json", "{p}_temporalspatial.json"),
    "user": ("{p}_user_data.json",),
    "additional": ("{p}_additional_information.json",),
    "img": ("{p}_img_filepath.txt", "{p}_img_path.txt"),
    "label": ("{p}_label.txt",),
}
OPTIONAL_SOURCES = {"label"}  # the test release has no label file
# a 2023 release (local paths in _img_path.txt) with the 2019 release's URL file beside it: both are
# read, the paths for the images, the URLs for the Flickr photo ids the scraped tables use
SECOND_IMAGE_LIST = "img_local"


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def hadoop_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def is_dir(spark: SparkSession, path: str) -> bool:
    fs, hpath = hadoop_path(spark, path)
    return bool(fs.exists(hpath) and fs.getFileStatus(hpath).isDirectory())


def list_files(spark: SparkSession, folder: str, pattern: str) -> list[FileInfo]:
    """Files in ``folder`` matching a glob ``pattern``, sorted by name."""
    fs, hpath = hadoop_path(spark, folder.rstrip("/") + "/" + pattern)
    statuses = fs.globStatus(hpath) or []
    found = [FileInfo(str(s.getPath().toString()), int(s.getLen())) for s in statuses if s.isFile()]
    return sorted(found, key=lambda f: f.name)


def require_folder(spark: SparkSession, folder: str, what: str, key: str) -> None:
    if not is_dir(spark, folder):
        raise InputError(f"{what} folder not found: {folder} (set it with --set {key}=/path/to/folder)")


@dataclass(frozen=True)
class Release:
    folder: str
    prefix: str  # "train" or "test": the SMPD file-name prefix
    files: dict[str, FileInfo]

    @property
    def has_labels(self) -> bool:
        return "label" in self.files


def find_release(spark: SparkSession, folder: str, key: str = "paths.raw") -> Release:
    """Locate every SMPD file in ``folder``; the prefix (``train``/``test``) is read off the names.

    Fails with one clear message when the folder, a required file, or a file's content is missing.
    """
    require_folder(spark, folder, "SMPD release", key)
    prefix = next((p for p in ("train", "test") if list_files(spark, folder, f"{p}_category.json")), None)
    if prefix is None:
        raise InputError(
            f"no SMPD release in {folder}: expected train_category.json or test_category.json "
            f"(point {key} at the folder that holds the release's JSON files)"
        )
    files: dict[str, FileInfo] = {}
    for source, patterns in RELEASE_FILES.items():
        for pattern in patterns:
            hits = list_files(spark, folder, pattern.format(p=prefix))
            if hits:
                files[source] = hits[0]
                break
        else:
            if source not in OPTIONAL_SOURCES:
                names = " or ".join(p.format(p=prefix) for p in patterns)
                raise InputError(f"{folder}: missing {names} (every SMPD release has it)")
    if files["img"].name == RELEASE_FILES["img"][0].format(p=prefix):
        local = list_files(spark, folder, RELEASE_FILES["img"][1].format(p=prefix))
        if local:
            files[SECOND_IMAGE_LIST] = local[0]
    for info in files.values():
        if info.size == 0:
            raise InputError(f"{info.path} is empty: re-export or re-download that file")
    return Release(folder=folder, prefix=prefix, files=files)
