"""Response caches, all holding the same JSON values under the same keys (never pickle):
diskcache on disk (default), Redis for fleets of CI runners, and committed cassettes.

The key is a sha256 over a versioned canonical JSON of everything that changes the answer:
model, endpoint, messages and every sampling parameter. Timeouts and keys are left out.
A failing cache is reported as a warning and never fails the run.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config.modes import CacheMode
from ..model.types import Request, Response
from .stored import cacheable, decode, encode

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-promstack.\n"
)
Warn = Callable[[str], None]


class Unsafe(Exception):
    """A cache row that is not what promstack writes: pickled (unpickling it could run code),
    or naming a file that diskcache did not name (it could be anywhere on the disk)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind, self.detail = kind, detail
        super().__init__(detail or kind)


# what diskcache names a value file of its own: two levels of hex folders, 28 hex digits
VALUE_FILE = re.compile(r"[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val")


def _json_disk(directory: Path) -> type:
    """diskcache's Disk for our JSON strings, in ``directory`` only. We write a string, which
    diskcache keeps in its row (mode raw) or, from 32 KiB, in a value file of its own naming
    (mode text). Any other row is refused when read (``Unsafe``: a miss), and a row's file is
    deleted (expiry, cull, overwrite) only when it is such a value file inside ``directory``:
    a row naming ``/home/me/.ssh/id_rsa`` or ``../../x`` deletes nothing."""
    import diskcache

    root = os.path.realpath(directory)

    def ours(filename: Any) -> bool:
        if not isinstance(filename, str) or not VALUE_FILE.fullmatch(filename):
            return False
        full = os.path.realpath(os.path.join(root, filename))  # a symlinked folder may not lead out
        return full.startswith(root + os.sep)

    class JSONDisk(diskcache.Disk):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.refused: list[str] = []  # files a row asked us to delete, which we did not

        def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
            if mode == diskcache.core.MODE_PICKLE:
                raise Unsafe("pickle")
            raw = mode == diskcache.core.MODE_RAW and filename is None
            text = mode == diskcache.core.MODE_TEXT and value is None and ours(filename)
            if read or not (raw or text):
                raise Unsafe("file", f"mode {mode!r}, {repr(filename)[:120]}")
            return super().fetch(mode, filename, value, read)

        def remove(self, file_path: Any) -> None:
            if ours(file_path):
                super().remove(file_path)
            else:
                self.refused.append(repr(file_path)[:120])

    return JSONDisk


def _check_settings(directory: Path) -> None:
    """diskcache applies every row of its Settings table as an attribute of the cache (and as a
    PRAGMA): a tampered ``_directory`` row would open a database anywhere. A key that is not
    one of diskcache's own settings makes the cache unusable (it is moved aside)."""
    import sqlite3

    import diskcache

    db = directory / "cache.db"
    if not db.is_file():
        return
    known = {*diskcache.core.DEFAULT_SETTINGS, *diskcache.core.METADATA}
    con = sqlite3.connect(str(db), timeout=10)
    try:
        keys = [k for (k,) in con.execute("SELECT key FROM Settings")]
    except sqlite3.OperationalError:  # no Settings table yet: diskcache makes it
        return
    finally:
        con.close()
    foreign = [k for k in keys if k not in known]
    if foreign:
        raise Unsafe("settings", f"the Settings table has {repr(foreign[0])[:60]}, which is not a diskcache setting")


