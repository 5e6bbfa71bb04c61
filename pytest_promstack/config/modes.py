"""Run settings' enumerations and limits, light enough for the command-line parsers to import."""

from __future__ import annotations

from enum import StrEnum


class CacheMode(StrEnum):
    """How a run uses stored answers (``cache.mode``, ``--promstack-cache``)."""

    USE = "use"  # answer from the cache when it can, call and store otherwise
    OFF = "off"  # call every time, store nothing
    REFRESH = "refresh"  # call every time, store the new answers
    REPLAY = "replay"  # answer only from the cache and cassettes: a miss fails, nothing is called
    RECORD = "record"  # like use, and rewrite the cassettes of the cases that ran

    @property
    def reads(self) -> bool:
        """Stored answers are used."""
        return self in (CacheMode.USE, CacheMode.REPLAY, CacheMode.RECORD)

    @property
    def writes(self) -> bool:
        """New answers are stored."""
        return self not in (CacheMode.OFF, CacheMode.REPLAY)


CACHE_MODES = tuple(m.value for m in CacheMode)
MAX_REPEAT = 1000  # runs per case, for --promstack-repeat and the config's repeat: alike
REGISTRY_MODES = ("auto", "write", "readonly")
