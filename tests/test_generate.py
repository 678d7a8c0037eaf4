"""The synthetic SMPD generator: real file formats, row alignment, determinism, label model."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

from smp_spark import generate
from smp_spark.config import load_config
from smp_spark.errors import ConfigError
from smp_spark.generate import CATEGORY_COUNTS, TEST_END, TRAIN_END, TRAIN_START, build_world, generate_dataset
from smp_spark.generate import images as generate_images
from tests.smpd_fixture import FILES

KEYS = FILES  # the SMPD JSON files and their keys, one definition for all tests
USER_FIELDS = KEYS["user_data"][2:]
URL = re.compile(r"^https://www\.flickr\.com/photos/(\d{5,8}@N\d\d)/(\d{9,11})$")
UID = re.compile(r"^\d{1,5}@N\d\d$")
SCALE, DIMS = 2000, 8
# the local-image fixture's file kinds: far more broken files than the real shares, so every kind shows up
MESSY_KINDS = (0.9, 0.03, 0.03, 0.02, 0.02)


def _generate(root: Path, scale: int = SCALE, seed: int = 7, image_style: str = "url", **kwargs) -> dict:
    return generate_dataset(
        str(root / "smpd" / "train"),
        str(root / "smpd" / "test"),
        str(root / "scraped" / "train"),
        str(root / "scraped" / "test"),
        scale=scale,
        seed=seed,
        test_fraction=0.05,
        description_dims=DIMS,
        image_style=image_style,
        **kwargs,
    )


def _load(root: Path, prefix: str) -> dict[str, list[dict]]:
    folder = root / "smpd" / prefix
    return {stem: json.loads((folder / f"{prefix}_{stem}.json").read_text()) for stem in KEYS}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    truth = _generate(root)
    return root, truth, _load(root, "train"), _load(root, "test")


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    root = tmp_path_factory.mktemp("medium")
    return root, _generate(root, scale=20_000, seed=11)


def test_world_has_the_smpd_hierarchy_with_unique_names():
    world = build_world()
    assert world.categories == list(CATEGORY_COUNTS)
    assert (len(world.categories), len(world.subcategories), len(world.concepts)) == (11, 77, 668)
    assert len(set(world.subcategories)) == 77 and len(set(world.concepts)) == 668
    assert len(set(world.vocabulary)) == len(world.vocabulary) == 50_000
    assert build_world().concepts == world.concepts  # names do not depend on any data seed


def test_every_json_file_is_a_list_with_the_exact_keys(small):
    _, truth, train, test = small
    for release, n in ((train, SCALE), (test, round(SCALE * 0.05))):
        for stem, records in release.items():
            assert isinstance(records, list) and len(records) == n, stem
            assert all(list(r) == KEYS[stem] for r in records), stem


def test_files_are_aligned_by_row_order_and_pid_is_unique(small):
    root, _, train, test = small
    for prefix, release in (("train", train), ("test", test)):
        pids = [r["Pid"] for r in release["category"]]
        uids = [r["Uid"] for r in release["category"]]
        assert len(set(pids)) == len(pids)
        for stem, records in release.items():
            expected = [int(p) for p in pids] if stem == "user_data" else pids  # user_data: Pid is an int
            assert [r["Pid"] for r in records] == expected, stem
            assert [r["Uid"] for r in records] == uids, stem
        urls = _lines(root / "smpd" / prefix / f"{prefix}_img_filepath.txt")
        assert len(urls) == len(pids)
    labels = _lines(root / "smpd" / "train" / "train_label.txt")
    assert len(labels) == SCALE
    assert not (root / "smpd" / "test" / "test_label.txt").exists()
    assert not set(r["Pid"] for r in train["category"]) & set(r["Pid"] for r in test["category"])


def test_posts_are_not_in_time_order(small):
    _, _, train, _ = small
    dates = [int(r["Postdate"]) for r in train["temporalspatial_information"]]
    assert dates != sorted(dates)


def test_label_and_url_lines(small):
    root, _, train, _ = small
    assert all(re.fullmatch(r"\d+\.\d\d", line) for line in _lines(root / "smpd" / "train" / "train_label.txt"))
    urls = _lines(root / "smpd" / "train" / "train_img_filepath.txt")
    matches = [URL.match(u) for u in urls]
    assert all(matches)
    photo_ids = [m.group(2) for m in matches]
    assert len(set(photo_ids)) == len(photo_ids)
    assert not set(photo_ids) & {r["Pid"] for r in train["category"]}
    owner_of_uid = defaultdict(set)
    for r, m in zip(train["category"], matches):
        owner_of_uid[r["Uid"]].add(m.group(1))
    assert all(len(owners) == 1 for owners in owner_of_uid.values())  # one Flickr owner per user
    assert all(UID.match(uid) and uid not in owners for uid, owners in owner_of_uid.items())


def test_user_fields_are_constant_per_uid_across_releases(small):
    _, _, train, test = small
    seen: dict[str, tuple] = {}
    for record in train["user_data"] + test["user_data"]:
        values = tuple(record[k] for k in USER_FIELDS)
        assert seen.setdefault(record["Uid"], values) == values
    aliases: dict[str, str] = {}
    for record in train["additional_information"] + test["additional_information"]:
        assert aliases.setdefault(record["Uid"], record["Pathalias"]) == record["Pathalias"]
    users = len(seen)
    assert 0.1 < users / (SCALE * 1.05) < 0.2


def test_value_encodings_mix_like_the_real_files(small):
    _, _, train, test = small
    users = {r["Uid"]: r for r in train["user_data"]}.values()
    assert any(isinstance(u["photo_count"], float) for u in users)
    assert any(isinstance(u["photo_count"], str) for u in users)
    for u in users:
        assert all(isinstance(u[k], type(u["photo_count"])) for k in ("ispro", "canbuypro"))
        assert u["photo_firstdate"] is None or re.fullmatch(r"\d{10}", u["photo_firstdate"])
        assert re.fullmatch(r"\d{10}|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", u["photo_firstdatetaken"])
        for key in ("user_description", "location_description"):
            values = u[key].split(",") if u[key] else []
            assert len(values) in ((DIMS,) if key == "user_description" else (0, DIMS))
            assert all(v == "0" or re.fullmatch(r"-?\d\.\d{7}", v) for v in values)
    assert any(u["location_description"] == "" for u in users)
    assert any(set(u["user_description"].split(",")) == {"0"} for u in users)

    for release, low, high in ((train, TRAIN_START, TRAIN_END), (test, TRAIN_END, TEST_END)):
        for r in release["temporalspatial_information"]:
            assert low <= int(r["Postdate"]) < high
            if r["Geoaccuracy"] == "0":
                assert r["Latitude"] == "0" and r["Longitude"] in ("0", "")
            else:
                assert 1 <= int(r["Geoaccuracy"]) <= 16
                assert re.fullmatch(r"-?\d+\.\d{6}", r["Latitude"]) and re.fullmatch(r"-?\d+\.\d{6}", r["Longitude"])
    geo = np.mean([r["Geoaccuracy"] != "0" for r in train["temporalspatial_information"]])
    assert 0.05 < geo < 0.2
    assert {r["Mediatype"] for r in train["text"]} <= {"photo", "video"}
    assert {r["Ispublic"] for r in train["additional_information"]} == {"1"}
    assert any(r["Pathalias"] == "None" for r in train["additional_information"])
    assert any(r["Title"] == "" for r in train["text"]) and any(r["Alltags"] == "" for r in train["text"])


def test_category_hierarchy_is_consistent(small):
    _, _, train, _ = small
    parent_of_sub, parent_of_concept = {}, {}
    for r in train["category"]:
        assert r["Category"] in CATEGORY_COUNTS
        assert parent_of_sub.setdefault(r["Subcategory"], r["Category"]) == r["Category"]
        assert parent_of_concept.setdefault(r["Concept"], r["Subcategory"]) == r["Subcategory"]


def test_scraped_tables(small):
    root, truth, train, test = small
    n_test = round(SCALE * 0.05)
    expected_files = {
        "train": [f"group_meta_0_to_{SCALE}.csv"],
        "test": [f"group_meta_{SCALE}_to_{SCALE + n_test}.csv"],
    }
    for release, records in (("train", train), ("test", test)):
        scraped = root / "scraped" / release
        group_files = sorted(scraped.glob("group_meta_*.csv"))
        assert [p.name for p in group_files] == expected_files[release]
        photo_ids = [URL.match(u).group(2) for u in _lines(root / "smpd" / release / f"{release}_img_filepath.txt")]
        status = {r["imgid"]: r["status"] for r in _csv(scraped / "photo_status.csv")}
        assert set(status) <= set(photo_ids) and set(status.values()) <= {"ok", "not_found", "failed"}
        assert 0.85 < len(status) / len(photo_ids) <= 1.0  # a few photos were never scraped
        rows = []
        for path in group_files:
            assert path.read_text().splitlines()[0] == "imgid,group_id,title,member_count,pool_count"
            rows += [tuple(r.values()) for r in _csv(path)]
        for imgid, group_id, title, member_count, pool_count in rows:
            assert status[imgid] == "ok"
            assert re.fullmatch(r"\d+@N\d\d", group_id) and title
            assert 0 < int(member_count) <= int(pool_count) + 2  # +2: a re-scrape may drift members up
        user_meta = _csv(scraped / "user_meta.csv")
        uids = {r["Uid"] for r in records["category"]}
        assert {r["Uid"] for r in user_meta} <= uids and 0.75 < len(user_meta) / len(uids) < 0.99
        part = "scraped" if release == "train" else "scraped_test"
        assert truth["counts"]["files"][part]["user_meta.csv"] == len(user_meta)
        if release == "train":
            assert any("," in r[2] for r in rows)  # titles with commas, quoted
            assert len(set(rows)) < len(rows)  # exact repeats
            assert len({r[:2] for r in rows}) < len(set(rows))  # the same membership with drifted counts


def test_ground_truth_and_hidden_test_labels_sit_outside_the_release_folders(small):
    root, truth, _, test = small
    on_disk = json.loads((root / "smpd" / "ground_truth.json").read_text())
    assert on_disk == json.loads(json.dumps(truth))
    for key in (
        "seed",
        "scale",
        "generator_version",
        "label_model",
        "noise_std",
        "oracle",
        "median_baseline",
        "label_stats",
        "counts",
        "category_effects",
        "concept_effects",
    ):
        assert key in truth, key
    for release in ("train", "test"):
        assert set(truth["oracle"][release]) == {"mae", "rmse", "src"}
    hidden = _csv(root / "smpd" / "test_labels_hidden.csv")
    assert [r["Pid"] for r in hidden] == [r["Pid"] for r in test["category"]]
    assert all(re.fullmatch(r"\d+\.\d\d", r["label"]) for r in hidden)


def test_same_seed_same_bytes_and_another_seed_differs(small, tmp_path, monkeypatch):
    root, _, _, _ = small
    monkeypatch.setattr(generate.release, "WRITE_CHUNK", 333)  # output must not depend on how writers chunk
    _generate(tmp_path / "again")
    assert _digests(tmp_path / "again") == _digests(root)
    _generate(tmp_path / "other", seed=8)
    label = Path("smpd/train/train_label.txt")
    assert (tmp_path / "other" / label).read_bytes() != (root / label).read_bytes()


def test_label_distribution(medium):
    root, truth = medium
    labels = np.array([float(x) for x in _lines(root / "smpd" / "train" / "train_label.txt")])
    assert 5.8 <= labels.mean() <= 7.0 and 2.0 <= labels.std() <= 3.0 and labels.min() == 1.0
    small_views = {round(math.log2(k), 2) for k in range(2, 17)}
    assert set(labels[labels < 4].tolist()) <= small_views
    assert truth["label_stats"]["train"]["mean"] == pytest.approx(labels.mean(), abs=1e-4)


def test_oracle_beats_the_median_and_groups_matter(medium):
    root, truth = medium
    for release in ("train", "test"):
        assert truth["oracle"][release]["mae"] < truth["median_baseline"][release]["mae"]
    assert 0.9 <= truth["oracle"]["train"]["mae"] <= 1.2 and 0.7 <= truth["oracle"]["train"]["src"] <= 0.9
    posts_with_groups = {r["imgid"] for p in (root / "scraped").glob("*/group_meta_*.csv") for r in _csv(p)}
    share = len(posts_with_groups) / (20_000 * 1.05)
    assert 0.15 <= share <= 0.35
    pearson = truth["pearson_with_label_train"]
    observable = {k: v for k, v in pearson.items() if not k.endswith("_latent")}
    assert max(observable, key=observable.get) in ("groups", "log1p_groups")


# ------------------------------------------------------------------------------------------------
# Images ("local" releases)


def _messy_local(root: Path, workers: int) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate_images, "KIND_SHARES", MESSY_KINDS)
        return _generate(root, image_style="local", image_workers=workers)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A "local" release pair with every kind of broken file, its truth rows by release."""
    root = tmp_path_factory.mktemp("local")
    truth = _messy_local(root, workers=1)
    rows = {
        "train": _csv(root / "smpd" / "image_truth.csv"),
        "test": _csv(root / "smpd" / "image_truth_test.csv"),
    }
    return root, truth, rows


