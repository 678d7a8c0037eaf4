"""Time windows, sizes, named random streams and small array helpers shared by the generator."""

from __future__ import annotations

import zlib
from typing import Iterator

import numpy as np

WORLD_SEED = 20150101  # names of categories, concepts and tags: fixed across data seeds

DAY = 86_400
# The real SMPD training split runs from 2015-03-01 to 2016-03-01 in China time (UTC+8): its
# first Postdate is 2015-02-28 16:00:00 UTC and its test posts start on 2016-02-29 (docs/data.md §5).
TRAIN_START = 1_425_139_200  # 2015-02-28 16:00 UTC = 2015-03-01 00:00 UTC+8
TRAIN_END = 1_456_761_600  # 2016-02-29 16:00 UTC: the training release covers 12 months (366 days)
TEST_END = 1_462_032_000  # 2016-04-30 16:00 UTC: the test release covers the two months after
VOLUME_GROWTH = 1.6  # training posts per day grow as exp(1.6 t) over the year: ~4.5x, as in real SMPD
SCRAPE_START = np.datetime64("2023-09-04T08:00:00", "s")

USERS_PER_POST = 70_000 / 486_000  # SMPD: ~70K users for ~486K posts
TEST_EXISTING_USER_SHARE = 0.8
VOCABULARY_SIZE = 50_000
CONCEPT_TAGS = 8  # tags tied to each concept: its own name plus 7 vocabulary words
GROUPS_AT_FULL_SCALE = 30_000
FULL_SCALE = 680_000
MAX_TAGS = 75  # Flickr's limit; the real maximum tag count
MAX_GROUPS = 800
SCRAPE_CHUNK = 50_000  # posts per group_meta file, as the research scraped them


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


def _take_rows(offsets: np.ndarray, items: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR rows ``rows`` (in that order) of ``offsets``/``items``: new offsets and items."""
    counts = offsets[rows + 1] - offsets[rows]
    new_offsets = _offsets(counts)
    return new_offsets, items[np.repeat(offsets[rows] - new_offsets[:-1], counts) + np.arange(new_offsets[-1])]


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


def _chunks(start: int, stop: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(start, stop, size):
        yield a, min(a + size, stop)
