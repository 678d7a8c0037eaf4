"""The Flickr group scraper against a local Flickr stand-in (tests/fake_flickr.py): retries, rate,
resumable Delta batches, a key that never leaks, and an export that the real ingest reads."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from smp_spark.config import load_config
from smp_spark.errors import ConfigError
from smp_spark.scrape import store
from smp_spark.scrape.client import FlickrClient, InvalidApiKey, RateLimiter, api_key_from_env
from smp_spark.scrape.export import FILES, write_export
from smp_spark.scrape.flickr import scrape_group, scrape_owner, scrape_photo
from smp_spark.scrape.inputs import Photo, photos_from_bronze, photos_from_file, release_files
from smp_spark.scrape.run import ScrapeSummary, scrape
from tests.fake_flickr import FakeFlickr
from tests.open_tables import assert_opens_elsewhere

PROJECT = Path(__file__).resolve().parents[1]
KEY = "k3y-9f8e7d6c5b4a-SECRET"
CONTEXTS = "flickr.photos.getAllContexts"
GROUP_INFO = "flickr.groups.getInfo"


def scrape_config(tmp_path: Path, fake: FakeFlickr, *extra: str):
    """The test profile with the lake in ``tmp_path``, the fake server and fast retries."""
    return load_config(
        "test",
        [
            f"paths.lake={tmp_path / 'lake'}",
            f"paths.scraped={tmp_path / 'export'}",
            f"scrape.base_url={fake.base_url}",
            "scrape.calls_per_hour=3600000",  # 1,000 calls a second: no waiting in tests
            "scrape.backoff_seconds=0.01",
            "scrape.max_backoff_seconds=0.05",
            "scrape.timeout_seconds=0.4",
            "scrape.max_retries=3",
            "scrape.concurrency=4",
            *extra,
        ],
    )


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under ``root`` (Delta logs, parquet, CSV) whose bytes contain ``secret``."""
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# ------------------------------------------------------------------------------------------------
# client: rate, retries, errors (no Spark)


def test_rate_limiter_reserves_one_slot_per_call():
    sleeps: list[float] = []
    limiter = RateLimiter(calls_per_hour=3600, clock=lambda: 100.0, sleep=sleeps.append)  # a stopped clock
    for _ in range(3):
        limiter.wait()
    assert sleeps == [1.0, 2.0]  # one call a second: the 2nd waits 1 s, the 3rd 2 s


def test_rate_limiter_holds_across_threads():
    started = time.monotonic()
    limiter = RateLimiter(calls_per_hour=72_000)  # one call every 50 ms
    returned: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            limiter.wait()
            with lock:
                returned.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == 12
    # 12 calls from 4 threads need 11 intervals: no burst, whatever the threads do
    assert max(returned) - started >= 11 * 0.05


def test_client_retries_429_5xx_timeouts_and_counts_them(tmp_path):
    with FakeFlickr(KEY, slow_seconds=0.8) as fake:
        fake.photos["101"] = ["g1", "g2"]
        fake.faults[(CONTEXTS, "101")] = ["429", "500", "timeout", "105"]
        fake.broken.add("102")
        client = FlickrClient(KEY, scrape_config(tmp_path, fake, "scrape.max_retries=4").scrape)

        ok = scrape_photo(client, "101", "o@N01")
        assert (ok.status, ok.group_ids, ok.calls) == ("ok", ["g1", "g2"], 5)
        assert (client.stats.calls, client.stats.retries) == (5, 4)

        failed = scrape_photo(client, "102")
        assert failed.status == "failed"
        assert failed.calls == 5 == fake.calls[(CONTEXTS, "102")]  # first try + max_retries
        assert "HTTP 500" in failed.error and KEY not in failed.error

        missing = scrape_photo(client, "999")
        assert (missing.status, missing.calls, missing.group_ids) == ("not_found", 1, [])
        assert "Photo not found" in missing.error
        assert fake.bad_format == 0  # every request asked for format=json&nojsoncallback=1


