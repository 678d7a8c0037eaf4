"""Synthetic SMPD releases (SMP Challenge, Flickr) in the real file formats, with a known label model.

``generate_dataset`` writes a training release, a test release and the scraped social-network tables
(formats: docs/data.md) plus ``ground_truth.json``. Everything is drawn with numpy at full size from
named random streams derived from ``seed`` (one stream per part), so the same seed gives the same
bytes however the writers chunk their output. Names (categories, concepts, the tag vocabulary) come
from a fixed "world" seed: they are the same for every data seed.

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

Posts. Training posts fall uniformly on the days of 2015-01-01..2016-04-30 UTC, test posts on
2016-05-01..2016-06-30; the hour follows a local-time daily profile shifted by the user's UTC
offset. The concept is the user's home concept with probability 0.4, else drawn from the global
concept distribution (11 categories at the real SMPD shares, Zipf-like concepts within each).
Tags: ``min(60, Poisson(rate_u))`` draws, 25% from the concept's 8 tied tags, the rest Zipf-like
from a 50,000-word vocabulary, duplicates dropped. 12% of posts carry coordinates near the user's
home. Pid follows post time (with a 2-day jitter); the Flickr photo id follows post time exactly.

Groups. A post joins groups with probability ``sigmoid(-1.7 + 1.3 g_u)`` (about 25%); then
``min(800, round(LogNormal(log 5 + 0.3 g_u, 1.45)))`` Zipf-like draws over the groups (about 30,000 at
680,000 posts), duplicates dropped. A group's member count falls with its popularity rank
(``300,000 rank^-0.85``, lognormal scatter); its pool count is 20x that (lognormal).

Label. On the log2-views scale
``z = intercept + category + subcategory + concept effects + user_sd * lat_u
+ tags_coef * (log1p(n_tags) - tags_center) + title_coef * (min(title_words, 8) - 3)
+ camera_title + video + geo (if geotagged) + hour_effect[UTC hour] + weekday_effect[UTC weekday]
+ trend_per_year * years since 2015-01-01 + groups_coef * log1p(n_groups)
+ member_coef * (log mean member_count - member_ref) (if in groups) + N(0, noise_std)``,
then ``views = max(2, round(2 ** min(z, z_max)))`` and ``label = round(log2(views), 2)``, so every
label below 4 is log2 of a small integer. All coefficients are in :class:`LabelModel` and in
ground_truth.json. The oracle predicts ``label(z - noise)``, the label of the noiseless score: the
conditional median of the label, hence the best possible MAE.

Scrape. Group rows, one per (photo, group), are written for photos scraped ``ok``; 3% of photos
were never scraped, 1% are ``not_found``, 0.5% ``failed`` (their true groups still shape the label).
0.25% of group rows are repeated exactly and 0.25% are re-scraped with drifted counts, appended at
the end of their chunk file. ``user_meta.csv`` covers 90% of users.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

GENERATOR_VERSION = "1.0"
WORLD_SEED = 20150101  # names of categories, concepts and tags: fixed across data seeds

DAY = 86_400
TRAIN_START = 1_420_070_400  # 2015-01-01 00:00 UTC
TRAIN_END = 1_462_060_800  # 2016-05-01: the training release covers 16 months
TEST_END = 1_467_331_200  # 2016-07-01: the test release covers the two months after
SCRAPE_START = np.datetime64("2023-09-04T08:00:00", "s")

USERS_PER_POST = 70_000 / 486_000  # SMPD: ~70K users for ~486K posts
TEST_EXISTING_USER_SHARE = 0.8
VOCABULARY_SIZE = 50_000
CONCEPT_TAGS = 8  # tags tied to each concept: its own name plus 7 vocabulary words
GROUPS_AT_FULL_SCALE = 30_000
FULL_SCALE = 680_000
MAX_TAGS = 60
MAX_GROUPS = 800
SCRAPE_CHUNK = 50_000  # posts per group_meta file, as the research scraped them
WRITE_CHUNK = 50_000  # rows per write, to bound memory

# Posts per category in the real training set (seed-notebooks.md §1.5); "Whether" is the real spelling.
CATEGORY_COUNTS = {
    "Travel&Active&Sports": 55_069,
    "Holiday&Celebrations": 47_822,
    "Fashion": 39_090,
    "Entertainment": 23_319,
    "Social&People": 18_897,
    "Whether&Season": 16_684,
    "Animal": 16_414,
    "Food": 14_032,
    "Urban": 12_366,
    "Electronics": 4_059,
    "Family": 3_543,
}
N_CONCEPTS = 668

# 77 subcategories, each with two real concept names; the other concepts get synthetic names.
SUBCATEGORIES = {
    "Travel&Active&Sports": {
        "Travel": ("landmark", "backpack"),
        "Beach": ("seashore", "sand"),
        "Mountain": ("summit", "alps"),
        "Hiking": ("trail", "trekking"),
        "Cycling": ("bicycle", "peloton"),
        "Running": ("marathon", "jogging"),
        "Soccer": ("football", "stadium"),
        "Skiing": ("snowboard", "slope"),
        "Surfing": ("surfboard", "wave"),
        "Motorsport": ("racecar", "rally"),
        "Sailing": ("sailboat", "regatta"),
        "Camping": ("tent", "campfire"),
        "Roadtrip": ("highway", "roadsign"),
    },
    "Holiday&Celebrations": {
        "Christmas": ("xmas", "ornament"),
        "Halloween": ("pumpkin", "costume"),
        "Wedding": ("bride", "bouquet"),
        "Birthday": ("cake", "balloon"),
        "Festival": ("carnival", "lantern"),
        "Fireworks": ("firework", "sparkler"),
        "Easter": ("easteregg", "bunny"),
        "Parade": ("marchingband", "float"),
    },
    "Fashion": {
        "Girls,Fashion": ("skirt", "dress"),
        "Streetstyle": ("ootd", "sneakers"),
        "Menswear": ("suit", "necktie"),
        "Accessories": ("handbag", "jewelry"),
        "Shoes": ("heels", "boots"),
        "Makeup": ("lipstick", "eyeliner"),
        "Cosplay": ("anime", "wig"),
        "Runway": ("catwalk", "model"),
    },
    "Entertainment": {
        "Music": ("rnb", "guitar"),
        "Concert": ("livemusic", "stage"),
        "Movie": ("cinema", "premiere"),
        "Theater": ("musical", "actor"),
        "Dance": ("ballet", "salsa"),
        "Games": ("videogame", "arcade"),
        "Comics": ("superhero", "comiccon"),
        "Toys": ("lego", "figurine"),
        "Circus": ("clown", "acrobat"),
    },
    "Social&People": {
        "Portrait": ("headshot", "face"),
        "Friends": ("friendship", "hug"),
        "Party": ("nightclub", "dj"),
        "Selfie": ("mirror", "smile"),
        "Crowd": ("people", "street"),
        "Protest": ("demonstration", "banner"),
        "Work": ("office", "meeting"),
    },
    "Whether&Season": {
        "Raining": ("puddle", "umbrella"),
        "Snow": ("snowman", "blizzard"),
        "Autumn": ("leaves", "foliage"),
        "Spring": ("blossom", "tulip"),
        "Summer": ("sunshine", "heatwave"),
        "Sunset": ("dusk", "goldenhour"),
        "Clouds": ("cumulus", "storm"),
    },
    "Animal": {
        "Dogs": ("puppy", "labrador"),
        "Cats": ("kitten", "tabby"),
        "Birds": ("heron", "owl"),
        "Insects": ("butterfly", "bee"),
        "Wildlife": ("deer", "fox"),
        "Horses": ("pony", "stallion"),
        "Fish": ("aquarium", "koi"),
    },
    "Food": {
        "Dessert": ("cupcake", "icecream"),
        "Drinks": ("cocktail", "beer"),
        "Restaurant": ("dinner", "chef"),
        "Fruit": ("strawberry", "apple"),
        "Baking": ("bread", "cookies"),
        "Coffee": ("latte", "espresso"),
    },
    "Urban": {
        "StreetArt": ("wallporn", "graffiti"),
        "Architecture": ("facade", "skyscraper"),
        "Night": ("neon", "streetlight"),
        "Transport": ("tram", "subway"),
        "Bridges": ("suspension", "arch"),
        "Skyline": ("cityscape", "rooftop"),
    },
    "Electronics": {
        "Gadgets": ("smartphone", "drone"),
        "Cameras": ("dslr", "lens"),
        "Computers": ("laptop", "keyboard"),
    },
    "Family": {"Kids": ("toddler", "playground"), "Baby": ("newborn", "stroller"), "Parents": ("mom", "dad")},
}

COMMON_TAGS = (
    "2015 2016 nature travel canon nikon sony bw blackandwhite sky city street portrait landscape "
    "night light water summer winter spring autumn people art photography color sunset beach "
    "architecture flower green blue red white black family friends food music party love festival "
    "snow clouds sea park tree trees iphone instagram square squareformat sun bridge river lake "
    "mountain dog cat bird animal urban building reflection macro closeup old vintage film"
).split()

GROUP_WORDS = (
    "Flickr Addicts Photography Nature Black White Street Urban Cats Dogs Macro Landscape Best "
    "Beautiful World Travel Canon Nikon Sony Portrait Sky Clouds Sunset Art Color Light Shadow "
    "Birds Flowers Night City Architecture Europe Asia America Photos Pictures Lovers Club Group "
    "Images Amazing Fantastic Creative Minimal Abstract Film Vintage Music Fashion Food Family"
).split()

# Local hour at which people post (relative weights, 0h..23h).
LOCAL_HOUR_PROFILE = np.array(
    [
        2.0,
        1.5,
        1.0,
        0.7,
        0.5,
        0.5,
        0.8,
        1.5,
        2.5,
        3.5,
        4.0,
        4.5,
        5.0,
        5.0,
        5.0,
        5.0,
        5.2,
        5.5,
        6.0,
        6.5,
        6.5,
        6.0,
        5.0,
        3.5,
    ]
)
# Users per UTC offset (relative weights); offsets not listed get weight 0.3.
OFFSET_WEIGHTS = {-8: 12, -7: 4, -6: 6, -5: 12, -4: 2, -3: 3, 0: 10, 1: 20, 2: 6, 3: 2, 5: 1, 8: 6, 9: 4, 10: 3}
N_TIMEZONE_IDS = 91
GEOACCURACY_WEIGHTS = np.array([0.5, 0.5, 2, 1, 1, 3, 1, 2, 2, 3, 8, 5, 6, 8, 12, 45])  # levels 1..16


@dataclass(frozen=True)
class LabelModel:
    """Coefficients of the label model on the log2-views scale (see the module docstring)."""

    intercept: float = 5.7
    user_sd: float = 1.5
    category_sd: float = 0.35
    subcategory_sd: float = 0.3
    concept_sd: float = 0.65
    tags_coef: float = 0.4  # per unit of log1p(tag count)
    tags_center: float = 2.2
    title_coef: float = 0.05  # per title word, up to 8 words
    camera_title: float = -0.3  # default camera titles such as "IMG_1234"
    video: float = -0.4
    geo: float = 0.4
    hour_amplitude: float = 0.25  # hour effect = amplitude * cos(2 pi (hour - peak) / 24), UTC
    hour_peak_utc: int = 15
    weekday_effect: tuple = (0.05, 0.05, 0.03, 0.0, -0.05, -0.12, 0.04)  # Monday..Sunday, UTC
    trend_per_year: float = -0.35  # older posts had longer to collect views
    groups_coef: float = 0.8  # per unit of log1p(group count)
    member_coef: float = 0.2  # per unit of log(mean member_count) of the post's groups
    member_ref: float = 9.0  # log mean member_count at which the member term is zero
    noise_std: float = 1.35
    z_max: float = 16.56  # the largest real SMPD label

    def hour_effect(self) -> np.ndarray:
        return self.hour_amplitude * np.cos(2 * np.pi * (np.arange(24) - self.hour_peak_utc) / 24)


# ------------------------------------------------------------------------------------------------
# Random streams and small helpers


def _stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator per named part, so extra draws in one part never shift another."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def _zipf_cdf(n: int, exponent: float, offset: float = 0.0) -> np.ndarray:
    """Cumulative Zipf-Mandelbrot probabilities over ranks 0..n-1."""
    weights = 1.0 / (np.arange(n) + 1.0 + offset) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _offsets(counts: np.ndarray) -> np.ndarray:
    """CSR offsets: items of row i are at offsets[i]:offsets[i+1]."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _first_per_row(row: np.ndarray, item: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (row, item) pairs, keeping first occurrences in their original order."""
    _, first = np.unique(row.astype(np.int64) * n_items + item, return_index=True)
    keep = np.sort(first)
    return row[keep], item[keep]


