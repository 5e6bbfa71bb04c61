"""Run settings' enumerations and limits, light enough for the command-line parsers to import."""

from __future__ import annotations

CACHE_MODES = ("use", "off", "refresh", "replay", "record")
MAX_REPEAT = 1000  # runs per case, for --promstack-repeat and the config's repeat: alike