def test_group_owner_parsing_and_paged_contacts(tmp_path):
    with FakeFlickr(KEY) as fake:
        fake.groups["76535076@N00"] = ("Flickr Addicts", 138_259, 9_041_713)
        fake.owners["58708830@N00"] = (250, ["76535076@N00", "11@N01"])  # 250 contacts over 250 pages of 1
        client = FlickrClient(KEY, scrape_config(tmp_path, fake).scrape)
        group = scrape_group(client, "76535076@N00")
        assert (group.status, group.title, group.member_count, group.pool_count) == (
            "ok",
            "Flickr Addicts",
            138_259,
            9_041_713,
        )
        assert scrape_group(client, "404@N00").status == "not_found"
        owner = scrape_owner(client, "58708830@N00")
        assert (owner.status, owner.contacts_count, owner.public_groups_count, owner.calls) == ("ok", 250, 2, 2)
        assert scrape_owner(client, "1@N00").status == "not_found"


def test_invalid_key_stops_every_call_without_showing_the_key(tmp_path):
    with FakeFlickr(KEY) as fake:
        fake.photos["101"] = []
        wrong = "wrong-key-0123456789"
        client = FlickrClient(wrong, scrape_config(tmp_path, fake).scrape)
        with pytest.raises(InvalidApiKey, match="Invalid API Key") as err:
            scrape_photo(client, "101")
        assert wrong not in str(err.value)
        with pytest.raises(InvalidApiKey):  # later calls stop at once, without asking Flickr again
            scrape_group(client, "g1")
        assert fake.total == 1