class DiskCache:
    """diskcache.Cache holding JSON strings (never pickle, also when reading)."""

    def __init__(self, directory: Path, warn: Warn) -> None:
        import diskcache

        _prepare(directory)
        self.directory = directory
        self.warn = warn
        self._warned: set[str] = set()
        _check_settings(directory)
        self._cache = diskcache.Cache(str(directory), disk=_json_disk(directory))

    def _security(self, kind: str, what: str) -> None:
        """One warning per kind and run: a tampered cache may hold thousands of such rows."""
        if kind not in self._warned:
            self._warned.add(kind)
            self.warn(f"security: {what}. Delete the cache folder if you did not put it there")

    def get(self, key: str) -> Response | None:
        return self._read(self._cache.get, key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Response]:
        """The stored answers of ``keys`` (a miss is left out), a few hundred rows a query:
        diskcache's ``get`` costs more in its own bookkeeping than reading the row, and a warm
        run reads one row a case. Each row is vetted exactly as ``get`` vets it (``JSONDisk``,
        ``decode``), with diskcache's select (its key, not expired). When the cache counts its
        reads (statistics, an eviction policy that records them) or the query fails, each key
        is read with ``get``, which does that bookkeeping."""
        rows = self._rows(keys)
        if rows is None:
            return {key: hit for key in dict.fromkeys(keys) if (hit := self.get(key)) is not None}
        fetch = self._cache.disk.fetch
        return {key: hit for key, mode, filename, value in rows
                if (hit := self._read(_fetched, fetch, mode, filename, value)) is not None}

    def _rows(self, keys: Sequence[str]) -> list[tuple[Any, ...]] | None:
        import time

        from diskcache.core import EVICTION_POLICY

        cache = self._cache
        try:
            if cache.statistics or EVICTION_POLICY[cache.eviction_policy]["get"] is not None:
                return None
            rows: list[tuple[Any, ...]] = []
            unique = list(dict.fromkeys(keys))
            for at in range(0, len(unique), 500):  # within SQLite's limit of parameters
                chunk = unique[at:at + 500]
                rows += cache._sql(  # a text key is stored as it is (raw = 1)
                    "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key IN "
                    f"({','.join('?' * len(chunk))}) AND (expire_time IS NULL OR expire_time > ?)",
                    (*chunk, time.time())).fetchall()
        except Exception:  # another diskcache than ours was written for
            return None
        return rows

    def _read(self, read: Callable[..., Any], *args: Any) -> Response | None:
        try:
            raw = read(*args)
        except Unsafe as exc:
            if exc.kind == "pickle":
                self._security("pickle", f"a row of the cache {self.directory} is pickled, which promstack never "
                                         "writes; it was not read (a miss)")
            else:
                self._security("file", f"the cache {self.directory} names a file in a row ({exc.detail}), which "
                                       "promstack never writes; it was not read (a miss)")
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
        refused, self._cache.disk.refused = self._cache.disk.refused, []
        if refused:
            self._security("remove", f"the cache {self.directory} names a file {refused[0]}, which promstack never "
                                     "writes, for diskcache to delete (an expired row); it was not deleted")

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

    def get(self, key: str, request: Request | None = None, primary: bool = True) -> Response | None:
        """The answer under ``key``. With the live ``request``, a cassette entry answers only
        when it was recorded for that request (see ``cassettes.Cassettes.answer``).
        ``primary=False``: the working cache was asked already (``get_many``)."""
        hit = self.primary.get(key) if self.primary is not None and primary else None
        if hit is not None:
            return hit
        answer = getattr(self.cassettes, "answer", None)
        return answer(request) if answer is not None and request is not None else self.cassettes.get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Response] | None:
        """The working cache's answers of ``keys`` read at once, or None when it cannot (Redis,
        none): ``get`` asks it then."""
        get_many = getattr(self.primary, "get_many", None)
        return get_many(keys) if get_many is not None else None

    def set(self, key: str, response: Response) -> None:
        if self.primary is not None:
            self.primary.set(key, response)

    def close(self) -> None:
        if self.primary is not None:
            self.primary.close()


def _fetched(fetch: Callable[..., Any], mode: int, filename: Any, value: Any) -> Any:
    """A row's value, as diskcache's ``get`` reads it: a value file deleted meanwhile is a miss."""
    try:
        return fetch(mode, filename, value, False)
    except OSError:
        return None


def _prepare(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(CACHEDIR_TAG, encoding="utf-8")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by pytest-promstack\n*\n", encoding="utf-8")


def _ours(directory: Path) -> bool:
    """An empty folder, or one this package made (its CACHEDIR.TAG)."""
    tag = directory / "CACHEDIR.TAG"
    try:
        if tag.is_file():
            return "pytest-promstack" in tag.read_text(encoding="utf-8", errors="replace")
        return not any(directory.iterdir())
    except OSError:
        return False


def _disk(directory: Path, warn: Warn) -> DiskCache | None:
    """The disk cache; a damaged one (not a database, a file where the folder goes) is moved
    aside with a warning and made anew, else the run goes on uncached. A folder of other files
    (``cache.dir: src``) is never used, written to or moved: this run is not cached."""
    if directory.is_dir() and not _ours(directory):
        warn(f"cache {directory} is a folder of other files, not a promstack cache (no CACHEDIR.TAG of ours): "
             "it is left as it is and this run is not cached; name a new folder in cache.dir "
             "(default .promstack/cache)")
        return None
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
        why = f"security: {exc}" if isinstance(exc, Unsafe) else f"{type(exc).__name__}: {exc}"
        warn(f"cache {directory} was damaged ({why}); moved aside to {aside.name}, a new one is used")
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
    masking = s.masking if s.masking.on("cassettes") else None
    cassettes = (load(s.cassette_dir, names, record=s.cache_mode == CacheMode.RECORD, warn=warn, masking=masking)
                 if s.cache_mode.reads else {})
    return Layered(primary, cassettes)
