"""A polite Flickr REST client: one shared rate limit, bounded retries with backoff, a hidden key.

Only the standard library (``urllib``). Every attempt, retries included, waits for the shared
:class:`RateLimiter`, because Flickr's limit (about 3,600 calls an hour per key) counts them all.
Retried: HTTP 429 and 5xx, timeouts, dropped connections, unreadable bodies and Flickr's temporary
error codes (105 "Service currently unavailable", 106). Error code 100 ("Invalid API Key") stops
the whole run: every call after it fails at once. The key is read from ``$FLICKR_API_KEY`` only and
is never part of an exception message, a log line or a stored value.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

from smp_spark.config import ScrapeConfig
from smp_spark.errors import ConfigError

API_KEY_ENV = "FLICKR_API_KEY"
TEMPORARY_CODES = frozenset({105, 106})  # service unavailable; write operation failed (temporary)
INVALID_KEY_CODE = 100
USER_AGENT = "smp-spark-scraper/0.1 (research; polite: rate-limited)"


class InvalidApiKey(ConfigError):
    """Flickr rejected the API key (code 100): nothing can succeed, so the run stops."""


class Halted(Exception):
    """The run is stopping (an error or Ctrl-C elsewhere): calls still queued give up at once."""


class FlickrError(Exception):
    """A definitive failure of one call, not worth retrying: Flickr's ``stat: fail`` with its code
    (1 = photo / group not found), or an HTTP client error other than 429 (``code`` None)."""

    def __init__(self, method: str, code: int | None, message: str, attempts: int):
        super().__init__(f"{method}: {message}" if code is None else f"{method}: Flickr error {code}: {message}")
        self.code, self.message, self.attempts = code, message, attempts


class RetriesExhausted(Exception):
    """Every attempt of one call failed with a retryable error; ``reason`` is the last one."""

    def __init__(self, method: str, reason: str, attempts: int):
        super().__init__(f"{method}: gave up after {attempts} attempts: {reason}")
        self.reason, self.attempts = reason, attempts


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Refused(Exception):
    """An HTTP client error (4xx other than 429)."""


def api_key_from_env() -> str:
    """The API key from ``$FLICKR_API_KEY``; a :class:`ConfigError` (naming the variable only) if unset."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"{API_KEY_ENV} is not set: export your Flickr API key in the environment "
            f"({API_KEY_ENV}=... make scrape); it is never read from config files or arguments"
        )
    return key


class RateLimiter:
    """Spaces call starts at least ``3600 / calls_per_hour`` seconds apart, across threads.

    ``wait()`` reserves the next free slot under a lock and sleeps outside it, so N threads that
    call at once start 0, 1, ..., N-1 intervals from now: never a burst above the rate.
    """

    def __init__(
        self,
        calls_per_hour: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 3600.0 / calls_per_hour
        self._clock, self._sleep = clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


@dataclass
class Response:
    """A successful Flickr answer (``stat: ok``) and how many attempts it took."""

    data: dict
    attempts: int


class CallStats:
    """Thread-safe counters of HTTP attempts made and of those that were retries."""

    def __init__(self):
        self.calls = 0
        self.retries = 0
        self._lock = threading.Lock()

    def add(self, calls: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.retries += retries


class FlickrClient:
    """Calls Flickr REST methods (``format=json&nojsoncallback=1``) under one rate limit.

    Thread-safe: one client is shared by every worker thread of a run.
    """

    def __init__(self, api_key: str, config: ScrapeConfig, limiter: RateLimiter | None = None):
        self._key = api_key
        self.config = config
        self.limiter = limiter or RateLimiter(config.calls_per_hour)
        self.stats = CallStats()
        self._fatal: InvalidApiKey | None = None
        self._halt = threading.Event()

    def halt(self) -> None:
        """Make every later attempt, and every backoff wait in progress, end at once."""
        self._halt.set()

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (for anything that is logged or stored)."""
        return text.replace(self._key, "***") if self._key else text

    def call(self, method: str, **params: str) -> Response:
        """One REST call, retried on temporary failures.

        Returns the decoded JSON when Flickr says ``stat: ok``. Raises :class:`FlickrError` for a
        definitive ``stat: fail`` (not retried), :class:`RetriesExhausted` once ``max_retries``
        retries have failed, :class:`InvalidApiKey` on code 100 (and on every later call).
        """
        query = {"method": method, **params, "format": "json", "nojsoncallback": "1", "api_key": self._key}
        url = f"{self.config.base_url}?{urllib.parse.urlencode(query)}"
        attempts = 0
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._halt.is_set():
                raise Halted(method)
            self.limiter.wait()
            attempts += 1
            self.stats.add(calls=1)
            try:
                payload = self._fetch(url)
                if payload.get("stat") == "ok":
                    return Response(payload, attempts)
                code, message = _fail_code(payload), self.redact(str(payload.get("message", "")))
                if code == INVALID_KEY_CODE:
                    self._fatal = InvalidApiKey(
                        f"Flickr rejected the API key in ${API_KEY_ENV} (code {code}: {message}); "
                        "set a valid key and rerun: finished batches are kept"
                    )
                    self._halt.set()
                    raise self._fatal
                if code not in TEMPORARY_CODES:
                    raise FlickrError(method, code, message, attempts)
                raise _Retryable(f"Flickr error {code}: {message}")
            except _Refused as exc:
                raise FlickrError(method, None, str(exc), attempts) from None
            except _Retryable as exc:
                if attempts > self.config.max_retries:
                    raise RetriesExhausted(method, exc.reason, attempts) from None
                self.stats.add(retries=1)
                self._backoff(attempts, exc.retry_after)

    def _backoff(self, attempts: int, retry_after: float | None) -> None:
        wait = self.config.backoff_seconds * 2 ** (attempts - 1) if retry_after is None else retry_after
        self._halt.wait(min(wait, self.config.max_backoff_seconds))

    def _fetch(self, url: str) -> dict:
        """One HTTP GET decoded as JSON; temporary failures raise :class:`_Retryable`."""
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_seconds) as reply:
                body = reply.read()
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 429 or exc.code >= 500:
                    retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
                    raise _Retryable(f"HTTP {exc.code}", retry_after) from None
                raise _Refused(f"HTTP {exc.code}") from None
        except TimeoutError:
            raise _Retryable(f"timeout after {self.config.timeout_seconds:g}s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(f"timeout after {self.config.timeout_seconds:g}s") from None
            raise _Retryable(self.redact(f"connection failed: {exc.reason}")) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(self.redact(f"connection failed: {type(exc).__name__}")) from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise _Retryable("response is not JSON") from None
        if not isinstance(payload, dict):
            raise _Retryable("response is not a JSON object")
        return payload


def _fail_code(payload: dict) -> int:
    try:
        return int(payload.get("code", -1))
    except (TypeError, ValueError):
        return -1


def _seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare on APIs and is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