def test_key_comes_only_from_the_environment(monkeypatch):
    monkeypatch.delenv("FLICKR_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="FLICKR_API_KEY is not set"):
        api_key_from_env()
    monkeypatch.setenv("FLICKR_API_KEY", f"  {KEY}\n")
    assert api_key_from_env() == KEY


def test_scrape_config_is_validated():
    with pytest.raises(ConfigError, match="scrape.calls_per_hour"):
        load_config("test", ["scrape.calls_per_hour=0"])
    with pytest.raises(ConfigError, match="scrape.base_url"):
        load_config("test", ["scrape.base_url=ftp://example.com"])
    with pytest.raises(ConfigError, match="unknown config key 'scrape.rate'"):
        load_config("test", ["scrape.rate=5"])


# ------------------------------------------------------------------------------------------------
# the job end to end: tables, export, summary, no key anywhere


def load_job():
    path = PROJECT / "jobs" / "scrape_groups.py"
    spec = importlib.util.spec_from_file_location("scrape_groups_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_scrapes_commits_and_exports_without_leaking_the_key(spark, tmp_path, monkeypatch, capsys):
    from smp_spark.cli import run_job

    urls = tmp_path / "train_img_filepath.txt"
    urls.write_text(
        "\n".join(
            [
                "https://www.flickr.com/photos/58708830@N00/1001",  # two groups
                '"https://www.flickr.com/photos/58708830@N00/1002"',  # quoted; shares a group with 1001
                "https://www.flickr.com/photos/12@N02/1003",  # in no group
                "https://www.flickr.com/photos/12@N02/1004",  # deleted: not_found
                "https://www.flickr.com/photos/12@N02/1005",  # always HTTP 500: failed after retries
                "https://www.flickr.com/photos/12@N02/1006",  # a 429, then a timeout, then fine
                "https://www.flickr.com/photos/12@N02/1007",  # in a group whose info always fails
                "https://www.flickr.com/photos/58708830@N00/1001",  # repeated
                "train/12@N02/555.jpg",  # not a Flickr URL
            ]
        )
        + "\n"
    )
    with FakeFlickr(KEY, slow_seconds=0.8) as fake:
        fake.photos.update({"1001": ["g1", "g2"], "1002": ["g2", "g3"], "1003": [], "1005": [], "1006": ["g1"]})
        fake.photos["1007"] = ["g4"]
        fake.groups.update(
            {"g1": ("Dogs", 500, 2000), "g2": ('Cats, "big" & small', 40, 90), "g3": ("Sky", 7, 8), "g4": ("X", 1, 1)}
        )
        fake.broken.update({"1005", "g4"})
        fake.faults[(CONTEXTS, "1006")] = ["429", "timeout"]
        monkeypatch.setenv("FLICKR_API_KEY", KEY)
        cfg = scrape_config(tmp_path, fake)
        argv = ["--conf", "test", "--input", str(urls), "--no-progress"]
        argv += [f"--set={o}" for o in [f"paths.lake={cfg.path('lake')}", f"paths.scraped={tmp_path / 'export'}"]]
        argv += [
            f"--set=scrape.{k}={getattr(cfg.scrape, k)}" for k in ("base_url", "calls_per_hour", "timeout_seconds")
        ]
        argv += ["--set=scrape.backoff_seconds=0.01", "--set=scrape.max_retries=3", "--set=scrape.batch_size=10"]
        job = load_job()
        run_job("scrape_groups", job.main, add_args=job.add_args, argv=argv)
        out = capsys.readouterr()
        total_calls = fake.total

    log = out.out + out.err
    assert KEY not in log
    assert "7 distinct photos (1 rows without a Flickr photo URL, 1 repeated ids)" in log
    calls, retries = map(
        lambda s: int(s.replace(",", "")), re.search(r"calls: ([\d,]+) \(([\d,]+) retries\)", log).groups()
    )
    # 7 photos + 4 groups once each, + 3 retries of 1005, 2 of 1006, 3 of g4
    assert (calls, retries) == (total_calls, 8) == (19, 8)
    assert "5 ok, 1 not_found, 1 failed" in log  # 1007 is ok in the table; the export demotes it

    photos = {r.imgid: r for r in store.read(spark, cfg, store.PHOTOS).collect()}
    assert {k: (r.status, r.group_ids) for k, r in photos.items()} == {
        "1001": ("ok", ["g1", "g2"]),
        "1002": ("ok", ["g2", "g3"]),
        "1003": ("ok", []),  # scraped, in no group: not the same as not scraped
        "1004": ("not_found", None),
        "1005": ("failed", None),
        "1006": ("ok", ["g1"]),
        "1007": ("ok", ["g4"]),
    }
    assert photos["1006"].calls == 3 and photos["1005"].calls == 4
    assert photos["1001"].owner == "58708830@N00" and photos["1001"].scraped_at is not None
    groups = {r.group_id: r for r in store.read(spark, cfg, store.GROUPS).collect()}
    assert {k: (r.status, r.member_count, r.pool_count) for k, r in groups.items()} == {
        "g1": ("ok", 500, 2000),
        "g2": ("ok", 40, 90),
        "g3": ("ok", 7, 8),
        "g4": ("failed", None, None),
    }
    assert all(n == 1 for g, n in fake.calls_to(GROUP_INFO).items() if g != "g4")  # once per group, not per photo
    for table in (store.PHOTOS, store.GROUPS):  # both open in another engine (delta-rs) as Spark reads them
        assert_opens_elsewhere(spark, cfg.table(table), [store.KEYS[table]], sample=None)

    export = tmp_path / "export"
    status = {r["imgid"]: r["status"] for r in read_csv(export / FILES["photo_status"])}
    assert status == {
        "1001": "ok",
        "1002": "ok",
        "1003": "ok",
        "1004": "not_found",
        "1005": "failed",
        "1006": "ok",
        "1007": "failed",  # its group's counts are missing: never exported as ok with fewer groups
    }
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["scraped_at"])
        for r in read_csv(export / FILES["photo_status"])
    )
    meta = [
        (r["imgid"], r["group_id"], r["title"], r["member_count"], r["pool_count"])
        for r in read_csv(export / FILES["group_meta"])
    ]
    assert meta == [
        ("1001", "g1", "Dogs", "500", "2000"),
        ("1001", "g2", 'Cats, "big" & small', "40", "90"),
        ("1002", "g2", 'Cats, "big" & small', "40", "90"),
        ("1002", "g3", "Sky", "7", "8"),
        ("1006", "g1", "Dogs", "500", "2000"),
    ]
    assert files_holding(tmp_path, KEY) == []


