"""A Flickr REST server on 127.0.0.1 for the scraper tests, answering in Flickr's JSON format.

``format=json&nojsoncallback=1`` answers as documented for the four methods the scraper uses:
``{"stat": "fail", "code": 100, "message": "Invalid API Key (Key has invalid format)"}`` for a
wrong key, code 1 for an unknown photo / group / user, ``pool`` entries with ``id`` and ``title``,
``group.members._content`` and ``group.pool_count._content``, paged ``contacts``. Faults are
scripted per (method, item): ``"429"`` (with Retry-After), ``"500"``, ``"105"`` (Flickr's "Service
currently unavailable") or ``"timeout"`` (the answer comes after ``slow_seconds``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

INVALID_KEY = {"stat": "fail", "code": 100, "message": "Invalid API Key (Key has invalid format)"}

# the item id each method is keyed by
ITEM_PARAM = {
    "flickr.photos.getAllContexts": "photo_id",
    "flickr.groups.getInfo": "group_id",
    "flickr.contacts.getPublicList": "user_id",
    "flickr.people.getPublicGroups": "user_id",
}


class FakeFlickr:
    def __init__(self, api_key: str, slow_seconds: float = 1.0):
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.photos: dict[str, list[str]] = {}  # photo id -> its pools' group ids
        self.groups: dict[str, tuple[str, int, int]] = {}  # group id -> (title, members, pool count)
        self.owners: dict[str, tuple[int, list[str]]] = {}  # nsid -> (contacts, public group ids)
        self.faults: dict[tuple[str, str], list[str]] = defaultdict(list)  # consumed one per call
        self.broken: set[str] = set()  # items whose every call answers HTTP 500
        self.key_revoked_after: int | None = None  # after this many calls every answer is code 100
        self.hold_after: int | None = None  # after this many calls requests hang (a client to kill mid-call)
        self.holding = threading.Event()  # set once a request hangs
        self._release = threading.Event()
        self.calls: Counter = Counter()  # (method, item) -> requests
        self.total = 0
        self.bad_format = 0  # requests without format=json&nojsoncallback=1
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/rest"

    def __enter__(self) -> FakeFlickr:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def calls_to(self, method: str) -> Counter:
        return Counter({item: n for (m, item), n in self.calls.items() if m == method})

    def answer(self, query: dict[str, str]) -> tuple[int, dict | None, str]:
        """(HTTP status, JSON body or None, fault) for one request."""
        method = query.get("method", "")
        item = query.get(ITEM_PARAM.get(method, ""), "")
        with self._lock:
            self.total += 1
            self.calls[(method, item)] += 1
            if query.get("format") != "json" or query.get("nojsoncallback") != "1":
                self.bad_format += 1
            revoked = self.key_revoked_after is not None and self.total > self.key_revoked_after
            hold = self.hold_after is not None and self.total > self.hold_after
            scripted = self.faults[(method, item)]
            fault = scripted.pop(0) if scripted else ("500" if item in self.broken else "")
        if hold:
            self.holding.set()
            self._release.wait()
        if query.get("api_key") != self.api_key or revoked:
            return 200, INVALID_KEY, ""
        if fault in ("429", "500"):
            return int(fault), None, fault
        if fault == "105":
            return 200, {"stat": "fail", "code": 105, "message": "Service currently unavailable"}, ""
        return 200, self._ok(method, item, query), fault

    def _ok(self, method: str, item: str, query: dict[str, str]) -> dict:
        if method == "flickr.photos.getAllContexts":
            if item not in self.photos:
                return {"stat": "fail", "code": 1, "message": "Photo not found"}
            pools = [
                {
                    "id": g,
                    "title": self.groups.get(g, ("?", 0, 0))[0],
                    "url": f"/groups/{g}/pool/",
                    "iconserver": "65535",
                    "iconfarm": 66,
                }
                for g in self.photos[item]
            ]
            body = {"set": [{"id": "72157600000000000", "title": "holiday"}]}
            return {**body, "pool": pools, "stat": "ok"} if pools else {**body, "stat": "ok"}
        if method == "flickr.groups.getInfo":
            if item not in self.groups:
                return {"stat": "fail", "code": 1, "message": "Group not found"}
            title, members, pool = self.groups[item]
            return {
                "group": {
                    "id": item,
                    "nsid": item,
                    "iconserver": "65535",
                    "iconfarm": 66,
                    "lang": None,
                    "ispoolmoderated": 0,
                    "name": {"_content": title},
                    "description": {"_content": "A group."},
                    "rules": {"_content": ""},
                    "members": {"_content": str(members)},
                    "pool_count": {"_content": str(pool)},
                    "topic_count": {"_content": "3"},
                    "privacy": {"_content": "3"},
                    "throttle": {"count": "5", "mode": "day"},
                },
                "stat": "ok",
            }
        if method in ("flickr.contacts.getPublicList", "flickr.people.getPublicGroups"):
            if item not in self.owners:
                return {"stat": "fail", "code": 1, "message": "User not found"}
            contacts, groups = self.owners[item]
            if method == "flickr.people.getPublicGroups":
                return {
                    "groups": {"group": [{"nsid": g, "name": g, "admin": 0, "eighteenplus": 0} for g in groups]},
                    "stat": "ok",
                }
            page, per_page = int(query.get("page", "1")), int(query.get("per_page", "1000"))
            first = (page - 1) * per_page
            listed = [
                {"nsid": f"{n}@N01", "username": f"u{n}", "ignored": 0}
                for n in range(first, min(contacts, first + per_page))
            ]
            return {
                "contacts": {
                    "page": page,
                    "pages": max(1, math.ceil(contacts / per_page)),
                    "per_page": per_page,
                    "perpage": per_page,
                    "total": contacts,
                    "contact": listed,
                },
                "stat": "ok",
            }
        return {"stat": "fail", "code": 112, "message": f'Method "{method}" not found'}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                status, body, fault = fake.answer(query)
                if fault == "timeout":
                    time.sleep(fake.slow_seconds)
                data = json.dumps(body).encode() if body is not None else b"<html>error</html>"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if body is not None else "text/html")
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args):  # request lines hold the key: keep them out of test output
                pass

        return Handler