def test_local_release_lists_its_image_files_in_record_order(local):
    root, truth, rows = local
    for prefix in ("train", "test"):
        folder = root / "smpd" / prefix
        listed = _lines(folder / f"{prefix}_img_path.txt")
        records = json.loads((folder / f"{prefix}_category.json").read_text())
        assert listed == [f"{prefix}/{r['Uid']}/{r['Pid']}.jpg" for r in records]
        assert all(URL.match(u) for u in _lines(folder / f"{prefix}_img_filepath.txt"))  # the 2019 URLs too
        assert [r["path"] for r in rows[prefix]] == listed and [r["Pid"] for r in rows[prefix]] == [
            r["Pid"] for r in records
        ]
        for row in rows[prefix]:
            assert (folder / row["path"]).is_file() == (row["kind"] != "missing"), row
        kinds = {k: sum(r["kind"] == k for r in rows[prefix]) for k in generate_images.KINDS}
        assert truth["images"][prefix]["kinds"] == kinds
        assert truth["images"][prefix]["files"] == len(listed) - kinds["missing"]
        on_disk = sum((folder / r["path"]).stat().st_size for r in rows[prefix] if r["kind"] != "missing")
        assert truth["images"][prefix]["bytes"] == on_disk
    assert all(n > 0 for n in truth["images"]["train"]["kinds"].values())
    assert truth["images"]["style"] == "local" and truth["counts"]["files"]["train"]["train_img_path.txt"] == SCALE


