"""The one cache key: a sha256 over a versioned canonical JSON of everything that changes
the answer (model, endpoint, messages, every sampling parameter); timeouts and keys left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = 1


NOT_IN_KEY = {"timeout", "api_key", "num_retries", "max_retries", "stream", "metadata", "drop_params",
              "input_cost_per_token", "output_cost_per_token"}


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any],
              api_base: str | None = None, repeat: int = 0, extra: dict[str, Any] | None = None) -> str:
    """sha256 of the canonical request; equal requests give equal keys across runs.
    ``repeat`` (the repeat index) and ``extra`` (a Python target's vars) join only when set."""
    body: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": model,
        "api_base": api_base,
        "messages": messages,
        "params": {k: v for k, v in params.items() if k not in NOT_IN_KEY},
    }
    if repeat:
        body["repeat"] = repeat
    if extra:
        body["extra"] = extra
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
