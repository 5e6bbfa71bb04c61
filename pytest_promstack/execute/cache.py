"""Response caches, all holding the same JSON values under the same keys (never pickle):
diskcache on disk (default), Redis for fleets of CI runners, and committed cassettes.

The key is a sha256 over a versioned canonical JSON of everything that changes the answer:
model, endpoint, messages and every sampling parameter. Timeouts and keys are left out.
A failing cache is reported as a warning and never fails the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.modes import CacheMode
from ..model.types import Response
from .stored import cacheable, decode, encode

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-promstack.\n"
)
Warn = Callable[[str], None]


class Unsafe(Exception):
    """A cache row stored in diskcache's pickle mode: unpickling it could run code."""


def _json_disk() -> type:
    import diskcache

    class JSONDisk(diskcache.Disk):  # type: ignore[misc]
        """Reads only what we write (text); a pickled row is refused, never unpickled."""

        def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
            if mode == diskcache.core.MODE_PICKLE:
                raise Unsafe
            return super().fetch(mode, filename, value, read)

    return JSONDisk


class DiskCache:
    """diskcache.Cache holding JSON strings (never pickle, also when reading)."""

    def __init__(self, directory: Path, warn: Warn) -> None:
        import diskcache

        _prepare(directory)
        self.directory = directory
        self.warn = warn
        self._cache = diskcache.Cache(str(directory), disk=_json_disk())

    def get(self, key: str) -> Response | None:
        try:
            raw = self._cache.get(key)
        except Unsafe:
            self.warn(f"security: a row of the cache {self.directory} is pickled, which promstack never writes; "
                      "it was not read (a miss). Delete the cache folder if you did not put it there")
            return None
        except Exception as exc:  # a damaged cache must not fail the run
            self.warn(f"cache read failed ({exc}); calling the model")
            return None
        hit = decode(raw)
        if raw is not None and hit is None:
            self.warn(f"a row of the cache {self.directory} is not a stored answer of ours; it was not used (a miss)")
        return hit

    def set(self, key: str, response: Response) -> None:
        if not cacheable(response):
            return
        try:
            self._cache.set(key, encode(response))
        except Exception as exc:
            self.warn(f"cache write failed ({exc}); the run goes on")

    def close(self) -> None:
        self._cache.close()


class RedisCache:
    """A shared cache for CI fleets (redis-py). Any Redis failure switches this run over to
    the ``fallback`` (the disk cache) with one warning."""

    PREFIX = "promstack:"

    def __init__(self, url: str, ttl: int | None, fallback: DiskCache, warn: Warn) -> None:
        from ..util.redact import safe_url

        self.url, self.ttl, self.fallback, self.warn = url, ttl, fallback, warn
        self.shown = safe_url(url)  # what messages say: never the password
        self.down = False
        try:
            import redis
        except ImportError:  # the client is the optional "redis" extra
            self.down = True
            warn(f'Redis cache at {self.shown} needs the redis client: pip install "pytest-promstack[redis]"; '
                 "using the disk cache for this run")
            return
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            self._client.ping()
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if not self.down:
            self.down = True
            self.warn(f"Redis cache at {self.shown} is unreachable ({type(exc).__name__}: {exc}); "
                      "using the disk cache for the rest of this run")

    def get(self, key: str) -> Response | None:
        if not self.down:
            try:
                return decode(self._client.get(self.PREFIX + key))
            except Exception as exc:
                self._fail(exc)
        return self.fallback.get(key)

    def set(self, key: str, response: Response) -> None:
        if not cacheable(response):
            return
        if not self.down:
            try:
                self._client.set(self.PREFIX + key, encode(response), ex=self.ttl)
                return
            except Exception as exc:
                self._fail(exc)
        self.fallback.set(key, response)

    def close(self) -> None:
        if not self.down:
            with contextlib.suppress(Exception):
                self._client.close()
        self.fallback.close()


class Layered:
    """The working cache first, then the committed cassettes (read-only)."""

    def __init__(self, primary: Any, cassettes: dict[str, Response]) -> None:
        self.primary, self.cassettes = primary, cassettes

    def get(self, key: str) -> Response | None:
        hit = self.primary.get(key) if self.primary is not None else None
        return hit if hit is not None else self.cassettes.get(key)

    def set(self, key: str, response: Response) -> None:
        if self.primary is not None:
            self.primary.set(key, response)

    def close(self) -> None:
        if self.primary is not None:
            self.primary.close()


def _prepare(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(CACHEDIR_TAG, encoding="utf-8")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by pytest-promstack\n*\n", encoding="utf-8")


def _disk(directory: Path, warn: Warn) -> DiskCache | None:
    """The disk cache; a damaged one (not a database, a file where the folder goes) is moved
    aside with a warning and made anew, else the run goes on uncached."""
    try:
        return DiskCache(directory, warn)
    except Exception as exc:
        import time

        aside = directory.with_name(f"{directory.name}.damaged-{int(time.time())}")
        try:
            directory.rename(aside)
            fresh = DiskCache(directory, warn)
        except Exception:
            warn(f"cache {directory} cannot be used ({type(exc).__name__}: {exc}); this run is not cached")
            return None
        warn(f"cache {directory} was damaged ({type(exc).__name__}: {exc}); moved aside to {aside.name}, "
             "a new one is used")
        return fresh


def build_cache(settings: Any, warn: Warn) -> Layered:
    """Disk (or Redis over disk) as the working cache, with the suites' cassettes beneath."""
    from .cassettes import load

    s = settings
    primary: Any = None
    if s.cache_mode != CacheMode.OFF:
        primary = _disk(s.cache_dir, warn)
        if s.cache_url and primary is not None:
            primary = RedisCache(s.cache_url, s.cache_ttl, primary, warn)
    # the suites' cassettes, and the promstack fixture's own (cassettes/fixture.jsonl)
    names = [*s.suites, "fixture"]
    cassettes = (load(s.cassette_dir, names, record=s.cache_mode == CacheMode.RECORD, warn=warn)
                 if s.cache_mode.reads else {})
    return Layered(primary, cassettes)
