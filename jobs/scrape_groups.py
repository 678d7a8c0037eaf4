"""Scrape Flickr group data for SMPD photos into <lake>/scraped/*, then export ingest's CSV files.

FLICKR_API_KEY=... python jobs/scrape_groups.py [--conf FILE] [--set paths.raw=/data/smpd/train]
    [--input FILE | --from-bronze] [--users] [--max-batches N] [--out DIR]

Resumable: rerun the same command after a stop or a kill; finished photos are skipped.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from smp_spark.cli import run_job  # noqa: E402
from smp_spark.console import format_table  # noqa: E402
from smp_spark.errors import ConfigError  # noqa: E402
from smp_spark.scrape.client import FlickrClient, api_key_from_env  # noqa: E402
from smp_spark.scrape.export import write_export  # noqa: E402
from smp_spark.scrape.inputs import input_file, photos_from_bronze, photos_from_file, release_files  # noqa: E402
from smp_spark.scrape.run import ScrapeSummary, estimate_hours, scrape  # noqa: E402


def add_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="a file of Flickr photo URLs (default: the image file in paths.raw)")
    source.add_argument(
        "--from-bronze",
        action="store_true",
        help="scrape the photos of <lake>/bronze/posts",
    )
    parser.add_argument("--users", action="store_true", help="also scrape owners' public stats (scrape.users)")
    parser.add_argument("--max-batches", type=int, help="stop after this many batches (rerun to continue)")
    parser.add_argument("--out", help="folder for the ingest CSV files (default: paths.scraped)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(config, args, spark):
    key = api_key_from_env()  # before any work: a missing key is the most common mistake
    users = args.users or config.scrape.users
    if users and args.input:
        raise ConfigError("--users needs the posts' Uids: scrape a release folder (paths.raw) or --from-bronze")
    if args.max_batches is not None and args.max_batches < 1:
        raise ConfigError("--max-batches must be at least 1")
    if args.from_bronze:
        found = photos_from_bronze(spark, config)
    elif args.input:
        found = photos_from_file(spark, input_file(spark, args.input))
    else:
        images, category = release_files(spark, config.path("raw"))
        if users and category is None:
            raise ConfigError(f"--users needs the release's category file (Uids) beside {images.path}")
        found = photos_from_file(spark, images, category if users else None)
    print(
        f"input: {found.source}: {found.rows:,} rows, {len(found.photos):,} distinct photos"
        f" ({found.not_flickr_urls:,} rows without a Flickr photo URL, {found.duplicates:,} repeated ids)"
    )
    owners = len({p.owner for p in found.photos if p.owner}) if users else 0
    calls, hours = estimate_hours(len(found.photos), 0, owners, config.scrape.calls_per_hour)
    print(
        f"a full scrape needs at least {calls:,} calls + one per distinct group: {hours:.1f} h + the groups "
        f"at {config.scrape.calls_per_hour:,.0f} calls/h (finished photos are skipped)"
    )
    client = FlickrClient(key, config.scrape)
    summary = ScrapeSummary()
    try:
        scrape(spark, config, found.photos, client, summary, users, args.max_batches, progress=not args.no_progress)
    finally:
        print("\n".join(summary.lines()))
    export = write_export(spark, config, args.out or config.path("scraped"))
    print(format_table(["exported to " + export.folder, "rows"], sorted(export.rows.items())))
    if export.demoted:
        print(f"{export.demoted:,} photos exported as failed: a group's info is missing (rerun to retry it)")


if __name__ == "__main__":
    run_job("scrape_groups", main, add_args=add_args)