def _unique_ints(rng: np.random.Generator, low: int, high: int, size: int) -> np.ndarray:
    return low + rng.choice(high - low, size=size, replace=False)


def _csv_field(text: str) -> str:
    """Quote a CSV field the way the csv module does (only when it holds a comma, quote or newline)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _iso_utc(seconds: np.ndarray) -> list[str]:
    return np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s", timezone="UTC").tolist()


# ------------------------------------------------------------------------------------------------
# The world: taxonomy and vocabulary (fixed names)

_ONSETS = "b c d f g h j k l m n p r s t v w z br ch dr gr sh st tr pl kl".split()
_VOWELS = "a e i o u ai ea ou".split()
_CODAS = ["", "n", "r", "s", "l", "m", "k", "t"]
_SYLLABLES = np.array([o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS])


def synthetic_words(rng: np.random.Generator, n: int, exclude: set[str]) -> list[str]:
    """``n`` distinct pronounceable lowercase words of 2-3 syllables, none of them in ``exclude``."""
    words: list[str] = []
    seen = set(exclude)
    while len(words) < n:
        k = 2 * (n - len(words)) + 64
        parts = _SYLLABLES[rng.integers(0, len(_SYLLABLES), (k, 3))]
        third = np.where(rng.random(k) < 0.5, parts[:, 2], "")
        for word in np.char.add(np.char.add(parts[:, 0], parts[:, 1]), third).tolist():
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == n:
                    break
    return words


@dataclass(frozen=True)
class World:
    categories: list[str]
    subcategories: list[str]
    sub_category: np.ndarray  # category index of each subcategory
    concepts: list[str]
    concept_sub: np.ndarray  # subcategory index of each concept
    concept_prob: np.ndarray
    vocabulary: list[str]  # tag words, most frequent first
    concept_tags: np.ndarray  # (concepts, CONCEPT_TAGS) vocabulary ids; column 0 is the concept's name


def _concepts_per_subcategory(shares: np.ndarray, sub_category: np.ndarray) -> np.ndarray:
    """Split the 668 concepts over subcategories: at least 4 each, the rest by category share."""
    per_sub = shares[sub_category] / np.bincount(sub_category)[sub_category]
    extra = (N_CONCEPTS - 4 * len(sub_category)) * per_sub / per_sub.sum()
    counts = 4 + np.floor(extra).astype(int)
    largest_remainders = np.argsort(-(extra - np.floor(extra)), kind="stable")
    counts[largest_remainders[: N_CONCEPTS - counts.sum()]] += 1
    return counts


def build_world() -> World:
    """Category hierarchy (11/77/668), concept frequencies and the tag vocabulary; seed-independent."""
    rng = _stream(WORLD_SEED, "world")
    categories = list(CATEGORY_COUNTS)
    shares = np.array(list(CATEGORY_COUNTS.values()), float)
    shares /= shares.sum()
    subcategories, sub_category, real_concepts = [], [], []
    for c, category in enumerate(categories):
        for sub, names in SUBCATEGORIES[category].items():
            subcategories.append(sub)
            sub_category.append(c)
            real_concepts.append(names)
    sub_category = np.array(sub_category)
    counts = _concepts_per_subcategory(shares, sub_category)

    reserved = {w for names in real_concepts for w in names} | set(COMMON_TAGS)
    fillers = iter(synthetic_words(rng, int(counts.sum()) - 2 * len(counts), reserved))
    concepts, concept_sub = [], []
    for s, (names, n) in enumerate(zip(real_concepts, counts)):
        concepts += list(names) + [next(fillers) for _ in range(n - 2)]
        concept_sub += [s] * n
    concept_sub = np.array(concept_sub)

    # Zipf-like concept frequencies within each category, in a random order of its concepts.
    concept_cat = sub_category[concept_sub]
    concept_prob = np.zeros(len(concepts))
    for c in range(len(categories)):
        members = rng.permutation(np.flatnonzero(concept_cat == c))
        weights = 1.0 / np.arange(1, len(members) + 1) ** 0.9
        concept_prob[members] = shares[c] * weights / weights.sum()

    # Vocabulary ranked by frequency: common tags first, then concept names spread among synthetic words.
    tail = [c for c in concepts if c not in COMMON_TAGS]
    tail += synthetic_words(rng, VOCABULARY_SIZE - len(COMMON_TAGS) - len(tail), set(COMMON_TAGS) | set(tail))
    vocabulary = COMMON_TAGS + [tail[i] for i in rng.permutation(len(tail))]
    word_id = {w: i for i, w in enumerate(vocabulary)}
    tied = rng.integers(200, 20_000, (len(concepts), CONCEPT_TAGS - 1))
    concept_tags = np.column_stack([[word_id[c] for c in concepts], tied])
    return World(categories, subcategories, sub_category, concepts, concept_sub, concept_prob, vocabulary, concept_tags)


# ------------------------------------------------------------------------------------------------
# Users


@dataclass
class Users:
    n_train: int  # users 0..n_train-1 post in the training release; the rest are new test users
    latent: np.ndarray  # latent popularity, N(0, 1)
    activity: np.ndarray  # relative posting rate
    group_habit: np.ndarray
    tag_rate: np.ndarray  # mean tags per post (0: never tags)
    geo_rate: np.ndarray  # probability that a post is geotagged
    home_concept: np.ndarray
    timezone_id: np.ndarray
    utc_offset: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    ispro: np.ndarray
    canbuypro: np.ndarray

    @property
    def n(self) -> int:
        return len(self.latent)


def _timezones(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """91 timezone ids over UTC offsets -12..+13, popular offsets owning more ids; per-id user weights."""
    offsets = np.arange(-12, 14)
    popularity = np.array([OFFSET_WEIGHTS.get(int(o), 0.3) for o in offsets])
    ids_per_offset = 1 + rng.multinomial(N_TIMEZONE_IDS - len(offsets), popularity / popularity.sum())
    offset_of_id = np.repeat(offsets, ids_per_offset)[rng.permutation(N_TIMEZONE_IDS)]
    weight_of_id = popularity[offset_of_id + 12] / ids_per_offset[offset_of_id + 12]
    return offset_of_id, weight_of_id / weight_of_id.sum()


def draw_users(seed: int, n_train: int, n_new: int, world: World) -> Users:
    rng = _stream(seed, "users")
    n = n_train + n_new
    latent = rng.standard_normal(n)
    activity = np.exp(2.0 * (0.2 * latent + 0.98 * rng.standard_normal(n)))
    group_habit = 0.45 * latent + 0.89 * rng.standard_normal(n)
    tag_rate = np.where(rng.random(n) < 0.06, 0.0, np.exp(np.log(9.0) + 0.8 * rng.standard_normal(n)))
    geo_rate = np.where(rng.random(n) < 0.22, 0.5, 0.012)
    home_concept = rng.choice(len(world.concepts), size=n, p=world.concept_prob)
    offset_of_id, id_weight = _timezones(_stream(WORLD_SEED, "timezones"))
    timezone_id = rng.choice(N_TIMEZONE_IDS, size=n, p=id_weight)
    utc_offset = offset_of_id[timezone_id]
    home_lat = np.clip(rng.normal(35, 18, n), -55, 70)
    home_lon = (utc_offset * 15 + rng.normal(0, 5, n) + 180) % 360 - 180
    ispro = (rng.random(n) < _sigmoid(-1.0 + 0.45 * latent)).astype(int)
    canbuypro = ((ispro == 0) & (rng.random(n) < 0.4)).astype(int)
    return Users(
        n_train,
        latent,
        activity,
        group_habit,
        tag_rate,
        geo_rate,
        home_concept,
        timezone_id + 1,
        utc_offset,
        home_lat,
        home_lon,
        ispro,
        canbuypro,
    )


# ------------------------------------------------------------------------------------------------
# Posts: owners, time, ids, categories, text, geo, groups


@dataclass
class Groups:
    ids: list[str]
    titles: list[str]
    member_count: np.ndarray
    pool_count: np.ndarray


@dataclass
class Posts:
    n_train: int  # posts 0..n_train-1 form the training release, the rest the test release
    owner: np.ndarray
    postdate: np.ndarray
    pid: np.ndarray
    flickr_id: np.ndarray
    concept: np.ndarray
    is_video: np.ndarray
    tag_offsets: np.ndarray  # CSR over tag_ids
    tag_ids: np.ndarray
    titles: list[str]
    title_words: np.ndarray  # words of a user-written title (0 for empty or camera titles)
    camera_title: np.ndarray
    has_geo: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    geoaccuracy: np.ndarray
    blank_longitude: np.ndarray  # rows written with "Longitude": "" (a real-data quirk)
    group_offsets: np.ndarray  # CSR over group_ids
    group_ids: np.ndarray
    status: np.ndarray  # scrape status: 0 ok, 1 not_found, 2 failed, 3 never scraped

    @property
    def n(self) -> int:
        return len(self.owner)

    @property
    def n_tags(self) -> np.ndarray:
        return np.diff(self.tag_offsets)

    @property
    def n_groups(self) -> np.ndarray:
        return np.diff(self.group_offsets)


def _posts_per_user(rng: np.random.Generator, n_posts: int, weights: np.ndarray) -> np.ndarray:
    """At least one post per user, the rest in proportion to ``weights`` (heavy-tailed)."""
    if len(weights) == 0:  # no new users in a small test release
        return np.zeros(0, np.int64)
    return 1 + rng.multinomial(n_posts - len(weights), weights / weights.sum())


def assign_owners(seed: int, users: Users, n_train: int, n_test: int) -> np.ndarray:
    """Owner of every post: training posts from training users, test posts mostly from them too.

    Each release is in a shuffled order, as the real releases are not sorted by time or user.
    """
    rng = _stream(seed, "owners")
    train_users = np.arange(users.n_train)
    train = np.repeat(train_users, _posts_per_user(rng, n_train, users.activity[: users.n_train]))
    n_existing = round(n_test * TEST_EXISTING_USER_SHARE) if users.n > users.n_train else n_test
    weights = users.activity[: users.n_train]
    existing = rng.choice(train_users, size=n_existing, p=weights / weights.sum())
    new_users = np.arange(users.n_train, users.n)
    new = np.repeat(new_users, _posts_per_user(rng, n_test - n_existing, users.activity[users.n_train :]))
    test = np.concatenate([existing, new])
    return np.concatenate([rng.permutation(train), rng.permutation(test)])


def draw_postdates(rng: np.random.Generator, users: Users, owner: np.ndarray, n_train: int) -> np.ndarray:
    """Unix seconds: a uniform day in the release's window, an hour from the owner's local-time profile."""
    n = len(owner)
    is_test = np.arange(n) >= n_train
    first_day = np.where(is_test, TRAIN_END, TRAIN_START) // DAY
    n_days = np.where(is_test, TEST_END - TRAIN_END, TRAIN_END - TRAIN_START) // DAY
    day = first_day + (rng.random(n) * n_days).astype(np.int64)
    local_hour = rng.choice(24, size=n, p=LOCAL_HOUR_PROFILE / LOCAL_HOUR_PROFILE.sum())
    utc_hour = (local_hour - users.utc_offset[owner]) % 24
    return day * DAY + utc_hour * 3600 + rng.integers(0, 3600, n)


def assign_ids(rng: np.random.Generator, postdate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pid (anonymised, roughly chronological) and Flickr photo id (chronological, 9-11 digits).

    Most photo ids are 11-digit ids of 2015-16 uploads; 3% are older 9-10 digit ids.
    """
    n = len(postdate)
    pid = np.empty(n, np.int64)
    by_jittered_time = np.argsort(postdate + rng.normal(0, 2 * DAY, n), kind="stable")
    pid[by_jittered_time] = rng.integers(1, 1000) + np.cumsum(1 + rng.poisson(0.3, n))
    flickr_id = np.empty(n, np.int64)
    by_time = np.argsort(postdate, kind="stable")
    old = rng.random(n) < 0.03
    old_sorted, new_sorted = by_time[old[by_time]], by_time[~old[by_time]]
    flickr_id[new_sorted] = 15_900_000_000 + np.cumsum(rng.integers(1, 30_800, len(new_sorted)))
    flickr_id[old_sorted] = 100_000_000 + np.cumsum(rng.integers(1, 200_000, len(old_sorted)))
    return pid, flickr_id


