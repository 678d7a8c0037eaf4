"""Synthetic SMPD releases (SMP Challenge, Flickr) in the real file formats, with a known label model.

``generate_dataset`` writes a training release, a test release and the scraped social-network tables
(formats: docs/data.md) plus ``ground_truth.json``. Everything is drawn with numpy at full size from
named random streams derived from ``seed`` (one stream per part), so the same seed gives the same
bytes however the writers chunk their output and however many processes render the images. Names
(categories, concepts, the tag vocabulary) come from a fixed "world" seed: the same for every seed.

Modules: common (time windows, streams, helpers), world (names, categories, vocabulary), people
(users, posts, groups), label (the label model), release (the SMPD files), scraped (the scraped
tables), images and paint (the JPEGs), truth (ground_truth.json); this module runs them in order.

Generative model
----------------
Users (about 0.144 per training post). Each user ``u`` has a latent popularity ``lat_u ~ N(0, 1)``,
an activity weight ``w_u = exp(2 (0.2 lat_u + 0.98 e))`` (posts per user: 1 + Multinomial over
``w``, so many users post once and a few post thousands of times), a group habit
``g_u = 0.45 lat_u + 0.89 e``, a tagging rate, a geotagging rate, a home concept, a time zone and a
home location. Profile fields: ``log photo_count ~ N(log 900 + 0.5 lat_u, 1.4)`` (at least the
user's post count), ``ispro ~ Bernoulli(sigmoid(-1 + 0.45 lat_u))``, ``user_description`` (zero for
45% of users) carries ``lat_u`` weakly along a fixed direction, and so does ``contacts_count`` in
the scraped ``user_meta.csv``. The user effect ``user_sd * lat_u`` is constant over a user's posts,
so a user's earlier labels predict it: honest user-history features help, while the observable
proxies explain only part of it.

Posts. Training posts fall on the days of 2015-03-01..2016-02-29 in China time (UTC+8, the real
split's window: 2015-02-28 16:00 UTC onwards) with a daily volume rising as ``exp(1.6 t)`` over the
year (about 4.5x, as the real monthly volume); test posts fall uniformly on the two months after.
The hour follows a local-time daily profile shifted by the user's UTC offset. The concept is the
user's home concept with probability 0.4, else drawn from the global concept distribution (11
categories at the official SMPD shares, Zipf-like concepts within each). Tags:
``Poisson(rate_u)`` draws with ``rate_u = max(4, LogNormal(log 18, 1.0))`` (0.5% of users never
tag), 25% from the concept's 8 tied tags, the rest Zipf-like from a 50,000-word vocabulary (plain
English words first, then made-up names and compounds: ~2.1 word pieces per tag, as real tags),
duplicates dropped, at most 75 (real SMPD: median 16, mean 21.1, max 75). Titles: 3% empty, 10%
camera defaults, else ``1 + round(LogNormal(log 3, 0.75))`` words (at most 40), 35% of them plain
English words, 50% any vocabulary word alike, 15% by tag frequency. 12% of posts carry coordinates
near the user's home. Pid follows post time (with a 2-day jitter); the Flickr photo id follows post
time exactly. docs/data.md §5 holds these against real SMPD.

Groups. A post joins groups with probability ``sigmoid(-1.7 + 1.3 g_u)`` (about 25%); then
``min(800, round(LogNormal(log 5 + 0.3 g_u, 1.45)))`` Zipf-like draws over the groups (about 30,000 at
680,000 posts), duplicates dropped. A group's member count falls with its popularity rank
(``300,000 rank^-0.85``, lognormal scatter); its pool count is 20x that (lognormal).

Label. On the log2-views scale
``z = intercept + category + subcategory + concept effects + user_sd * lat_u
+ tags_coef * (log1p(n_tags) - tags_center) + title_coef * (min(title_words, 8) - title_center)
+ camera_title + video + geo (if geotagged) + hour_effect[UTC hour] + weekday_effect[UTC weekday]
+ trend_per_year * years since 2015-01-01 + groups_coef * log1p(n_groups)
+ member_coef * (log mean member_count - member_ref) (if in groups) + image_coef * appeal
+ N(0, noise_std)``,
then ``views = max(2, round(2 ** min(z, z_max)))`` and ``label = round(log2(views), 2)``, so every
label below 4 is log2 of a small integer. All coefficients are in :class:`LabelModel` and in
ground_truth.json. The oracle predicts ``label(z - noise)``, the label of the noiseless score: the
conditional median of the label, hence the best possible MAE.

Images. Every post has a latent visual appeal ``appeal ~ N(0, 1)`` (its own stream); the label's
``image_coef * appeal`` term counts for every post, even when its file is missing or broken (the
real photo existed). With ``image_style="local"`` (the 2023 release, the default) each post gets a
JPEG ``<prefix>/<Uid>/<Pid>.jpg`` under its release folder, listed in ``<prefix>_img_path.txt`` (the
2023 name; ``<prefix>_img_filepath.txt`` keeps the 2019 URLs, which carry the photo ids the scraped
tables are keyed by); with ``"url"`` (the 2019 release) only the URL list is written, no image. The
category sets the subject (peaks, confetti, stripes, rings, a portrait, clouds, an animal, a plate,
blocks, a screen, a pair) and the hue family, the subcategory and concept shift the hue; four
quality scores ``appeal + N(0, 0.6)`` set brightness, contrast, saturation and sharpness (dull,
grey and soft at low appeal; bright, vivid and crisp at high). Long side 128-256 px; landscape 55%,
portrait 35%, square 10%; ~10% stored turned with an EXIF orientation (6, 8, some 3). 0.2% of the
listed files are missing, 0.1% truncated, 0.1% an error page saved as .jpg, 0.05% empty. Each
image's truth is in ``image_truth.csv`` (``image_truth_test.csv``) beside the release folder.

Scrape. Group rows, one per (photo, group), are written for photos scraped ``ok``; 3% of photos
were never scraped, 1% are ``not_found``, 0.5% ``failed`` (their true groups still shape the label).
0.25% of group rows are repeated exactly and 0.25% are re-scraped with drifted counts, appended at
the end of their chunk file. ``user_meta.csv`` covers 90% of users.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from smp_spark.generate import release
from smp_spark.generate.common import (
    CONCEPT_TAGS,
    DAY,
    FULL_SCALE,
    GROUPS_AT_FULL_SCALE,
    MAX_GROUPS,
    MAX_TAGS,
    SCRAPE_CHUNK,
    SCRAPE_START,
    TEST_END,
    TEST_EXISTING_USER_SHARE,
    TRAIN_END,
    TRAIN_START,
    USERS_PER_POST,
    VOCABULARY_SIZE,
    WORLD_SEED,
    _stream,
)
from smp_spark.generate.images import JPEG_QUALITY, KNOB_NOISE, ImagePlan, local_path, plan_images, write_images
from smp_spark.generate.label import Effects, LabelModel, draw_effects, label_of, mean_member_count, score_components
from smp_spark.generate.people import (
    GEOACCURACY_WEIGHTS,
    LOCAL_HOUR_PROFILE,
    N_TIMEZONE_IDS,
    OFFSET_WEIGHTS,
    Groups,
    Posts,
    Users,
    assign_ids,
    assign_owners,
    draw_concepts,
    draw_geo,
    draw_memberships,
    draw_postdates,
    draw_posts,
    draw_tags,
    draw_titles,
    draw_users,
    make_groups,
)
from smp_spark.generate.release import (
    WRITE_CHUNK,
    UserText,
    user_texts,
    write_json_list,
    write_lines,
    write_pid_values,
    write_release,
)
from smp_spark.generate.scraped import write_scraped
from smp_spark.generate.truth import GENERATOR_VERSION, ground_truth
from smp_spark.generate.world import (
    CATEGORY_COUNTS,
    COMMON_TAGS,
    GROUP_WORDS,
    N_CONCEPTS,
    SUBCATEGORIES,
    World,
    build_world,
    synthetic_words,
)

__all__ = [
    "CATEGORY_COUNTS",
    "COMMON_TAGS",
    "CONCEPT_TAGS",
    "DAY",
    "FULL_SCALE",
    "GENERATOR_VERSION",
    "GEOACCURACY_WEIGHTS",
    "GROUPS_AT_FULL_SCALE",
    "GROUP_WORDS",
    "IMAGE_STYLES",
    "JPEG_QUALITY",
    "LOCAL_HOUR_PROFILE",
    "MAX_GROUPS",
    "MAX_TAGS",
    "N_CONCEPTS",
    "N_TIMEZONE_IDS",
    "OFFSET_WEIGHTS",
    "SCRAPE_CHUNK",
    "SCRAPE_START",
    "SUBCATEGORIES",
    "TEST_END",
    "TEST_EXISTING_USER_SHARE",
    "TRAIN_END",
    "TRAIN_START",
    "USERS_PER_POST",
    "VOCABULARY_SIZE",
    "WORLD_SEED",
    "WRITE_CHUNK",
    "Effects",
    "Groups",
    "ImagePlan",
    "LabelModel",
    "Posts",
    "UserText",
    "Users",
    "World",
    "assign_ids",
    "assign_owners",
    "build_world",
    "draw_concepts",
    "draw_effects",
    "draw_geo",
    "draw_memberships",
    "draw_postdates",
    "draw_posts",
    "draw_tags",
    "draw_titles",
    "draw_users",
    "generate_dataset",
    "ground_truth",
    "label_of",
    "local_path",
    "make_groups",
    "mean_member_count",
    "plan_images",
    "release",
    "released_rows",
    "score_components",
    "synthetic_words",
    "user_texts",
    "write_images",
    "write_json_list",
    "write_lines",
    "write_pid_values",
    "write_release",
    "write_scraped",
]

IMAGE_STYLES = ("local", "url")


def _clock(progress: bool) -> Callable[[str], None]:
    started = time.time()

    def step(name: str) -> None:
        if progress:
            print(f"  generate: {name:<28} {time.time() - started:6.1f}s", file=sys.stderr, flush=True)

    return step


def released_rows(posts: Posts, share: float, previous_share: float = 0.0) -> np.ndarray:
    """Rows of an earlier day's release: the earliest ``share`` of the training posts by post time
    (ties by Pid), in the full release's order, then every test post. With ``previous_share`` (the
    share of the day before) its posts come first, in their order, and the later ones after them,
    so every record of the day before keeps its place in the files, as in an appended feed."""
    by_time = np.lexsort((posts.pid[: posts.n_train], posts.postdate[: posts.n_train]))
    before = np.sort(by_time[: round(posts.n_train * previous_share)])
    after = np.sort(by_time[round(posts.n_train * previous_share) : round(posts.n_train * share)])
    return np.concatenate([before, after, np.arange(posts.n_train, posts.n)])


def generate_dataset(
    train_dir: str,
    test_dir: str,
    scraped_dir: str,
    scraped_test_dir: str,
    scale: int,
    seed: int,
    test_fraction: float,
    description_dims: int,
    progress: bool = False,
    image_style: Literal["local", "url"] = "local",
    image_workers: int | None = None,
    release_share: float = 1.0,
    previous_share: float = 0.0,
) -> dict:
    """Write a training release (``scale`` posts), a test release and the scraped tables.

    Also writes ``ground_truth.json`` and ``oracle_train.csv`` (each training post's noiseless
    prediction) beside the training folder and ``test_labels_hidden.csv``
    (``Pid,label``) beside the test folder, so ingesting either folder never sees them. With
    ``image_style`` "local" every post gets a JPEG under its release folder (``image_workers``
    processes; None: one per core at scale) and ``image_truth.csv`` / ``image_truth_test.csv``
    sit beside the folders; "url" lists Flickr URLs instead. Returns the ground-truth dict.

    ``release_share`` below 1 writes an earlier day's release of the same data: only the earliest
    ``release_share`` of the training posts by post time (the test release whole). Every post in it
    is as in the full release, byte for byte (its records, image file and label). Generating the
    next day's release into the same folders (a larger ``release_share``, ``previous_share`` the
    earlier one) gives the same records in the same places, the later posts appended after them,
    and leaves the unchanged image files untouched. ``previous_share`` 0: the full release's order.
    """
    if not 0 < release_share <= 1:
        raise ValueError(f"release_share must lie in (0, 1], got {release_share}")
    if not 0 <= previous_share < release_share:
        raise ValueError(f"previous_share must lie in [0, release_share), got {previous_share}")
    if image_style not in IMAGE_STYLES:
        raise ValueError(f"image_style must be one of {', '.join(IMAGE_STYLES)}, got {image_style!r}")
    step = _clock(progress)
    model = LabelModel()
    world = build_world()
    n_test = round(scale * test_fraction)
    n_new_posts = n_test - round(n_test * TEST_EXISTING_USER_SHARE)
    n_new_users = min(n_new_posts, max(1, round(n_new_posts / 2.5))) if n_new_posts else 0
    users = draw_users(seed, max(1, round(scale * USERS_PER_POST)), n_new_users, world)
    groups = make_groups(seed, scale)
    posts = draw_posts(seed, users, world, groups, scale, n_test)
    step("users, groups and posts")

    effects = draw_effects(seed, world, model)
    components = score_components(posts, users, groups, world, effects, model)
    score = model.intercept + sum(components.values())
    label = label_of(score + _stream(seed, "noise").normal(0, model.noise_std, posts.n), model)
    oracle = label_of(score, model)
    text = user_texts(seed, users, posts, description_dims)
    plan = plan_images(seed, posts.appeal)
    if release_share < 1 or previous_share > 0:  # everything above is drawn for the full release, then cut
        rows = released_rows(posts, release_share, previous_share)
        n_train = len(rows) - (posts.n - posts.n_train)
        posts, label, oracle, plan = posts.take(rows, n_train), label[rows], oracle[rows], plan.take(rows)
        components = {name: values[rows] for name, values in components.items()}
    step("labels and user fields")

    test = slice(posts.n_train, posts.n)
    train_folder, test_folder = Path(train_dir), Path(test_dir)
    n_train = posts.n_train
    files = {"train": write_release(train_folder, "train", 0, n_train, posts, world, text, label, image_style)}
    step("training release")
    files["test"] = write_release(test_folder, "test", n_train, posts.n, posts, world, text, None, image_style)
    write_pid_values(test_folder.parent / "test_labels_hidden.csv", posts.pid[test], label[test], "label")
    step("test release")
    scraped = write_scraped(
        {"train": Path(scraped_dir), "test": Path(scraped_test_dir)}, seed, posts, users, groups, text
    )
    files["scraped"], files["scraped_test"] = scraped["train"], scraped["test"]
    step("scraped tables")

    images: dict = {"style": image_style, "image_coef": model.image_coef}
    if image_style == "local":
        releases = {
            "train": (str(train_folder), 0, n_train, train_folder.parent / "image_truth.csv"),
            "test": (str(test_folder), n_train, posts.n, test_folder.parent / "image_truth_test.csv"),
        }
        images |= {"quality_noise_std": KNOB_NOISE, "jpeg_quality": JPEG_QUALITY}
        images |= write_images(releases, plan, posts, text.uid, world, image_workers, step)
        images["bytes"] = sum(images[r]["bytes"] for r in releases)

    settings = {"seed": seed, "scale": scale, "test_fraction": test_fraction, "description_dims": description_dims}
    settings |= {"release_share": release_share, "previous_share": previous_share}
    truth = ground_truth(
        posts, users, groups, world, text, effects, model, components, label, oracle, settings, files, images
    )
    train = slice(0, posts.n_train)
    write_pid_values(train_folder.parent / "oracle_train.csv", posts.pid[train], oracle[train], "oracle")
    with open(train_folder.parent / "ground_truth.json", "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=2)
        f.write("\n")
    step("ground truth")
    return truth