def test_ok_images_open_at_their_display_size_after_the_exif_orientation(local):
    root, _, rows = local
    turned_portraits = 0
    for prefix in ("train", "test"):
        for row in (r for r in rows[prefix] if r["kind"] == "ok"):
            with Image.open(root / "smpd" / prefix / row["path"]) as img:
                assert img.format == "JPEG"
                assert img.size == (int(row["stored_width"]), int(row["stored_height"]))
                assert img.getexif().get(0x0112, 1) == int(row["orientation"])
                display = (int(row["display_width"]), int(row["display_height"]))
                assert ImageOps.exif_transpose(img).size == display
                if row["orientation"] in ("6", "8") and display[1] > display[0]:
                    assert img.size == display[::-1]
                    turned_portraits += 1
    assert turned_portraits > 0
    sizes = [(int(r["display_width"]), int(r["display_height"])) for r in rows["train"]]
    assert all(128 <= max(s) <= 256 for s in sizes)
    assert {"landscape", "portrait", "square"} == {
        "square" if w == h else "landscape" if w > h else "portrait" for w, h in sizes
    }


def test_broken_images_fail_the_way_real_broken_files_do(local):
    root, _, rows = local
    for row in rows["train"]:
        path = root / "smpd" / "train" / row["path"]
        if row["kind"] == "truncated":
            with Image.open(path) as img, pytest.raises(OSError, match="truncated"):
                img.load()
        elif row["kind"] in ("not_image", "empty"):
            assert (path.stat().st_size == 0) == (row["kind"] == "empty")
            with pytest.raises(UnidentifiedImageError):
                Image.open(path)


