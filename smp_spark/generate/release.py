"""The SMPD release files: the five JSON lists, the image path file, the label file, Pid CSVs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from smp_spark.generate.common import DAY, TEST_END, WORLD_SEED, _chunks, _stream, _unique_ints
from smp_spark.generate.images import local_path
from smp_spark.generate.people import Posts, Users
from smp_spark.generate.world import World, synthetic_words

WRITE_CHUNK = 50_000  # rows per write, to bound memory


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
    image_style: str = "url",
) -> dict[str, int]:
    """The five JSON files, the image path file and (training only) the label file; rows per file.

    ``<prefix>_img_filepath.txt`` lists the Flickr photo URLs (the 2019 release, whose photo ids
    the scraped tables are keyed by); with ``image_style`` "local" (the 2023 release)
    ``<prefix>_img_path.txt`` also lists the local files ``<prefix>/<Uid>/<Pid>.jpg``, relative to
    ``folder``."""
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

    def paths(a, b):
        return [local_path(prefix, text.uid[o], p) for o, p in zip(posts.owner[a:b].tolist(), posts.pid[a:b].tolist())]

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
    if image_style == "local":  # the 2023 release's list of local files, beside the 2019 URL list
        rows[f"{prefix}_img_path.txt"] = write_lines(folder / f"{prefix}_img_path.txt", start, stop, paths)
    if label is not None:
        rows[f"{prefix}_label.txt"] = write_lines(
            folder / f"{prefix}_label.txt", start, stop, lambda a, b: [f"{x:.2f}" for x in label[a:b].tolist()]
        )
    return rows


def write_pid_values(path: Path, pid: np.ndarray, values: np.ndarray, column: str) -> None:
    """``Pid,<column>`` per post: the test release's true labels (for scoring predictions), or
    the oracle's prediction for each training post (for evaluating models split by split)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"Pid,{column}\n")
        f.writelines(f"{p},{x:.2f}\n" for p, x in zip(pid.tolist(), values.tolist()))
