"""The JSONL log of every model call: append-only, one ``os.write`` per line, so concurrent
writers (threads, xdist workers) never interleave and an interrupted run leaves every
complete line valid."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..util.rotation import RetriesRotation, Retry, Rotation, compress_older, due, next_number, prune, rotated_name

FIELDS = ("timestamp", "run_id", "kind", "suite", "case_id", "prompt_id", "prompt_version", "model",
          "input_tokens", "output_tokens", "cost_usd", "latency_ms", "cached", "attempt", "attempts",
          "status", "status_code", "error", "user_id",
          # production monitoring: the application's session, the provider's model name, why it stopped
          "session_id", "litellm_model", "finish_reason")
GUARD_FIELDS = ("guard", "detail")  # a guard's line (kind "guard"): which guard, and why
NUMBER_WIDTH = 3  # calls.2026-11-30.001.jsonl: the names sort in time order up to 999 rotations a day


def user_id() -> str | None:
    """Who runs this: PROMSTACK_USER, else the CI actor, else the login name."""
    for var in ("PROMSTACK_USER", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    import getpass

    try:  # a container often sets no USER: the account's name, as the registry's author falls back to
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):
        return None


class CallLog(RetriesRotation):
    """``masking``: the run's masking settings when the call log is masked (an error text may
    quote the request), else None. ``rotate``: when the live file is renamed to
    ``calls.<day>.<n>.jsonl`` (util/rotation.py); ``clock``: the time of a line (tests).

    Writing never raises: a failed write is kept in ``failed`` (the first one) and the call goes
    on; ``unreported()`` hands it out once, for the one warning of a run or a client. A failed
    rotation drops no line: the line goes to the live file, the rotation is tried again a minute
    later, and ``unrotated`` (``unreported_rotation()``, once) says why."""

    def __init__(self, path: Path, run_id: str, user: str | None, masking: Any = None, *,
                 rotate: Rotation | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self.run_id = run_id
        self.user = user
        self.masking = masking
        self.rotate = rotate if rotate is not None and rotate.on else None
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None  # the UTC day of the live file's last line, when rotating
        self.failed: str | None = None
        self._reported = False
        self._retry = Retry()

    def write(self, **fields: Any) -> None:
        now = self.clock()
        record = {"timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "run_id": self.run_id, "kind": "model", "user_id": self.user}
        record.update(fields)
        if self.masking is not None and (record.get("error") or record.get("detail")):
            from ..safety.mask import Masker

            masker = Masker.of(self.masking)
            record.update({k: masker.mask(record[k]) for k in ("error", "detail") if record.get(k)})
        line = json.dumps({k: record.get(k) for k in (*FIELDS, *(k for k in GUARD_FIELDS if k in record))},
                          ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        data = line.encode("utf-8", "replace")
        with self._lock:
            try:
                fd, data = self._ready(data, now)
                os.write(fd, data)  # one write per line: O_APPEND keeps lines whole
                self._day = now.date().isoformat()
            except OSError as exc:
                self.failed = self.failed or f"{self.path}: {exc.strerror or exc}"
                self._close_fd()  # the next line tries again (the disk may have room by then)

    def unreported(self) -> str | None:
        """The first failed write, the first time it is asked for (one warning per run)."""
        if self.failed is None or self._reported:
            return None
        self._reported = True
        return self.failed

    def _ready(self, data: bytes, now: datetime) -> tuple[int, bytes]:
        """The descriptor to write ``data`` to, rotating first when due; ``data`` gains a
        newline in front when a killed run left half a line."""
        if self._fd is not None and self.rotate is not None and _moved(self.path, self._fd):
            self._close_fd()  # another writer rotated the file: follow it to the new one
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # a folder that takes no new file may still take our lines
                _ignore(self.path, rotated=self.rotate is not None)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day = last_day(self.path) if self.rotate is not None else None
            if _torn(self.path):  # a killed run left half a line: ours starts on a line of its own
                data = b"\n" + data
        if (self.rotate is not None and self._retry.allowed(now)
                and due(self.rotate, os.fstat(self._fd).st_size, len(data), self._day, now.date().isoformat())):
            self._rotate(self.rotate, len(data), now)
        if self._fd is None:  # the rotation closed it: the live file, new or as it was
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day = last_day(self.path)
        return self._fd, data

    def _rotate(self, rotate: Rotation, needed: int, now: datetime) -> None:
        """Rename the live file to its rotated name, under a lock that is never waited for:
        when another writer holds it, that writer rotates and this line goes to the old file.
        A rotation that fails (no lock file, the rename refused: an immutable folder) leaves
        the live file in place for this line and the next minute's."""
        from filelock import FileLock, Timeout

        today = now.date().isoformat()
        try:
            with FileLock(f"{self.path}.lock", timeout=0):
                self._close_fd()
                day = last_day(self.path)  # the file's own last line: another writer may have written since
                size = self.path.stat().st_size if self.path.exists() else 0
                if due(rotate, size, needed, day, today):
                    day = day or today
                    os.rename(self.path, rotated_name(self.path, day, next_number(self.path, day), NUMBER_WIDTH))
                    self._tidy(rotate)
        except Timeout:
            pass
        except OSError as exc:  # _ready opens the live file again (a failure there is a failed write)
            self._retry.refused(self.path, exc, now)

    def _tidy(self, rotate: Rotation) -> None:
        """After a rotation: the oldest files beyond ``keep`` go, the older ones are compressed
        (in a thread: a call never waits for gzip)."""
        prune(self.path, rotate.keep)
        if rotate.gzip:
            threading.Thread(target=compress_older, args=(self.path,), name="promstack-calllog-gzip").start()

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close_fd()


def _moved(path: Path, fd: int) -> bool:
    """True when ``path`` is no longer the file ``fd`` writes to (it was rotated)."""
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return True


def last_day(path: Path) -> str | None:
    """The UTC day (YYYY-MM-DD) of the last whole line of ``path``, read from its end; None
    for an empty or missing file."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - (1 << 16)))
            tail = f.read()
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")):
        try:
            stamp = json.loads(raw).get("timestamp")
        except (ValueError, AttributeError):
            continue
        if isinstance(stamp, str) and len(stamp) >= 10:
            return stamp[:10]
    return None


def _torn(path: Path) -> bool:
    """True when the file does not end with a newline (a writer was killed mid-line)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def read(path: Path, warn: Any = None) -> list[dict[str, Any]]:
    """The log's records; a line that is not a whole JSON object (a torn tail) is skipped,
    with one warning naming the file and line."""
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            out.append(record)
        elif line.strip() and warn is not None:
            warn(f"{path}:{n}: not a whole call record (a run killed mid-write?); skipped")
    return out


def _ignore(path: Path, rotated: bool = False) -> None:
    """Keep the log out of git by default: a .gitignore line beside it (in .promstack/); a
    rotated log's files and its lock too."""
    if path.parent.name != ".promstack":
        return
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    wanted = [path.name, *([f"{path.stem}.*{path.suffix}*", f"{path.name}.lock"] if rotated else [])]
    missing = [w for w in wanted if w not in lines]
    if missing:
        with ignore.open("a", encoding="utf-8") as f:
            f.write("".join(f"{w}\n" for w in missing))