def test_job_without_a_key_stops_with_one_error_line(spark, monkeypatch, capsys):
    from smp_spark.cli import run_job

    monkeypatch.delenv("FLICKR_API_KEY", raising=False)
    job = load_job()
    with pytest.raises(SystemExit) as stop:
        run_job("scrape_groups", job.main, add_args=job.add_args, argv=["--conf", "test", "--no-progress"])
    assert stop.value.code == 2
    assert "error: scrape_groups: FLICKR_API_KEY is not set" in capsys.readouterr().err


def test_job_refuses_a_folder_with_other_scraped_tables(spark, tmp_path):
    with FakeFlickr(KEY) as fake:
        cfg = scrape_config(tmp_path, fake)
        folder = tmp_path / "export"
        folder.mkdir()
        (folder / "group_meta_0_to_50000.csv").write_text("imgid,group_id,title,member_count,pool_count\n")
        from smp_spark.errors import InputError

        with pytest.raises(InputError, match="group_meta_0_to_50000.csv"):
            write_export(spark, cfg, str(folder))


# ------------------------------------------------------------------------------------------------
# resume: a run stopped mid-batch, a run stopped after N batches, then the rest


def test_interrupted_runs_resume_without_duplicates_or_gaps(spark, tmp_path):
    photos = [Photo(str(2000 + i), f"{i % 2}@N01") for i in range(12)]
    with FakeFlickr(KEY) as fake:
        for i, p in enumerate(photos):
            fake.photos[p.imgid] = [f"g{i % 4}", f"g{(i + 1) % 4}"] if i % 3 else []
        for g in range(4):
            fake.groups[f"g{g}"] = (f"group {g}", 10 + g, 100 + g)
        fake.broken.add("g3")  # fails in the first runs, heals later
        # one call at a time, so the call the key is revoked at is known
        cfg = scrape_config(tmp_path, fake, "scrape.batch_size=3", "scrape.max_retries=1", "scrape.concurrency=1")

        # run 1: 7 calls for batch 1 (g3 tried twice), 4 for batch 2; the key dies on call 13, in batch 3
        fake.key_revoked_after = 12
        first = ScrapeSummary()
        with pytest.raises(InvalidApiKey):
            scrape(spark, cfg, photos, FlickrClient(KEY, cfg.scrape), first, progress=False)
        assert first.batches == 2 and "InvalidApiKey" in first.stopped
        committed = {r.imgid for r in store.read(spark, cfg, store.PHOTOS).collect()}
        assert committed == {p.imgid for p in photos[:6]}

        # run 2: stops by itself after one batch
        fake.key_revoked_after = None
        second = scrape(
            spark, cfg, photos, FlickrClient(KEY, cfg.scrape), ScrapeSummary(), max_batches=1, progress=False
        )
        assert (second.photos_already_done, second.batches, second.photos_left) == (6, 1, 3)
        assert "max-batches" in second.stopped
        assert second.eta_seconds() is not None

        # run 3: g3 is back; it is fetched first (its photos were committed), then the last batch
        fake.broken.clear()
        third = scrape(spark, cfg, photos, FlickrClient(KEY, cfg.scrape), ScrapeSummary(), progress=False)
        assert (third.photos_already_done, third.photos_left, third.groups["ok"]) == (9, 0, 1)

        rows = store.read(spark, cfg, store.PHOTOS).collect()
        assert len(rows) == len({r.imgid for r in rows}) == 12  # no duplicates, no gaps
        assert {r.imgid: r.group_ids for r in rows} == {p.imgid: fake.photos[p.imgid] for p in photos}
        groups = store.read(spark, cfg, store.GROUPS).collect()
        assert sorted((r.group_id, r.status) for r in groups) == [(f"g{g}", "ok") for g in range(4)]
        contexts = fake.calls_to(CONTEXTS)
        assert all(contexts[p.imgid] == 1 for p in photos[:6] + photos[9:])  # committed photos never asked again
        # the batch in flight at the stop is fetched again (its third photo was never reached)
        assert [contexts[p.imgid] for p in photos[6:9]] == [2, 2, 1]
        info = fake.calls_to(GROUP_INFO)
        assert info["g0"] == info["g1"] == info["g2"] == 1