def draw_concepts(rng: np.random.Generator, users: Users, owner: np.ndarray, world: World) -> np.ndarray:
    """The owner's home concept 40% of the time, else a draw from the global concept distribution."""
    overall = rng.choice(len(world.concepts), size=len(owner), p=world.concept_prob)
    return np.where(rng.random(len(owner)) < 0.4, users.home_concept[owner], overall)


def draw_tags(
    rng: np.random.Generator, users: Users, owner: np.ndarray, concept: np.ndarray, world: World
) -> tuple[np.ndarray, np.ndarray]:
    """Tags per post as CSR (offsets, vocabulary ids): Zipf-like words plus the concept's tied tags."""
    n_raw = np.minimum(MAX_TAGS, rng.poisson(users.tag_rate[owner]))
    post = np.repeat(np.arange(len(owner)), n_raw)
    tags = _draw(rng, _zipf_cdf(VOCABULARY_SIZE, 1.0, offset=10), len(post))
    tied = rng.random(len(post)) < 0.25
    slot = rng.choice(CONCEPT_TAGS, size=int(tied.sum()), p=[0.3] + [0.1] * (CONCEPT_TAGS - 1))
    tags[tied] = world.concept_tags[concept[post[tied]], slot]
    post, tags = _first_per_row(post, tags, VOCABULARY_SIZE)
    return _offsets(np.bincount(post, minlength=len(owner))), tags


