"""One photo, group or owner scraped through :class:`FlickrClient`, and Flickr's JSON parsed.

Methods (all public, an API key and no login):
- ``flickr.photos.getAllContexts`` (photo_id): the photo's sets and **pools**; ``pool`` is a list of
  ``{"id": "<group nsid>", "title": ..., ...}`` and is absent when the photo is in no pool. Not paged.
- ``flickr.groups.getInfo`` (group_id): ``group.name._content``, ``group.members._content``,
  ``group.pool_count._content`` (strings of digits).
- ``flickr.contacts.getPublicList`` (user_id, paged): ``contacts.total`` is the full count, so
  one page of one contact is enough.
- ``flickr.people.getPublicGroups`` (user_id, not paged): ``groups.group`` lists every public group.

Each function returns the item's final state: ``ok``, ``not_found`` (Flickr error 1: deleted,
private or unknown) or ``failed`` (retries exhausted, another Flickr error, or an answer that does
not parse), with the number of HTTP attempts it took and an error message without the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from smp_spark.scrape.client import FlickrClient, FlickrError, RetriesExhausted

OK, NOT_FOUND, FAILED = "ok", "not_found", "failed"
NOT_FOUND_CODES = frozenset({1})  # photo / group / user not found (or not visible to the key)
GROUP_NOT_FOUND_CODES = frozenset({1, 2})  # groups.getInfo: 2 = "Group is private": no public counts


def now_utc() -> datetime:
    """The scrape time stored with each row: UTC, whole seconds."""
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(kw_only=True)
class ScrapeOutcome:
    """What every scraped item records besides its data: HTTP attempts, error text, scrape time."""

    calls: int = 0
    error: str | None = None
    scraped_at: datetime = field(default_factory=now_utc)


@dataclass
class PhotoResult(ScrapeOutcome):
    imgid: str
    owner: str | None
    status: str
    group_ids: list[str] = field(default_factory=list)


@dataclass
class GroupResult(ScrapeOutcome):
    group_id: str
    status: str
    title: str | None = None
    member_count: int | None = None
    pool_count: int | None = None


@dataclass
class OwnerResult(ScrapeOutcome):
    owner: str
    status: str
    contacts_count: int | None = None
    public_groups_count: int | None = None


def content(value: Any) -> Any:
    """Flickr's JSON wraps text nodes as ``{"_content": v}``; attributes are bare values."""
    return value.get("_content") if isinstance(value, dict) else value


def count(value: Any, what: str) -> int:
    """A non-negative integer from ``"123"``, ``123`` or ``{"_content": "123"}``; ValueError otherwise."""
    raw = content(value)
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{what} is missing")
    number = int(str(raw).strip())
    if number < 0:
        raise ValueError(f"{what} is negative: {number}")
    return number


def photo_pools(data: dict) -> list[str]:
    """Group ids of the pools in a getAllContexts answer, in Flickr's order, each once; [] for none."""
    pools = data.get("pool", [])
    if not isinstance(pools, list):
        raise ValueError("'pool' is not a list")
    ids: list[str] = []
    for entry in pools:
        group_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(group_id, str) or not group_id:
            raise ValueError(f"pool entry without an id: {entry!r}"[:200])
        if group_id not in ids:
            ids.append(group_id)
    return ids


def group_info(data: dict) -> tuple[str | None, int, int]:
    """(title, member count, pool count) from a groups.getInfo answer."""
    group = data["group"]
    title = content(group.get("name"))
    return (
        str(title) if title is not None else None,
        count(group.get("members"), "members"),
        count(group.get("pool_count"), "pool_count"),
    )


def contacts_total(data: dict) -> int:
    """The owner's public contact count: ``contacts.total`` of any page of getPublicList."""
    return count(data["contacts"].get("total"), "contacts.total")


def public_group_count(data: dict) -> int:
    """How many public groups getPublicGroups lists (the method returns them all, unpaged)."""
    groups = data["groups"].get("group", [])
    if not isinstance(groups, list):
        raise ValueError("'groups.group' is not a list")
    return len(groups)


def _attempt(
    client: FlickrClient,
    method: str,
    params: dict[str, str],
    parse: Callable[[dict], Any],
    not_found_codes: frozenset[int] = NOT_FOUND_CODES,
):
    """(parsed value, attempts, None) or (None, attempts, (status, error)) for one call."""
    try:
        reply = client.call(method, **params)
    except FlickrError as exc:
        status = NOT_FOUND if exc.code in not_found_codes else FAILED
        return None, exc.attempts, (status, client.redact(str(exc)))
    except RetriesExhausted as exc:
        return None, exc.attempts, (FAILED, client.redact(str(exc)))
    try:
        return parse(reply.data), reply.attempts, None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return None, reply.attempts, (FAILED, client.redact(f"{method}: unexpected response: {exc!r}"[:500]))


def scrape_photo(client: FlickrClient, imgid: str, owner: str | None = None) -> PhotoResult:
    """The pools of one photo: ``ok`` with its group ids (possibly none), ``not_found`` or ``failed``."""
    group_ids, calls, problem = _attempt(client, "flickr.photos.getAllContexts", {"photo_id": imgid}, photo_pools)
    if problem:
        return PhotoResult(imgid, owner, problem[0], calls=calls, error=problem[1])
    return PhotoResult(imgid, owner, OK, group_ids=group_ids, calls=calls)


def scrape_group(client: FlickrClient, group_id: str) -> GroupResult:
    """One group's title and live member / pool counts (a private group counts as ``not_found``)."""
    info, calls, problem = _attempt(
        client, "flickr.groups.getInfo", {"group_id": group_id}, group_info, GROUP_NOT_FOUND_CODES
    )
    if problem:
        return GroupResult(group_id, problem[0], calls=calls, error=problem[1])
    title, members, pool = info
    return GroupResult(group_id, OK, title, members, pool, calls=calls)


def scrape_owner(client: FlickrClient, owner: str) -> OwnerResult:
    """An owner's public contact count and public group count (two calls)."""
    contacts, calls, problem = _attempt(
        client,
        "flickr.contacts.getPublicList",
        {"user_id": owner, "page": "1", "per_page": "1"},
        contacts_total,
    )
    if problem:
        return OwnerResult(owner, problem[0], calls=calls, error=problem[1])
    groups, more, problem = _attempt(client, "flickr.people.getPublicGroups", {"user_id": owner}, public_group_count)
    if problem:
        return OwnerResult(owner, problem[0], calls=calls + more, error=problem[1])
    return OwnerResult(owner, OK, contacts, groups, calls=calls + more)