def test_image_bytes_do_not_depend_on_the_number_of_processes(local, tmp_path):
    root, _, _ = local
    _messy_local(tmp_path / "two", workers=2)
    assert _digests(tmp_path / "two") == _digests(root)


def test_an_earlier_days_release_is_the_full_one_cut_and_generating_again_adds_the_later_posts(local, tmp_path):
    root, _, _ = local
    day = tmp_path / "day"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate_images, "KIND_SHARES", MESSY_KINDS)
        _generate(day, image_style="local", image_workers=1, release_share=0.9)
    first, full = _load(day, "train"), _load(root, "train")
    assert len(first["text"]) == 1800  # round(0.9 * 2000)
    for stem in KEYS:  # every record of the earlier release is the full release's, unchanged
        records = {json.dumps(r, sort_keys=True) for r in full[stem]}
        assert all(json.dumps(r, sort_keys=True) in records for r in first[stem])
    kept = {r["Pid"] for r in first["temporalspatial_information"]}
    times = [(int(r["Postdate"]), r["Pid"] in kept) for r in full["temporalspatial_information"]]
    assert max(t for t, k in times if k) <= min(t for t, k in times if not k)  # the withheld posts are the latest
    assert _load(day, "test") == _load(root, "test")
    label = dict(zip((r["Pid"] for r in full["text"]), _lines(root / "smpd/train/train_label.txt")))
    assert _lines(day / "smpd/train/train_label.txt") == [label[r["Pid"]] for r in first["text"]]

    images = {p: p.stat().st_mtime_ns for p in (day / "smpd/train").rglob("*.jpg")}
    with pytest.MonkeyPatch.context() as patch:  # the next day: every post, into the same folders
        patch.setattr(generate_images, "KIND_SHARES", MESSY_KINDS)
        _generate(day, image_style="local", image_workers=1, previous_share=0.9)
    second = _load(day, "train")
    for stem in KEYS:  # the day before's records in their places, then the full release's other posts
        assert second[stem][:1800] == first[stem]
        assert sorted(map(json.dumps, second[stem])) == sorted(map(json.dumps, full[stem]))
    labels = _lines(day / "smpd/train/train_label.txt")
    assert dict(zip((r["Pid"] for r in second["text"]), labels)) == label
    jpg = {name: digest for name, digest in _digests(day).items() if name.endswith(".jpg")}
    assert jpg == {name: digest for name, digest in _digests(root).items() if name.endswith(".jpg")}
    assert {p: p.stat().st_mtime_ns for p in images} == images  # the earlier images were not rewritten
    chunks = {p.name for p in (root / "scraped/train").glob("group_meta_*.csv")}
    assert {p.name for p in (day / "scraped/train").glob("group_meta_*.csv")} == chunks  # the earlier cut's are gone
    with pytest.raises(ValueError, match="release_share"):
        _generate(tmp_path / "bad", scale=10, release_share=0.0)
    with pytest.raises(ValueError, match="previous_share"):
        _generate(tmp_path / "bad", scale=10, release_share=0.5, previous_share=0.5)
    with pytest.raises(ConfigError, match=r"'data\.release_share' must lie in \(0, 1\], got 1.5"):
        load_config("test", ["data.release_share=1.5"])
    with pytest.raises(ConfigError, match=r"'data\.previous_release_share' must lie in \[0, data\.release_share\)"):
        load_config("test", ["data.previous_release_share=1.0"])