def _camera_title(style: int, number: int, stamp: str) -> str:
    """A camera's default file name, as uploaded untitled: IMG_0042, DSC00042 or 2016-03-06 22.19.08."""
    if style == 0:
        return f"IMG_{number:04d}"
    if style == 1:
        return f"DSC{number:05d}"
    return stamp.replace("T", " ").replace(":", ".")


def draw_titles(
    rng: np.random.Generator, postdate: np.ndarray, concept: np.ndarray, world: World
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Titles: 3% empty, 10% camera defaults ("IMG_1234", "2016-03-06 22.19.08"), else 1-12 words."""
    n = len(postdate)
    kind = rng.choice(3, size=n, p=[0.03, 0.10, 0.87])  # 0 empty, 1 camera default, 2 written
    n_words = np.where(kind == 2, np.minimum(12, 1 + rng.poisson(2.5, n)), 0)
    word_ids = _draw(rng, _zipf_cdf(VOCABULARY_SIZE, 1.0, offset=10), int(n_words.sum()))
    words = np.array(world.vocabulary, dtype=object)[word_ids]
    starts = _offsets(n_words)
    lead_concept = rng.random(n) < 0.2
    capitalise = rng.random(n) < 0.5
    camera_number = rng.integers(1, 10_000, n)
    camera_style = rng.integers(0, 3, n)
    stamps = np.datetime_as_string(postdate.astype("datetime64[s]"), unit="s")
    titles = []
    for i in range(n):
        if kind[i] == 0:
            titles.append("")
        elif kind[i] == 1:
            titles.append(_camera_title(camera_style[i], camera_number[i], stamps[i]))
        else:
            ws = words[starts[i] : starts[i + 1]].tolist()
            if lead_concept[i]:
                ws[0] = world.concepts[concept[i]]
            titles.append(" ".join(w.capitalize() for w in ws) if capitalise[i] else " ".join(ws))
    return titles, n_words, kind == 1


def draw_geo(rng: np.random.Generator, users: Users, owner: np.ndarray) -> tuple[np.ndarray, ...]:
    """Coordinates near the owner's home (10% of them while travelling); 88% of posts have none."""
    n = len(owner)
    has_geo = rng.random(n) < users.geo_rate[owner]
    spread = np.where(rng.random(n) < 0.1, 20.0, 0.5)
    lat = np.clip(users.home_lat[owner] + rng.normal(0, 1, n) * spread, -89.9, 89.9)
    lon = (users.home_lon[owner] + rng.normal(0, 1, n) * spread + 180) % 360 - 180
    accuracy = 1 + rng.choice(16, size=n, p=GEOACCURACY_WEIGHTS / GEOACCURACY_WEIGHTS.sum())
    blank_longitude = ~has_geo & (rng.random(n) < 0.01)
    return has_geo, lat, lon, accuracy, blank_longitude


def make_groups(seed: int, n_posts_train: int) -> Groups:
    """Groups ranked by popularity: member counts from ~300K (rank 1) down to tens."""
    rng = _stream(seed, "groups")
    n = max(100, round(GROUPS_AT_FULL_SCALE * n_posts_train / FULL_SCALE))
    rank = np.arange(1, n + 1)
    member = np.maximum(2, np.rint(np.exp(np.log(300_000) - 0.85 * np.log(rank) + rng.normal(0, 0.7, n))))
    pool = np.maximum(member, np.rint(member * np.exp(rng.normal(np.log(20), 0.9, n))))
    numbers = _unique_ints(rng, 10_000_000, 99_999_999, n)
    suffix = rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], size=n)
    ids = [f"{a}@N{b:02d}" for a, b in zip(numbers.tolist(), suffix.tolist())]
    ids[0], member[0], pool[0] = "76535076@N00", 138_259, 9_041_713  # "Flickr Addicts", as scraped

    vocabulary = GROUP_WORDS + [w.capitalize() for w in synthetic_words(rng, 2000, set())]
    n_words = rng.integers(1, 5, n)
    picks = rng.integers(0, len(vocabulary), (n, 4))
    joiner = np.where(rng.random(n) < 0.06, ", ", " ")  # some titles need CSV quoting
    titles = [joiner[i].join(vocabulary[j] for j in picks[i, : n_words[i]]) for i in range(n)]
    titles[0] = "Flickr Addicts"
    return Groups(ids, titles, member.astype(np.int64), pool.astype(np.int64))


