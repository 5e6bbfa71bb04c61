"""Keys go only where they are named and are never written: every key value the run reads
(the environment variables that models' ``api_key_env`` name) and the passwords in URLs
(an ``api_base`` with ``user:pass@``, a Redis URL) are replaced by ``sk-…[redacted]`` in
what a provider sends back before it reaches the terminal, JUnit, the results JSON, the
HTML report, the call log, the cache or a cassette."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MIN_SECRET = 6  # shorter values would blank out ordinary words


def url_password(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def safe_url(url: str) -> str:
    """``redis://:hunter2@host:6379/0`` -> ``redis://:…[redacted]@host:6379/0``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":…[redacted]@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def secrets_of(settings: Any) -> tuple[str, ...]:
    """The key values and URL passwords this run could read, longest first."""
    found: set[str] = set()
    for spec in settings.models.values():
        if spec.api_key_env and os.environ.get(spec.api_key_env):
            found.add(os.environ[spec.api_key_env])
        found.add(url_password(spec.api_base) or "")
    found.add(url_password(getattr(settings, "cache_url", None)) or "")
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True))


class Redactor:
    """Replaces each secret (and its URL-encoded form) in a text; a no-op without secrets."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        from urllib.parse import quote

        forms = sorted({form for s in secrets for form in (s, quote(s, safe=""))}, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(f) for f in forms)) if forms else None

    def __call__(self, text: str | None) -> str | None:
        if text is None or self.pattern is None:
            return text
        return self.pattern.sub(lambda m: m.group(0)[:3] + "…[redacted]", text)
