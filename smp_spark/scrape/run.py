"""The scrape loop: pending photos in batches, each group and owner fetched once, commits to Delta.

Per batch: every photo's pools (``getAllContexts``, ``scrape.concurrency`` calls in flight under
one rate limit), then the info of each group no earlier batch fetched (``groups.getInfo``, once
per group, never per photo), then optionally the owners' stats; then one commit per table, groups
and owners before photos. A rerun skips photos, groups and owners whose state is final (``ok``,
``not_found``), retries ``failed`` ones, and first fetches the groups that committed photos name
but whose info is missing (a run killed between two commits).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, TypeVar

from pyspark.sql import SparkSession
from tqdm import tqdm

from smp_spark.config import Config
from smp_spark.scrape import store
from smp_spark.scrape.client import FlickrClient
from smp_spark.scrape.flickr import FAILED, NOT_FOUND, OK, scrape_group, scrape_owner, scrape_photo
from smp_spark.scrape.inputs import Photo

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ScrapeSummary:
    """What one run did; filled in as it goes, so a run stopped by an error still reports."""

    photos_in_input: int = 0
    photos_already_done: int = 0
    photos_pending: int = 0  # at the start of this run
    photos: dict[str, int] = field(default_factory=lambda: {OK: 0, NOT_FOUND: 0, FAILED: 0})
    groups: dict[str, int] = field(default_factory=lambda: {OK: 0, NOT_FOUND: 0, FAILED: 0})
    owners: dict[str, int] = field(default_factory=lambda: {OK: 0, NOT_FOUND: 0, FAILED: 0})
    batches: int = 0
    calls: int = 0
    retries: int = 0
    elapsed: float = 0.0
    calls_per_hour: float = 0.0
    stopped: str = ""  # why the run ended before every photo was done, if it did

    @property
    def photos_done(self) -> int:
        return sum(self.photos.values())

    @property
    def photos_left(self) -> int:
        """Photos still without a final state: never tried in this run, or ``failed`` (retried next run)."""
        return self.photos_pending - self.photos[OK] - self.photos[NOT_FOUND]

    def eta_seconds(self) -> float | None:
        """Time for the photos left, from this run's calls per photo at the configured rate (or the
        observed pace if slower); None before any photo is done."""
        if not self.photos_done:
            return None
        calls_per_photo = self.calls / self.photos_done
        by_rate = self.photos_left * calls_per_photo * 3600.0 / self.calls_per_hour
        observed = self.photos_left * self.elapsed / self.photos_done
        return max(by_rate, observed)

    def lines(self) -> list[str]:
        def states(counts: dict[str, int]) -> str:
            return ", ".join(f"{v:,} {k}" for k, v in counts.items())

        eta = self.eta_seconds()
        out = [
            f"photos: {self.photos_in_input:,} in input, {self.photos_already_done:,} already done, "
            f"{self.photos_done:,} scraped now ({states(self.photos)}), {self.photos_left:,} left",
            f"groups fetched now: {states(self.groups)}",
        ]
        if sum(self.owners.values()):
            out.append(f"owners fetched now: {states(self.owners)}")
        out.append(
            f"calls: {self.calls:,} ({self.retries:,} retries) in {self.batches} batch(es), "
            f"elapsed {_duration(self.elapsed)}"
            + (f", estimated time left {_duration(eta)}" if eta is not None and self.photos_left else "")
        )
        if self.stopped:
            out.append(f"stopped: {self.stopped}")
        return out


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_hours(photos: int, groups: int, owners: int, calls_per_hour: float) -> tuple[int, float]:
    """(calls, hours) for ``photos`` getAllContexts + one getInfo per distinct group + two calls per
    owner, at ``calls_per_hour``, without retries: a lower bound of the run time."""
    calls = photos + groups + 2 * owners
    return calls, calls / calls_per_hour


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fetch_all(pool: ThreadPoolExecutor, fetch: Callable[[T], R], items: list[T]) -> list[R]:
    """``fetch`` over ``items`` on the pool, results in input order; the first error propagates."""
    return list(pool.map(fetch, items))


def _tally(counts: dict[str, int], results) -> None:
    for r in results:
        counts[r.status] += 1


def scrape(
    spark: SparkSession,
    config: Config,
    photos: list[Photo],
    client: FlickrClient,
    summary: ScrapeSummary,
    users: bool = False,
    max_batches: int | None = None,
    progress: bool = True,
) -> ScrapeSummary:
    """Scrape every photo of ``photos`` without a final state into the ``scraped/*`` Delta tables.

    Fills ``summary`` while running. Stops after ``max_batches`` batches if given. An
    :class:`InvalidApiKey` propagates after the batches before it are committed; the batch in
    flight is not written (its photos are fetched again by the next run).
    """
    started = time.monotonic()
    size = config.scrape.batch_size
    summary.calls_per_hour = config.scrape.calls_per_hour
    tables = (store.PHOTOS, store.GROUPS, store.OWNERS)
    stored = {t: store.states(spark, config, t) if users or t != store.OWNERS else {} for t in tables}
    done_photos, done_groups, done_owners = (
        {k for k, status in stored[t].items() if status in store.FINAL} for t in stored
    )
    keys = {t: set(states) for t, states in stored.items()}  # what is in each table: append or merge
    pending = [p for p in photos if p.imgid not in done_photos]
    summary.photos_in_input = len(photos)
    summary.photos_already_done = len(photos) - len(pending)
    summary.photos_pending = len(pending)
    uids = {p.imgid: p.uid for p in pending}
    calls_before, retries_before = client.stats.calls, client.stats.retries

    def update() -> None:
        summary.calls = client.stats.calls - calls_before
        summary.retries = client.stats.retries - retries_before
        summary.elapsed = time.monotonic() - started

    def fetch_groups(pool: ThreadPoolExecutor, group_ids: list[str]) -> list:
        results = _fetch_all(pool, lambda g: scrape_group(client, g), group_ids)
        _tally(summary.groups, results)
        done_groups.update(r.group_id for r in results if r.status in store.FINAL)
        return results

    bar = tqdm(total=len(pending), unit="photo", desc="scrape", file=sys.stderr, disable=not progress)
    pool = ThreadPoolExecutor(max_workers=config.scrape.concurrency, thread_name_prefix="flickr")
    try:
        for group_ids in _chunks(store.unfetched_groups(spark, config), size):
            store.commit(spark, config, store.GROUPS, fetch_groups(pool, group_ids), keys[store.GROUPS])
            update()
        for batch in _chunks(pending, size):
            if max_batches is not None and summary.batches >= max_batches:
                summary.stopped = f"--max-batches {max_batches} reached; rerun to continue"
                break
            results = _fetch_all(pool, lambda p: scrape_photo(client, p.imgid, p.owner), batch)
            named = dict.fromkeys(g for r in results if r.status == OK for g in r.group_ids)
            groups = fetch_groups(pool, [g for g in named if g not in done_groups])
            if users:
                owners = [o for o in dict.fromkeys(p.owner for p in batch if p.owner) if o not in done_owners]
                owner_results = _fetch_all(pool, lambda o: scrape_owner(client, o), owners)
                _tally(summary.owners, owner_results)
                store.commit(spark, config, store.OWNERS, owner_results, keys[store.OWNERS])
                done_owners.update(r.owner for r in owner_results if r.status in store.FINAL)
            store.commit(spark, config, store.GROUPS, groups, keys[store.GROUPS])
            store.commit(spark, config, store.PHOTOS, results, keys[store.PHOTOS], uids)
            _tally(summary.photos, results)
            summary.batches += 1
            update()
            bar.update(len(batch))
            bar.set_postfix(calls=summary.calls, retries=summary.retries, failed=summary.photos[FAILED])
    except BaseException as exc:  # Ctrl-C included: report it, stop the threads, keep committed batches
        summary.stopped = summary.stopped or client.redact(f"{type(exc).__name__}: {exc}")
        client.halt()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # queued calls are dropped, in-flight ones end
        bar.close()
        update()
    return summary
