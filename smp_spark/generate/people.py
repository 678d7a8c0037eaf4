"""Users, posts (owners, time, ids, concepts, text, geo, visual appeal) and group memberships."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from smp_spark.generate.common import (
    CONCEPT_TAGS,
    DAY,
    FULL_SCALE,
    GROUPS_AT_FULL_SCALE,
    MAX_GROUPS,
    MAX_TAGS,
    TEST_END,
    TEST_EXISTING_USER_SHARE,
    TRAIN_END,
    TRAIN_START,
    VOCABULARY_SIZE,
    VOLUME_GROWTH,
    WORLD_SEED,
    _draw,
    _first_per_row,
    _offsets,
    _sigmoid,
    _stream,
    _take_rows,
    _unique_ints,
    _zipf_cdf,
)
from smp_spark.generate.world import GROUP_WORDS, World, synthetic_words

# Local hour at which people post (relative weights, 0h..23h).
LOCAL_HOUR_PROFILE = np.array(
    [2.0, 1.5, 1.0, 0.7, 0.5, 0.5, 0.8, 1.5, 2.5, 3.5, 4.0, 4.5]  # 0h..11h
    + [5.0, 5.0, 5.0, 5.0, 5.2, 5.5, 6.0, 6.5, 6.5, 6.0, 5.0, 3.5]  # 12h..23h
)
# Users per UTC offset (relative weights); offsets not listed get weight 0.3.
OFFSET_WEIGHTS = {-8: 12, -7: 4, -6: 6, -5: 12, -4: 2, -3: 3, 0: 10, 1: 20, 2: 6, 3: 2, 5: 1, 8: 6, 9: 4, 10: 3}
N_TIMEZONE_IDS = 91
# Tags per post: a per-user Poisson rate, lognormal across users, capped at MAX_TAGS; a few users
# never tag. Real SMPD (spaces + 1): median 16, mean 21.1, max 75; 0.7% of posts count 1.
TAG_RATE, TAG_SPREAD, TAG_FLOOR, TAGLESS_USERS = 18.0, 1.0, 4.0, 0.005
# Written titles: word count 1 + LogNormal(log median, spread), capped; a share of plain words.
TITLE_WORDS_MEDIAN, TITLE_WORDS_SPREAD, MAX_TITLE_WORDS, TITLE_PLAIN_SHARE = 3.0, 0.75, 40, 0.35
TITLE_RARE_SHARE = 0.5  # the share of title words drawn from the whole vocabulary alike
PLAIN_TITLE_WORDS = (
    "the a of and in at on to with my from for by new old first last day night morning evening light "
    "view walk time little big home house garden park road street river lake beach sea bridge church "
    "tower market city town village spring summer autumn winter snow rain sun sky blue red green white "
    "black our friends family love happy best great beautiful before after under over near"
).split()
GEOACCURACY_WEIGHTS = np.array([0.5, 0.5, 2, 1, 1, 3, 1, 2, 2, 3, 8, 5, 6, 8, 12, 45])  # levels 1..16

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
    tag_rate = np.where(
        rng.random(n) < TAGLESS_USERS,
        0.0,
        np.maximum(TAG_FLOOR, np.exp(np.log(TAG_RATE) + TAG_SPREAD * rng.standard_normal(n))),
    )
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
    appeal: np.ndarray  # latent visual appeal of the photo, N(0, 1): the image term of the label

    @property
    def n(self) -> int:
        return len(self.owner)

    @property
    def n_tags(self) -> np.ndarray:
        return np.diff(self.tag_offsets)

    @property
    def n_groups(self) -> np.ndarray:
        return np.diff(self.group_offsets)

    def take(self, rows: np.ndarray, n_train: int) -> Posts:
        """The posts at ``rows``, in that order; the first ``n_train`` of them form the training release."""
        tag_offsets, tag_ids = _take_rows(self.tag_offsets, self.tag_ids, rows)
        group_offsets, group_ids = _take_rows(self.group_offsets, self.group_ids, rows)
        per_post = {
            f.name: getattr(self, f.name)[rows]
            for f in dataclasses.fields(self)
            if f.name not in ("n_train", "titles", "tag_offsets", "tag_ids", "group_offsets", "group_ids")
        }
        titles = [self.titles[i] for i in rows.tolist()]
        fields = per_post | {"titles": titles, "tag_offsets": tag_offsets, "tag_ids": tag_ids}
        fields |= {"group_offsets": group_offsets, "group_ids": group_ids}
        return Posts(n_train=n_train, **fields)


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
    """Unix seconds: a day in the release's window, an hour from the owner's local-time profile.

    Training days have density ``exp(VOLUME_GROWTH t)`` over the year (t in 0..1), as the real
    monthly volume rises towards 2016; test days are uniform over their two months. A window
    starts at 16:00 UTC (midnight in China), so times before it on its first day wrap to its last.
    """
    n = len(owner)
    is_test = np.arange(n) >= n_train
    start = np.where(is_test, TRAIN_END, TRAIN_START)
    length = np.where(is_test, TEST_END - TRAIN_END, TRAIN_END - TRAIN_START)  # whole days
    u = rng.random(n)
    share = np.where(is_test, u, np.log1p(u * np.expm1(VOLUME_GROWTH)) / VOLUME_GROWTH)
    day = start // DAY + (share * (length // DAY)).astype(np.int64)
    local_hour = rng.choice(24, size=n, p=LOCAL_HOUR_PROFILE / LOCAL_HOUR_PROFILE.sum())
    utc_hour = (local_hour - users.utc_offset[owner]) % 24
    seconds = day * DAY + utc_hour * 3600 + rng.integers(0, 3600, n)
    return start + (seconds - start) % length


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
    n_raw = np.minimum(MAX_TAGS + 10, rng.poisson(users.tag_rate[owner]))  # a few repeats get dropped
    post = np.repeat(np.arange(len(owner)), n_raw)
    tags = _draw(rng, _zipf_cdf(VOCABULARY_SIZE, 1.0, offset=10), len(post))
    tied = rng.random(len(post)) < 0.25
    slot = rng.choice(CONCEPT_TAGS, size=int(tied.sum()), p=[0.3] + [0.1] * (CONCEPT_TAGS - 1))
    tags[tied] = world.concept_tags[concept[post[tied]], slot]
    post, tags = _first_per_row(post, tags, VOCABULARY_SIZE)
    counts = np.bincount(post, minlength=len(owner))
    keep = np.arange(len(post)) - _offsets(counts)[post] < MAX_TAGS  # Flickr keeps at most 75 tags
    return _offsets(np.minimum(counts, MAX_TAGS)), tags[keep]


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
    """Titles: 3% empty, 10% camera defaults ("IMG_1234", "2016-03-06 22.19.08"), else written.

    A written title has ``1 + round(LogNormal(log 3, 0.75))`` words (at most 40: median 4, mean
    ~5, as real titles): 35% plain English words (one word piece each), 50% any vocabulary word
    alike (mostly made-up names and compounds, ~3 word pieces: the names and rare words of real
    titles) and 15% vocabulary words by tag frequency (mostly plain words)."""
    n = len(postdate)
    kind = rng.choice(3, size=n, p=[0.03, 0.10, 0.87])  # 0 empty, 1 camera default, 2 written
    more = np.rint(np.exp(rng.normal(np.log(TITLE_WORDS_MEDIAN), TITLE_WORDS_SPREAD, n))).astype(np.int64)
    n_words = np.where(kind == 2, np.minimum(MAX_TITLE_WORDS, 1 + more), 0)
    word_ids = _draw(rng, _zipf_cdf(VOCABULARY_SIZE, 1.0, offset=10), int(n_words.sum()))
    share = rng.random(len(word_ids))
    rare = share >= 1.0 - TITLE_RARE_SHARE  # names and rare words: any vocabulary word alike
    word_ids[rare] = rng.integers(0, VOCABULARY_SIZE, int(rare.sum()))
    words = np.array(world.vocabulary, dtype=object)[word_ids]
    plain = share < TITLE_PLAIN_SHARE
    words[plain] = np.array(PLAIN_TITLE_WORDS, dtype=object)[rng.integers(0, len(PLAIN_TITLE_WORDS), int(plain.sum()))]
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
    appeal = _stream(seed, "appeal").standard_normal(len(owner))
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
        appeal,
    )