def test_url_style_writes_no_image_and_lists_flickr_urls(small):
    root, truth, _, _ = small
    assert not list(root.rglob("*.jpg")) and not list(root.rglob("image_truth*.csv"))
    assert truth["images"] == {"style": "url", "image_coef": truth["label_model"]["image_coef"]}
    for prefix in ("train", "test"):
        assert all(URL.match(u) for u in _lines(root / "smpd" / prefix / f"{prefix}_img_filepath.txt"))


def test_the_image_term_is_in_the_label_and_the_oracle(local):
    root, truth, rows = local
    coef = truth["label_model"]["image_coef"]
    appeal = np.array([float(r["appeal"]) for r in rows["train"]])
    label = np.array([float(x) for x in _lines(root / "smpd" / "train" / "train_label.txt")])
    oracle = np.array([float(r["oracle"]) for r in _csv(root / "smpd" / "oracle_train.csv")])
    without_image = oracle - coef * appeal
    assert np.mean(np.abs(oracle - label)) < np.mean(np.abs(without_image - label)) - 0.02
    assert truth["component_std_train"]["image"] == pytest.approx(coef * appeal.std(), abs=1e-3)
    assert truth["pearson_with_label_train"]["image_appeal_latent"] > 0.1


def test_appeal_and_category_are_visible_in_the_pixels(local):
    root, _, rows = local
    category = {r["Pid"]: r["Category"] for r in json.loads((root / "smpd/train/train_category.json").read_text())}
    quality, layout, appeal, labels = [], [], [], []
    for row in [r for r in rows["train"] if r["kind"] == "ok"][:800]:
        with Image.open(root / "smpd" / "train" / row["path"]) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            luma = np.asarray(img.convert("L"), float)
            hsv = np.asarray(img.convert("HSV"), float) / 255
            thumb = np.asarray(img.convert("L").resize((8, 8), Image.Resampling.BOX), float).ravel()
        hue = np.exp(2j * np.pi * hsv[..., 0]) * hsv[..., 1]
        quality.append([luma.std(), hsv[..., 1].mean()])
        layout.append(
            [*(thumb - thumb.mean()) / (thumb.std() + 1e-6), *(4 * np.array([hue.mean().real, hue.mean().imag]))]
        )
        appeal.append(float(row["appeal"]))
        labels.append(category[row["Pid"]])
    z = (np.array(quality) - np.mean(quality, 0)) / np.std(quality, 0)
    assert np.corrcoef(z.sum(1), appeal)[0, 1] > 0.6  # contrast and saturation rise with the appeal
    names = sorted(set(labels))
    cls, x = np.array([names.index(c) for c in labels]), np.array(layout)
    half = len(cls) // 2
    centroids = np.array([x[:half][cls[:half] == k].mean(0) for k in range(len(names))])
    predicted = np.argmin(((x[half:, None, :] - centroids[None]) ** 2).sum(-1), 1)
    assert np.mean(predicted == cls[half:]) > 0.8  # an 8x8 thumbnail and the mean hue tell the category


