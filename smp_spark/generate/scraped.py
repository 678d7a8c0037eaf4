"""The scraped social-network tables: group_meta chunks, photo_status.csv and user_meta.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smp_spark.generate.common import DAY, SCRAPE_CHUNK, SCRAPE_START, _chunks, _csv_field, _iso_utc, _stream
from smp_spark.generate.people import Groups, Posts, Users
from smp_spark.generate.release import UserText


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
    release's scraped folder names only its own posts (a ``group_meta_*.csv`` left there by an
    earlier run is removed). Returns rows per file, per release."""
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
        for old in folder.glob("group_meta_*.csv"):  # an earlier release's chunks, cut elsewhere
            old.unlink()
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
