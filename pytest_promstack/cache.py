"""Response cache on disk (diskcache), values stored as JSON, never pickle.

The key is a sha256 over a versioned canonical JSON of everything that changes the answer:
model, endpoint, messages and every sampling parameter. Timeouts and keys are left out.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from .types import Response

KEY_VERSION = 1
NOT_IN_KEY = {"timeout", "api_key", "num_retries", "max_retries", "stream", "metadata"}
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-promstack.\n"
)


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any],
              api_base: str | None = None) -> str:
    """sha256 of the canonical request; equal requests give equal keys across runs."""
    body = {
        "v": KEY_VERSION,
        "model": model,
        "api_base": api_base,
        "messages": messages,
        "params": {k: v for k, v in params.items() if k not in NOT_IN_KEY},
    }
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def cacheable(response: Response) -> bool:
    """Errors and truncated answers are never cached."""
    return response.error is None and response.text is not None and response.finish_reason != "length"


class DiskCache:
    """diskcache.Cache holding JSON strings; a failed write is a warning, not a failure."""

    def __init__(self, directory: Path) -> None:
        import diskcache

        _prepare(directory)
        self.directory = directory
        self._cache = diskcache.Cache(str(directory), disk=diskcache.Disk)

    def get(self, key: str) -> Response | None:
        try:
            raw = self._cache.get(key)
        except Exception as exc:  # a damaged cache must not fail the run
            warnings.warn(f"promstack: cache read failed ({exc}); calling the model", stacklevel=2)
            return None
        if raw is None:
            return None
        try:
            return Response.from_json(json.loads(raw))
        except (ValueError, TypeError):
            return None

    def set(self, key: str, response: Response) -> None:
        if not cacheable(response):
            return
        data = response.to_json()
        data["cached"] = False
        try:
            self._cache.set(key, json.dumps(data, ensure_ascii=False))
        except Exception as exc:
            warnings.warn(f"promstack: cache write failed ({exc}); the run goes on", stacklevel=2)

    def close(self) -> None:
        self._cache.close()


def _prepare(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(CACHEDIR_TAG, encoding="utf-8")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by pytest-promstack\n*\n", encoding="utf-8")
