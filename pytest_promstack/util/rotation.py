"""Rotating an append-only JSONL log (the call log, the audit trail): when it is due, the
rotated files' names, finding them again as one set in time order, keeping the newest few,
and compressing the older ones.

A rotated file is named ``<stem>.<day>.<n><suffix>`` (``calls.2026-11-30.001.jsonl``): ``day``
is the UTC day of its last line, ``n`` counts rotated files (per day, or over the whole set as
the audit trail does). Compressed, it gains ``.gz``. The live file keeps its own name.

A rotation that fails (the rename refused: a folder made immutable, a permission taken away)
loses no line: the writer appends to the live file and tries the rotation again a minute later
(``Retry``), so no line pays for a rename that fails."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

RETRY = timedelta(minutes=1)  # after a failed rotation, the next try (the messages say "a minute")


@dataclass(frozen=True)
class Rotation:
    """When the live file is renamed: past ``max_bytes``, and (``daily``) at a new UTC day;
    ``keep``: how many rotated files stay (the oldest are removed; None: all); ``gzip``: the
    rotated files before the newest are compressed."""

    max_bytes: int | None = None
    daily: bool = False
    keep: int | None = None
    gzip: bool = False

    @property
    def on(self) -> bool:
        return self.max_bytes is not None or self.daily


class Retry:
    """When a writer whose rotation failed tries again: not before ``RETRY`` has passed (the
    lines go on to the live file meanwhile). ``failed``: the first failure, for the writer's one
    warning, which ``unreported()`` hands out once."""

    def __init__(self) -> None:
        self.failed: str | None = None
        self._until: datetime | None = None
        self._reported = False

    def allowed(self, now: datetime) -> bool:
        # a clock set back (the system's) holds rotation off no longer than RETRY either
        return self._until is None or not self._until - RETRY <= now < self._until

    def refused(self, path: Path, exc: OSError, now: datetime) -> None:
        self._until = now + RETRY
        self.failed = self.failed or (f"{path}: {exc.strerror or exc}; its lines go on to it, and the rotation "
                                      "is tried again a minute later")

    def unreported(self) -> str | None:
        if self.failed is None or self._reported:
            return None
        self._reported = True
        return self.failed


class RetriesRotation:
    """A rotating writer's report of a failed rotation (its ``_retry``: a ``Retry``)."""

    _retry: Retry

    @property
    def unrotated(self) -> str | None:
        """The first failed rotation (the lines went on to the live file)."""
        return self._retry.failed

    def unreported_rotation(self) -> str | None:
        """The first failed rotation, the first time it is asked for (one warning per run)."""
        return self._retry.unreported()


def due(rotation: Rotation, size: int, needed: int, last_day: str | None, today: str) -> bool:
    """True when a file of ``size`` bytes whose last line is of ``last_day`` is rotated before
    ``needed`` more bytes are written on ``today`` (an empty file never is)."""
    if size <= 0:
        return False
    full = rotation.max_bytes is not None and size + needed > rotation.max_bytes
    return full or (rotation.daily and last_day is not None and last_day < today)


def rotated_name(path: Path, day: str, n: int, width: int = 1) -> Path:
    return path.with_name(f"{path.stem}.{day}.{n:0{width}d}{path.suffix}")


def _pattern(path: Path, gz: bool) -> re.Pattern[str]:
    tail = r"(?:\.gz)?" if gz else ""
    return re.compile(rf"{re.escape(path.stem)}\.(\d{{4}}-\d{{2}}-\d{{2}})\.(\d+){re.escape(path.suffix)}{tail}")


def rotated_files(path: Path, gz: bool = True) -> list[tuple[str, int, Path]]:
    """The rotated files of ``path`` as (day, number, file), oldest first (``.gz`` ones too
    unless ``gz=False``)."""
    pattern = _pattern(path, gz)
    try:
        found = [(m.group(1), int(m.group(2)), p) for p in path.parent.iterdir()
                 if (m := pattern.fullmatch(p.name))]
    except OSError:
        return []
    return sorted(found, key=lambda f: (f[0], f[1], f[2].name.endswith(".gz")))


def next_number(path: Path, day: str | None = None) -> int:
    """The next rotated file's number: one past the highest of ``day`` (None: of the whole set)."""
    return max((n for d, n, _ in rotated_files(path) if day is None or d == day), default=0) + 1


def prune(path: Path, keep: int | None) -> None:
    """Remove the oldest rotated files beyond the newest ``keep``."""
    if keep is None:
        return
    files = rotated_files(path)
    for _, _, old in files[:max(0, len(files) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()


def compress_older(path: Path) -> None:
    """gzip every rotated file but the newest (a writer that had it open may still add a line
    to the newest one): ``x.jsonl`` -> ``x.jsonl.gz``, written beside it and renamed, so a
    reader sees either file whole."""
    import gzip
    import shutil

    plain = [p for _, _, p in rotated_files(path) if not p.name.endswith(".gz")]
    newest = rotated_files(path)[-1][2] if plain else None
    for p in plain:
        if p == newest:
            continue
        part = p.with_name(p.name + ".gz.part")
        try:
            with p.open("rb") as src, gzip.open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(part, p.with_name(p.name + ".gz"))
            p.unlink()
        except OSError:
            with contextlib.suppress(OSError):
                part.unlink()
