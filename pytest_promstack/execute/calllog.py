"""The JSONL log of every model call: append-only, one ``os.write`` per line, so concurrent
writers (threads, xdist workers) never interleave and an interrupted run leaves every
complete line valid."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIELDS = ("timestamp", "run_id", "kind", "suite", "case_id", "prompt_id", "prompt_version", "model",
          "input_tokens", "output_tokens", "cost_usd", "latency_ms", "cached", "attempt", "attempts",
          "status", "status_code", "error", "user_id")
GUARD_FIELDS = ("guard", "detail")  # a guard's line (kind "guard"): which guard, and why


def user_id() -> str | None:
    """Who runs this: PROMSTACK_USER, else the CI actor, else the login name."""
    for var in ("PROMSTACK_USER", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    return None


class CallLog:
    """``masking``: the run's masking settings when the call log is masked (an error text may
    quote the request), else None."""

    def __init__(self, path: Path, run_id: str, user: str | None, masking: Any = None) -> None:
        self.path = path
        self.run_id = run_id
        self.user = user
        self.masking = masking
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.failed: str | None = None

    def write(self, **fields: Any) -> None:
        record = {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "run_id": self.run_id, "kind": "model", "user_id": self.user}
        record.update(fields)
        if self.masking is not None and (record.get("error") or record.get("detail")):
            from ..safety.mask import Masker

            masker = Masker.of(self.masking)
            record.update({k: masker.mask(record[k]) for k in ("error", "detail") if record.get(k)})
        line = json.dumps({k: record.get(k) for k in (*FIELDS, *(k for k in GUARD_FIELDS if k in record))},
                          ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            try:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    _ignore(self.path)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    if _torn(self.path):  # a killed run left half a line: ours starts on a line of its own
                        data = b"\n" + data
                os.write(self._fd, data)  # one write per line: O_APPEND keeps lines whole
            except OSError as exc:
                self.failed = f"{self.path}: {exc.strerror}"

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


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


def _ignore(path: Path) -> None:
    """Keep the log out of git by default: a .gitignore line beside it (in .promstack/)."""
    if path.parent.name != ".promstack":
        return
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if path.name not in lines:
        with ignore.open("a", encoding="utf-8") as f:
            f.write(f"{path.name}\n")
