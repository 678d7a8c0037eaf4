"""Hand-made SMPD releases for tests: a few posts whose every field a test can break."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from smp_spark.ingest.bronze import USER_COLUMNS

FILES = {
    "category": ["Uid", "Pid", "Category", "Subcategory", "Concept"],
    "text": ["Uid", "Pid", "Title", "Mediatype", "Alltags"],
    "temporalspatial_information": ["Uid", "Pid", "Postdate", "Latitude", "Longitude", "Geoaccuracy"],
    "user_data": ["Uid", "Pid", *USER_COLUMNS],
    "additional_information": ["Uid", "Pid", "Pathalias", "Ispublic", "Mediastatus"],
}


def make_post(i: int) -> dict:
    """One valid post; ``i`` makes its ids and values distinct."""
    uid = f"{100 + i % 3}@N0{i % 3}"
    return {
        "Uid": uid,
        "Pid": str(1000 + i),
        "Category": "Animal",
        "Subcategory": "Dog",
        "Concept": "puppy",
        "Title": f"dog {i}",
        "Mediatype": "photo",
        "Alltags": "dog puppy cute",
        "Postdate": str(1_450_000_000 + i * 3600),
        "Latitude": "0",
        "Longitude": "0",
        "Geoaccuracy": "0",
        "photo_firstdate": "1213743830",
        "photo_count": "68",
        "ispro": "1",
        "canbuypro": "0",
        "timezone_offset": "1",
        "photo_firstdatetaken": "1904010100",
        "timezone_id": "9",
        "user_description": "0.1,-0.2,0.3",
        "location_description": "",
        "Pathalias": "None",
        "Ispublic": "1",
        "Mediastatus": "ready",
        "url": f"https://www.flickr.com/photos/5870{i % 3}@N00/{385070000 + i}",
        "label": f"{5 + i * 0.25:.2f}",
    }


def write_release(
    folder: Path,
    posts: list[dict],
    prefix: str = "train",
    labels: bool = True,
    temporal_name: str = "temporalspatial_information",
    img_name: str = "img_filepath",
) -> Path:
    """Write ``posts`` as an SMPD release; a key missing from a post is left out of its record."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, keys in FILES.items():
        name = temporal_name if stem == "temporalspatial_information" else stem
        records = [{k: p[k] for k in keys if k in p} for p in posts]
        (folder / f"{prefix}_{name}.json").write_text(json.dumps(records, indent=1))
    (folder / f"{prefix}_{img_name}.txt").write_text("".join(p["url"] + "\n" for p in posts))
    if labels:
        (folder / f"{prefix}_label.txt").write_text("".join(p["label"] + "\n" for p in posts))
    return folder


def write_groups(folder: Path, rows: list[tuple], name: str = "group_meta_0_to_10.csv") -> None:
    """Scraped group rows: (imgid, group_id, title, member_count, pool_count)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["imgid", "group_id", "title", "member_count", "pool_count"])
        writer.writerows(rows)


def write_status(folder: Path, rows: list[tuple], name: str = "photo_status.csv") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["imgid", "status", "scraped_at"])
        writer.writerows(rows)