def draw_memberships(
    rng: np.random.Generator, users: Users, owner: np.ndarray, n_groups_total: int
) -> tuple[np.ndarray, np.ndarray]:
    """Groups per post as CSR (offsets, group index): about 25% of posts, median 7, mean ~20."""
    n = len(owner)
    habit = users.group_habit[owner]
    in_groups = rng.random(n) < _sigmoid(-1.7 + 1.3 * habit)
    size = np.exp(rng.normal(np.log(5.0) + 0.3 * habit, 1.45))
    n_raw = np.where(in_groups, np.clip(np.rint(size), 1, MAX_GROUPS), 0).astype(np.int64)
    post = np.repeat(np.arange(n), n_raw)
    group = _draw(rng, _zipf_cdf(n_groups_total, 0.65), len(post))
    post, group = _first_per_row(post, group, n_groups_total)
    return _offsets(np.bincount(post, minlength=n)), group


def draw_posts(seed: int, users: Users, world: World, groups: Groups, n_train: int, n_test: int) -> Posts:
    owner = assign_owners(seed, users, n_train, n_test)
    postdate = draw_postdates(_stream(seed, "time"), users, owner, n_train)
    pid, flickr_id = assign_ids(_stream(seed, "ids"), postdate)
    rng = _stream(seed, "categories")
    concept = draw_concepts(rng, users, owner, world)
    is_video = rng.random(len(owner)) < 0.01
    tag_offsets, tag_ids = draw_tags(_stream(seed, "tags"), users, owner, concept, world)
    titles, title_words, camera_title = draw_titles(_stream(seed, "titles"), postdate, concept, world)
    has_geo, lat, lon, accuracy, blank_longitude = draw_geo(_stream(seed, "geo"), users, owner)
    group_offsets, group_ids = draw_memberships(_stream(seed, "memberships"), users, owner, len(groups.ids))
    status = _stream(seed, "scrape").choice(4, size=len(owner), p=[0.955, 0.01, 0.005, 0.03])
    return Posts(
        n_train,
        owner,
        postdate,
        pid,
        flickr_id,
        concept,
        is_video,
        tag_offsets,
        tag_ids,
        titles,
        title_words,
        camera_title,
        has_geo,
        lat,
        lon,
        accuracy,
        blank_longitude,
        group_offsets,
        group_ids,
        status,
    )


# ------------------------------------------------------------------------------------------------
# Label


@dataclass
class Effects:
    category: np.ndarray
    subcategory: np.ndarray
    concept: np.ndarray


def draw_effects(seed: int, world: World, model: LabelModel) -> Effects:
    rng = _stream(seed, "effects")
    return Effects(
        rng.normal(0, model.category_sd, len(world.categories)),
        rng.normal(0, model.subcategory_sd, len(world.subcategories)),
        rng.normal(0, model.concept_sd, len(world.concepts)),
    )


def mean_member_count(posts: Posts, groups: Groups) -> np.ndarray:
    """Mean member_count over each post's groups (0 when it has none)."""
    row_post = np.repeat(np.arange(posts.n), posts.n_groups)
    total = np.bincount(row_post, weights=groups.member_count[posts.group_ids], minlength=posts.n)
    return total / np.maximum(posts.n_groups, 1)