def test_a_scrape_killed_mid_batch_resumes_without_duplicates_or_gaps(spark, tmp_path, monkeypatch, capsys):
    from smp_spark.cli import run_job

    photos = [Photo(str(3000 + i), f"{i % 2}@N01") for i in range(12)]
    urls = tmp_path / "train_img_filepath.txt"
    urls.write_text("".join(f"https://www.flickr.com/photos/{p.owner}/{p.imgid}\n" for p in photos))
    with FakeFlickr(KEY) as fake:
        for i, p in enumerate(photos):
            fake.photos[p.imgid] = [f"g{i % 4}", f"g{(i + 1) % 4}"] if i % 3 else []
        for g in range(4):
            fake.groups[f"g{g}"] = (f"group {g}", 10 + g, 100 + g)
        cfg = scrape_config(tmp_path, fake)
        argv = ["--conf", "test", "--input", str(urls), "--no-progress"]
        argv += [f"--set=paths.lake={cfg.path('lake')}", f"--set=paths.scraped={tmp_path / 'export'}"]
        argv += [f"--set=scrape.base_url={fake.base_url}", "--set=scrape.calls_per_hour=3600000"]
        argv += ["--set=scrape.batch_size=3", "--set=scrape.concurrency=1"]

        # batch 1 takes 3 photo + 3 group calls, batch 2 3 + 1 (g0): call 11 is batch 3's first, and hangs
        fake.hold_after = 10
        env = {**os.environ, "SMP_CONF": "test", "PYTHONPATH": str(PROJECT), "FLICKR_API_KEY": KEY}
        with open(tmp_path / "killed.log", "w") as log:
            job = subprocess.Popen(
                [sys.executable, str(PROJECT / "jobs" / "scrape_groups.py"), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: the JVM dies with it
            )
            try:
                assert fake.holding.wait(600), (tmp_path / "killed.log").read_text()[-3000:]
            finally:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        assert job.returncode == -signal.SIGKILL
        assert KEY not in (tmp_path / "killed.log").read_text()
        committed = {r.imgid for r in store.read(spark, cfg, store.PHOTOS).collect()}
        assert committed == {p.imgid for p in photos[:6]}

        # the rerun of the real job finishes the rest
        fake.hold_after = None
        monkeypatch.setenv("FLICKR_API_KEY", KEY)
        job_module = load_job()
        run_job("scrape_groups", job_module.main, add_args=job_module.add_args, argv=argv)
        assert "6 already done" in capsys.readouterr().out

    rows = store.read(spark, cfg, store.PHOTOS).collect()
    assert len(rows) == len({r.imgid for r in rows}) == 12  # no duplicates, no gaps
    assert {r.imgid: r.group_ids for r in rows} == {p.imgid: fake.photos[p.imgid] for p in photos}
    groups = store.read(spark, cfg, store.GROUPS).collect()
    assert sorted((r.group_id, r.status, r.member_count) for r in groups) == [(f"g{g}", "ok", 10 + g) for g in range(4)]
    contexts = fake.calls_to(CONTEXTS)
    # committed photos are never asked again; the call that hung is asked again
    assert [contexts[p.imgid] for p in photos] == [1] * 6 + [2] + [1] * 5
    assert all(n == 1 for n in fake.calls_to(GROUP_INFO).values())
    assert files_holding(tmp_path, KEY) == []


# ------------------------------------------------------------------------------------------------
# the export goes through the project's real ingest


def test_export_ingests_into_bronze(spark, tmp_path):
    from smp_spark.generate import generate_dataset
    from smp_spark.ingest import build_bronze

    root = tmp_path / "data"
    cfg0 = load_config(
        "test",
        [
            f"paths.raw={root / 'train'}",
            f"paths.raw_test={root / 'test'}",
            f"paths.scraped={root / 'scraped'}",
            f"paths.scraped_test={root / 'scraped_test'}",
            f"paths.lake={tmp_path / 'lake'}",
            "data.scale=40",
        ],
    )
    generate_dataset(
        cfg0.path("raw"), cfg0.path("raw_test"), cfg0.path("scraped"), cfg0.path("scraped_test"), 40, 7, 0.05, 4
    )
    # Flickr as the generator scraped it: its ok photos' groups, its not_found and failed photos
    status = {r["imgid"]: r["status"] for r in read_csv(root / "scraped" / "photo_status.csv")}
    with FakeFlickr(KEY) as fake:
        for path in sorted((root / "scraped").glob("group_meta_*.csv")):
            for r in read_csv(path):
                fake.photos.setdefault(r["imgid"], [])
                if r["group_id"] not in fake.photos[r["imgid"]]:
                    fake.photos[r["imgid"]].append(r["group_id"])
                fake.groups.setdefault(r["group_id"], (r["title"], int(r["member_count"]), int(r["pool_count"])))
        owners = {}
        for line in (root / "train" / "train_img_filepath.txt").read_text().split():
            owner, imgid = line.rstrip("/").split("/")[-2:]
            owners[imgid] = owner
            if status.get(imgid, "ok") == "ok":
                fake.photos.setdefault(imgid, [])  # never scraped or in no group: ok, no pools
            elif status[imgid] == "failed":
                fake.photos[imgid] = []
                fake.broken.add(imgid)
            fake.owners[owner] = (len(owner) * 7, ["g"] * (len(owner) % 3))
        cfg = scrape_config(
            tmp_path, fake, f"paths.raw={cfg0.path('raw')}", "scrape.max_retries=1", "scrape.users=true"
        )

        # the release's photos with their posts' Uids (from train_category.json, by row), owners too
        images, category = release_files(spark, cfg.path("raw"))
        found = photos_from_file(spark, images, category)
        scrape(spark, cfg, found.photos, FlickrClient(KEY, cfg.scrape), ScrapeSummary(), users=True, progress=False)
        export = write_export(spark, cfg, str(tmp_path / "export"))
        assert set(export.rows) == set(FILES.values())

    bronze = build_bronze(spark, cfg, cfg.path("raw"), str(tmp_path / "export")).tables
    posts = {r.flickr_photo_id: (r.Pid, r.Uid) for r in bronze["bronze/posts"].collect()}
    assert len(posts) == len(found.photos) > 30
    expected_pairs = {
        (posts[imgid][0], g)
        for imgid, gs in fake.photos.items()
        if imgid in posts and imgid not in fake.broken
        for g in gs
    }
    assert expected_pairs  # the generated photos are in groups
    assert {(r.Pid, r.group_id) for r in bronze["bronze/post_groups"].collect()} == expected_pairs
    got_groups = {r.group_id: (r.title, r.member_count, r.pool_count) for r in bronze["bronze/groups"].collect()}
    assert got_groups == {g: fake.groups[g] for _, g in expected_pairs}
    got_status = {r.flickr_photo_id: r.status for r in bronze["bronze/scrape_status"].collect()}
    assert got_status == {imgid: status.get(imgid, "ok") for imgid in posts}
    assert {"ok", "not_found"} <= set(got_status.values())
    users = {r.Uid: r.contacts_count for r in bronze["bronze/users"].collect()}
    assert users == {uid: len(owners[imgid]) * 7 for imgid, (_, uid) in posts.items()}
    assert bronze["quarantine/rows"].filter("source_file like '%flickr%'").count() == 0

    # bronze/posts as an input gives the same photos, owners and Uids
    bronze["bronze/posts"].write.format("delta").save(cfg.table("bronze/posts"))
    assert set(photos_from_bronze(spark, cfg).photos) == set(found.photos)