def test_image_plan_shares():
    n = 200_000
    plan = generate_images.plan_images(3, np.random.default_rng(0).standard_normal(n))
    shares = np.bincount(plan.kind, minlength=5) / n
    assert np.allclose(shares, generate_images.KIND_SHARES, rtol=0.2, atol=1e-4)
    landscape, portrait = np.mean(plan.width > plan.height), np.mean(plan.width < plan.height)
    assert (round(landscape, 2), round(portrait, 2)) == (0.55, 0.35)
    assert 0.08 < np.mean(plan.orientation != 1) < 0.12 and set(np.unique(plan.orientation)) == {1, 3, 6, 8}
    stored_w, stored_h = plan.stored
    turned = np.isin(plan.orientation, (6, 8))
    assert np.array_equal(stored_w[turned], plan.height[turned]) and np.array_equal(
        stored_w[~turned], plan.width[~turned]
    )
    assert np.corrcoef(plan.knobs[:, 0], np.random.default_rng(0).standard_normal(n))[0, 1] > 0.8


def test_image_style_is_checked_in_the_config_and_the_generator(tmp_path):
    assert load_config("test").data.image_style == "local"
    assert load_config("test", ["data.image_style=url"]).data.image_style == "url"
    with pytest.raises(ConfigError, match=r"'data\.image_style' must be one of local, url, got 'jpeg'"):
        load_config("test", ["data.image_style=jpeg"])
    with pytest.raises(ValueError, match="image_style"):
        _generate(tmp_path, scale=10, image_style="jpeg")