def score_components(
    posts: Posts, users: Users, groups: Groups, world: World, effects: Effects, model: LabelModel
) -> dict[str, np.ndarray]:
    """Each additive term of the noiseless score ``z`` (log2 views) per post."""
    sub = world.concept_sub[posts.concept]
    hour = (posts.postdate // 3600) % 24
    weekday = (posts.postdate // DAY + 3) % 7  # 1970-01-01 was a Thursday
    in_groups = posts.n_groups > 0
    log_member = np.log(np.maximum(mean_member_count(posts, groups), 1.0))
    return {
        "category": (
            effects.category[world.sub_category[sub]] + effects.subcategory[sub] + effects.concept[posts.concept]
        ),
        "user": model.user_sd * users.latent[posts.owner],
        "text": (
            model.tags_coef * (np.log1p(posts.n_tags) - model.tags_center)
            + model.title_coef * (np.minimum(posts.title_words, 8) - 3)
            + model.camera_title * posts.camera_title
            + model.video * posts.is_video
        ),
        "time": (
            model.hour_effect()[hour]
            + np.array(model.weekday_effect)[weekday]
            + model.trend_per_year * (posts.postdate - TRAIN_START) / (365.25 * DAY)
        ),
        "geo": model.geo * posts.has_geo,
        "groups": (
            model.groups_coef * np.log1p(posts.n_groups)
            + model.member_coef * in_groups * (log_member - model.member_ref)
        ),
    }


def label_of(z: np.ndarray, model: LabelModel) -> np.ndarray:
    """log2-views score -> SMPD label: log2 of a whole view count (at least 2), two decimals."""
    views = np.maximum(2.0, np.rint(np.exp2(np.minimum(z, model.z_max))))
    return np.round(np.log2(views), 2)


# ------------------------------------------------------------------------------------------------
# Ground truth


def _rounded(x: float) -> float | None:
    """4 decimals; None (JSON null) for a correlation undefined on a constant column."""
    return round(float(x), 4) if np.isfinite(x) else None


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    return _rounded(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    try:
        from scipy.stats import rankdata
    except ImportError:
        import pandas as pd

        return _pearson(pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy())
    return _pearson(rankdata(a), rankdata(b))


def _metrics(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    return {
        "mae": round(float(np.mean(np.abs(pred - label))), 4),
        "rmse": round(float(np.sqrt(np.mean((pred - label) ** 2))), 4),
        "src": _spearman(pred, label),
    }


def _stats(label: np.ndarray) -> dict[str, float]:
    return {
        k: round(float(f(label)), 4)
        for k, f in [("mean", np.mean), ("std", np.std), ("min", np.min), ("median", np.median), ("max", np.max)]
    }


def ground_truth(
    posts: Posts,
    users: Users,
    groups: Groups,
    world: World,
    text: UserText,
    effects: Effects,
    model: LabelModel,
    components: dict[str, np.ndarray],
    label: np.ndarray,
    oracle: np.ndarray,
    settings: dict,
    files: dict,
) -> dict:
    """Settings, coefficients and effects, oracle and baseline metrics, label stats and counts."""
    train, test = slice(0, posts.n_train), slice(posts.n_train, posts.n)
    train_median = float(np.median(label[train]))
    releases = {"train": train, "test": test} if posts.n > posts.n_train else {"train": train}
    features = {
        "groups": posts.n_groups,
        "log1p_groups": np.log1p(posts.n_groups),
        "group_mean_member_count": mean_member_count(posts, groups),
        "user_effect_latent": components["user"],
        "photo_count": text.photo_count[posts.owner],
        "ispro": users.ispro[posts.owner],
        "tag_count": posts.n_tags,
        "title_words": posts.title_words,
        "has_geo": posts.has_geo,
    }
    return {
        "generator_version": GENERATOR_VERSION,
        **settings,
        "label_model": asdict(model),
        "noise_std": model.noise_std,
        "hour_effect_utc": [round(float(x), 4) for x in model.hour_effect()],
        "category_effects": dict(zip(world.categories, np.round(effects.category, 4).tolist())),
        "subcategory_effects": dict(zip(world.subcategories, np.round(effects.subcategory, 4).tolist())),
        "concept_effects": dict(zip(world.concepts, np.round(effects.concept, 4).tolist())),
        "oracle": {name: _metrics(oracle[rows], label[rows]) for name, rows in releases.items()},
        "median_baseline": {
            name: {"median": train_median, "mae": round(float(np.mean(np.abs(label[rows] - train_median))), 4)}
            for name, rows in releases.items()
        },
        "label_stats": {name: _stats(label[rows]) for name, rows in releases.items()},
        "component_std_train": {k: round(float(np.std(v[train])), 4) for k, v in components.items()},
        "pearson_with_label_train": {k: _pearson(v[train], label[train]) for k, v in features.items()},
        "counts": {
            "train_posts": posts.n_train,
            "test_posts": posts.n - posts.n_train,
            "train_users": users.n_train,
            "test_users": int(len(np.unique(posts.owner[test]))),
            "new_test_users": users.n - users.n_train,
            "users": users.n,
            "groups": len(groups.ids),
            "groups_used": int(len(np.unique(posts.group_ids))),
            "post_group_memberships": int(len(posts.group_ids)),
            "posts_with_groups_share_train": round(float(np.mean(posts.n_groups[train] > 0)), 4),
            "files": files,
        },
    }


# ------------------------------------------------------------------------------------------------
# Writers


def _chunks(start: int, stop: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(start, stop, size):
        yield a, min(a + size, stop)


def write_json_list(path: Path, start: int, stop: int, rows: Callable[[int, int], list[str]]) -> int:
    """One JSON list, one record per line; ``rows(a, b)`` renders records a..b-1 as JSON text."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        for a, b in _chunks(start, stop, WRITE_CHUNK):
            f.write((",\n" if a > start else "") + ",\n".join(rows(a, b)))
        f.write("\n]\n")
    return stop - start


def write_lines(path: Path, start: int, stop: int, rows: Callable[[int, int], list[str]]) -> int:
    with open(path, "w", encoding="utf-8") as f:
        for a, b in _chunks(start, stop, WRITE_CHUNK):
            f.write("".join(line + "\n" for line in rows(a, b)))
    return stop - start


@dataclass
class UserText:
    """Per-user strings reused on every post of the user."""

    uid: list[str]
    nsid: list[str]
    pathalias: list[str]
    profile: list[str]  # user_data record after "Pid": every per-user key and value, with the closing brace
    photo_count: np.ndarray


def _dates_as_digits_or_text(seconds: np.ndarray, as_digits: np.ndarray) -> list[str]:
    """Dates as YYYYMMDDHH digits ("2013040217") or as text ("2013-04-02 17:52:16"), per user."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist()
    return [t[0:4] + t[5:7] + t[8:10] + t[11:13] if d else t.replace("T", " ") for t, d in zip(text, as_digits)]


def _vector_texts(vectors: np.ndarray, state: np.ndarray) -> list[str]:
    """Comma-separated 7-decimal vectors; state 0 -> all zeros written as "0", 1 -> values, 2 -> ""."""
    zeros = ",".join(["0"] * vectors.shape[1])
    fmt = ",".join(["%.7f"] * vectors.shape[1])
    return [zeros if s == 0 else "" if s == 2 else fmt % tuple(v) for s, v in zip(state.tolist(), vectors.tolist())]


def _json_value(value: object, as_number: bool) -> str:
    """A count or flag as the real user files write it: a string ("6828") or a float (6828.0)."""
    return f"{value}.0" if as_number else f'"{value}"'


def _unique_aliases(aliases: list[str]) -> list[str]:
    """Path aliases are unique on Flickr: a repeat gets a counter suffix."""
    seen: dict[str, int] = {}
    out = []
    for alias in aliases:
        if alias != "None" and alias in seen:
            seen[alias] += 1
            out.append(f"{alias}_{seen[alias]}")
        else:
            seen[alias] = 0
            out.append(alias)
    return out


def _description_vectors(rng: np.random.Generator, users: Users, dims: int) -> tuple[list[str], list[str]]:
    """user_description (zero for 45% of users) weakly carries the latent popularity along a fixed
    direction; location_description (empty for 50%) carries the home coordinates in its first dims."""
    n = users.n
    direction = _stream(WORLD_SEED, "description").standard_normal(dims)
    direction /= np.linalg.norm(direction)
    user_vec = 0.05 * rng.standard_normal((n, dims)) + 0.04 * users.latent[:, None] * direction
    place = np.column_stack([users.home_lat / 90, users.home_lon / 180])[:, :dims]
    location_vec = 0.05 * rng.standard_normal((n, dims))
    location_vec[:, : place.shape[1]] += 0.1 * place
    user_state = np.where(rng.random(n) < 0.45, 0, 1)
    location_state = np.where(rng.random(n) < 0.5, 2, 1)
    return _vector_texts(user_vec, user_state), _vector_texts(location_vec, location_state)


def user_texts(seed: int, users: Users, posts: Posts, dims: int) -> UserText:
    """Uid, owner NSID, Pathalias and the user_data fields, with the real files' encoding mixes."""
    rng = _stream(seed, "user_text")
    n = users.n
    uid_code = _unique_ints(rng, 0, 99_999 * 100, n)
    uid = [f"{c // 100 + 1}@N{c % 100:02d}" for c in uid_code.tolist()]
    nsid_number = _unique_ints(rng, 10_000_000, 99_999_999, n)  # 8 digits: never equal to a Uid
    nsid_suffix = rng.choice([0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], size=n)
    nsid = [f"{a}@N{b:02d}" for a, b in zip(nsid_number.tolist(), nsid_suffix.tolist())]
    alias_words = synthetic_words(rng, 3000, set())
    picks = rng.integers(0, len(alias_words), (n, 2)).tolist()
    alias_number = rng.integers(1, 100, n).tolist()
    has_alias = (rng.random(n) >= 0.3).tolist()
    pathalias = _unique_aliases(
        [
            f"{alias_words[a]}_{alias_words[b]}_{k}" if h else "None"
            for (a, b), k, h in zip(picks, alias_number, has_alias)
        ]
    )

    posts_of_user = np.bincount(posts.owner, minlength=n)
    first_post = np.full(n, TEST_END, np.int64)
    np.minimum.at(first_post, posts.owner, posts.postdate)
    drawn_count = np.rint(np.exp(np.log(900) + 0.5 * users.latent + 1.4 * rng.standard_normal(n)))
    photo_count = np.maximum(posts_of_user, drawn_count)
    flickr_launch = 1_076_371_200  # 2004-02-10
    firstdate = flickr_launch + np.rint((first_post - flickr_launch) * rng.beta(2.0, 1.5, n)).astype(np.int64)
    earliest_taken = 788_918_400  # 1995-01-01
    taken = np.maximum(earliest_taken, firstdate - np.rint(np.exp(rng.normal(np.log(200 * DAY), 1.0, n))))
    taken_text = _dates_as_digits_or_text(taken, rng.random(n) < 0.8)
    bogus_taken = rng.random(n) < 0.02  # camera clocks never set: the real data's 1904010100
    null_firstdate = rng.random(n) < 0.01
    numeric = rng.random(n) < 0.1  # users whose counts and flags are JSON numbers, e.g. 1813.0
    user_desc, location_desc = _description_vectors(rng, users, dims)

    profile = []
    for u in range(n):
        first = "null" if null_firstdate[u] else f'"{int(firstdate[u])}"'
        taken_u = "1904010100" if bogus_taken[u] else taken_text[u]
        profile.append(
            f'"photo_firstdate": {first}, "photo_count": {_json_value(int(photo_count[u]), numeric[u])}, '
            f'"ispro": {_json_value(users.ispro[u], numeric[u])}, '
            f'"canbuypro": {_json_value(users.canbuypro[u], numeric[u])}, '
            f'"timezone_offset": "{users.utc_offset[u]}", "photo_firstdatetaken": "{taken_u}", '
            f'"timezone_id": "{users.timezone_id[u]}", "user_description": "{user_desc[u]}", '
            f'"location_description": "{location_desc[u]}"}}'
        )
    return UserText(uid, nsid, pathalias, profile, photo_count)


def write_release(
    folder: Path,
    prefix: str,
    start: int,
    stop: int,
    posts: Posts,
    world: World,
    text: UserText,
    label: np.ndarray | None,
) -> dict[str, int]:
    """The five JSON files, the image URL file and (training only) the label file; rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    sub = world.concept_sub
    concept_json = [
        f'"Category": "{world.categories[world.sub_category[sub[k]]]}", '
        f'"Subcategory": "{world.subcategories[sub[k]]}", "Concept": "{world.concepts[k]}"}}'
        for k in range(len(world.concepts))
    ]
    vocabulary = np.array(world.vocabulary, dtype=object)

    def keys(a: int, b: int) -> list[tuple[str, int]]:
        return [(text.uid[o], p) for o, p in zip(posts.owner[a:b].tolist(), posts.pid[a:b].tolist())]

    def category(a, b):
        return [
            f'{{"Uid": "{u}", "Pid": "{p}", {concept_json[k]}'
            for (u, p), k in zip(keys(a, b), posts.concept[a:b].tolist())
        ]

    def text_rows(a, b):
        offsets = posts.tag_offsets[a : b + 1] - posts.tag_offsets[a]
        words = vocabulary[posts.tag_ids[posts.tag_offsets[a] : posts.tag_offsets[b]]].tolist()
        return [
            f'{{"Uid": "{u}", "Pid": "{p}", "Title": "{posts.titles[a + i]}", '
            f'"Mediatype": "{"video" if posts.is_video[a + i] else "photo"}", '
            f'"Alltags": "{" ".join(words[offsets[i] : offsets[i + 1]])}"}}'
            for i, (u, p) in enumerate(keys(a, b))
        ]

    def temporal(a, b):
        rows = []
        for i, (u, p) in enumerate(keys(a, b), start=a):
            if posts.has_geo[i]:
                geo = (
                    f'"Latitude": "{posts.lat[i]:.6f}", "Longitude": "{posts.lon[i]:.6f}", '
                    f'"Geoaccuracy": "{posts.geoaccuracy[i]}"'
                )
            else:
                longitude = "" if posts.blank_longitude[i] else "0"
                geo = f'"Latitude": "0", "Longitude": "{longitude}", "Geoaccuracy": "0"'
            rows.append(f'{{"Uid": "{u}", "Pid": "{p}", "Postdate": "{posts.postdate[i]}", {geo}}}')
        return rows

    def user(a, b):
        return [
            f'{{"Uid": "{text.uid[o]}", "Pid": {p}, {text.profile[o]}'
            for o, p in zip(posts.owner[a:b].tolist(), posts.pid[a:b].tolist())
        ]

    def additional(a, b):
        return [
            f'{{"Uid": "{text.uid[o]}", "Pid": "{p}", "Pathalias": "{text.pathalias[o]}", '
            f'"Ispublic": "1", "Mediastatus": "ready"}}'
            for o, p in zip(posts.owner[a:b].tolist(), posts.pid[a:b].tolist())
        ]

    def urls(a, b):
        return [
            f"https://www.flickr.com/photos/{text.nsid[o]}/{f}"
            for o, f in zip(posts.owner[a:b].tolist(), posts.flickr_id[a:b].tolist())
        ]

    rows = {}
    for name, render in [
        ("category", category),
        ("text", text_rows),
        ("temporalspatial_information", temporal),
        ("user_data", user),
        ("additional_information", additional),
    ]:
        rows[f"{prefix}_{name}.json"] = write_json_list(folder / f"{prefix}_{name}.json", start, stop, render)
    rows[f"{prefix}_img_filepath.txt"] = write_lines(folder / f"{prefix}_img_filepath.txt", start, stop, urls)
    if label is not None:
        rows[f"{prefix}_label.txt"] = write_lines(
            folder / f"{prefix}_label.txt", start, stop, lambda a, b: [f"{x:.2f}" for x in label[a:b].tolist()]
        )
    return rows


def _rescrapes(rng: np.random.Generator, posts: Posts, groups: Groups, group_row: list[str]) -> dict[int, str]:
    """Membership rows scraped a second time (an interrupted range re-run): 0.25% repeat exactly,
    0.25% carry the drifted live counts of the later scrape. Row index -> CSV text after imgid."""
    n = len(posts.group_ids)
    kind = rng.choice(3, size=n, p=[0.995, 0.0025, 0.0025])  # 0 once, 1 exact repeat, 2 drifted
    member_drift = rng.choice([-2, -1, 1, 2], size=n)
    pool_drift = rng.integers(0, 40, n)
    rows = {}
    for r in np.flatnonzero(kind).tolist():
        g = posts.group_ids[r]
        rows[r] = (
            group_row[g]
            if kind[r] == 1
            else (
                f"{groups.ids[g]},{_csv_field(groups.titles[g])},"
                f"{groups.member_count[g] + member_drift[r]},{groups.pool_count[g] + pool_drift[r]}"
            )
        )
    return rows


def _group_meta_lines(
    a: int, b: int, posts: Posts, group_row: list[str], rescrapes: dict[int, str], rescraped: np.ndarray
) -> list[str]:
    """Group rows of posts a..b-1 whose photo was scraped ok, then the range's re-scraped rows."""
    lo = posts.group_offsets[a]
    row_post = np.repeat(np.arange(a, b), posts.n_groups[a:b])
    kept = np.flatnonzero(posts.status[row_post] == 0) + lo
    photo = posts.flickr_id[row_post[kept - lo]].tolist()
    lines = [f"{p},{group_row[g]}" for p, g in zip(photo, posts.group_ids[kept].tolist())]
    again = rescraped[kept]
    lines += [
        f"{p},{rescrapes[r]}"
        for p, r in zip(posts.flickr_id[row_post[kept[again] - lo]].tolist(), kept[again].tolist())
    ]
    return lines


def _write_user_meta(path: Path, rng: np.random.Generator, users: Users, text: UserText, who: np.ndarray) -> int:
    """90% of the users ``who``: contacts grow with latent popularity, public groups with the
    group habit."""
    listed = who[rng.random(len(who)) < 0.9]
    noise = rng.standard_normal((2, len(listed)))
    contacts = np.rint(np.exp(np.log(80) + 0.6 * users.latent[listed] + 1.2 * noise[0]))
    public_groups = np.maximum(0, np.rint(np.exp(np.log(8) + 0.8 * users.group_habit[listed] + noise[1]) - 1))
    when = SCRAPE_START + np.timedelta64(40 * DAY, "s") + (np.arange(len(listed)) // 2).astype("timedelta64[s]")
    with open(path, "w", encoding="utf-8") as f:
        f.write("Uid,contacts_count,public_groups_count,scraped_at\n")
        f.writelines(
            f"{text.uid[u]},{int(c)},{int(g)},{t}\n"
            for u, c, g, t in zip(listed.tolist(), contacts.tolist(), public_groups.tolist(), _iso_utc(when))
        )
    return len(listed)


def write_scraped(
    folders: dict[str, Path], seed: int, posts: Posts, users: Users, groups: Groups, text: UserText
) -> dict[str, dict[str, int]]:
    """Per release (``folders['train']``, ``folders['test']``): group_meta_<from>_to_<to>.csv per
    50,000 posts, photo_status.csv and user_meta.csv for that release's photos and users, so each
    release's scraped folder names only its own posts. Returns rows per file, per release."""
    rng = _stream(seed, "scraped")
    status_names = ["ok", "not_found", "failed"]
    group_row = [
        f"{g},{_csv_field(t)},{m},{c}"
        for g, t, m, c in zip(groups.ids, groups.titles, groups.member_count.tolist(), groups.pool_count.tolist())
    ]
    rescrapes = _rescrapes(rng, posts, groups, group_row)
    rescraped = np.zeros(len(posts.group_ids), bool)
    rescraped[list(rescrapes)] = True
    flickr_id = posts.flickr_id.tolist()

    rows: dict[str, dict[str, int]] = {}
    number = 0  # chunks of both releases are scraped one after another
    for release, (start, stop) in {"train": (0, posts.n_train), "test": (posts.n_train, posts.n)}.items():
        folder = folders[release]
        folder.mkdir(parents=True, exist_ok=True)
        counts = rows[release] = {"photo_status.csv": 0}
        with open(folder / "photo_status.csv", "w", encoding="utf-8") as status_file:
            status_file.write("imgid,status,scraped_at\n")
            for a, b in _chunks(start, stop, SCRAPE_CHUNK):
                scraped = np.flatnonzero(posts.status[a:b] < 3) + a
                # about 4 photos a second, each chunk started two days after the previous one
                when = (
                    SCRAPE_START
                    + np.timedelta64(2 * DAY * number, "s")
                    + np.rint((scraped - a) * 0.25).astype("timedelta64[s]")
                )
                status_file.writelines(
                    f"{flickr_id[i]},{status_names[posts.status[i]]},{t}\n"
                    for i, t in zip(scraped.tolist(), _iso_utc(when))
                )
                counts["photo_status.csv"] += len(scraped)
                name = f"group_meta_{a}_to_{b}.csv"
                lines = _group_meta_lines(a, b, posts, group_row, rescrapes, rescraped)
                with open(folder / name, "w", encoding="utf-8") as f:
                    f.write("imgid,group_id,title,member_count,pool_count\n")
                    f.writelines(line + "\n" for line in lines)
                counts[name] = len(lines)
                number += 1
        who = np.unique(posts.owner[start:stop])
        counts["user_meta.csv"] = _write_user_meta(folder / "user_meta.csv", rng, users, text, who)
    return rows


def write_pid_values(path: Path, pid: np.ndarray, values: np.ndarray, column: str) -> None:
    """``Pid,<column>`` per post: the test release's true labels (for scoring predictions), or
    the oracle's prediction for each training post (for evaluating models split by split)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"Pid,{column}\n")
        f.writelines(f"{p},{x:.2f}\n" for p, x in zip(pid.tolist(), values.tolist()))


# ------------------------------------------------------------------------------------------------
# Entry point


def _clock(progress: bool) -> Callable[[str], None]:
    started = time.time()

    def step(name: str) -> None:
        if progress:
            print(f"  generate: {name:<28} {time.time() - started:6.1f}s", file=sys.stderr, flush=True)

    return step


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
) -> dict:
    """Write a training release (``scale`` posts), a test release and the scraped tables.

    Also writes ``ground_truth.json`` and ``oracle_train.csv`` (each training post's noiseless
    prediction) beside the training folder and ``test_labels_hidden.csv``
    (``Pid,label``) beside the test folder, so ingesting either folder never sees them.
    Returns the ground-truth dict.
    """
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
    step("labels and user fields")

    test = slice(posts.n_train, posts.n)
    files = {"train": write_release(Path(train_dir), "train", 0, scale, posts, world, text, label)}
    step("training release")
    files["test"] = write_release(Path(test_dir), "test", scale, posts.n, posts, world, text, None)
    write_pid_values(Path(test_dir).parent / "test_labels_hidden.csv", posts.pid[test], label[test], "label")
    step("test release")
    scraped = write_scraped(
        {"train": Path(scraped_dir), "test": Path(scraped_test_dir)}, seed, posts, users, groups, text
    )
    files["scraped"], files["scraped_test"] = scraped["train"], scraped["test"]
    step("scraped tables")

    settings = {"seed": seed, "scale": scale, "test_fraction": test_fraction, "description_dims": description_dims}
    truth = ground_truth(posts, users, groups, world, text, effects, model, components, label, oracle, settings, files)
    train = slice(0, posts.n_train)
    write_pid_values(Path(train_dir).parent / "oracle_train.csv", posts.pid[train], oracle[train], "oracle")
    with open(Path(train_dir).parent / "ground_truth.json", "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=2)
        f.write("\n")
    step("ground truth")
    return truth
