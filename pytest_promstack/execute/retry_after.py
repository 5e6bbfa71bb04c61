"""A server's ``Retry-After`` / ``retry-after-ms``, in seconds."""

from __future__ import annotations

import contextlib
import email.utils
import time
from typing import Any


def parse_retry_after(headers: Any) -> float | None:
    """``retry-after-ms`` (milliseconds), else ``Retry-After`` in seconds or as an HTTP date."""
    if headers is None:
        return None
    get = headers.get
    ms = get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None
