"""Keys go only where they are named and are never written: every key value the run reads
(the environment variables that models' ``api_key_env`` name) and the passwords in URLs
(an ``api_base`` with ``user:pass@``, also in the base64 form its Basic-auth header takes;
a Redis URL's ``:pass@`` or ``?password=``) are replaced by ``sk-…[redacted]`` in what a
provider sends back before it reaches the terminal, JUnit, the results JSON, the
HTML report, the call log, the cache or a cassette."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

MIN_SECRET = 6  # shorter values would blank out ordinary words
QUERY_PASSWORD = re.compile(r"(?i)((?:^|[&;])password=)([^&;#]*)")  # redis://host/0?password=...


def url_secrets(url: str | None) -> set[str]:
    """What of a URL must never be shown: the password of ``user:password@`` (as written and
    percent-decoded), the HTTP Basic-auth forms of it (base64 of ``user:password``, which a
    server may echo from the Authorization header), a ``?password=`` value, and a user name
    given alone (``https://TOKEN@host``: a token)."""
    try:
        parts = urlsplit(url) if url else None
    except ValueError:
        return set()
    if parts is None:
        return set()
    found: set[str] = set()
    if parts.password is not None or parts.username:
        users = {parts.username or "", unquote(parts.username or "")}
        passwords = {parts.password or "", unquote(parts.password or "")}
        found |= passwords if parts.password else users
        found |= {_basic(u, p, codec) for u in users for p in passwords for codec in ("utf-8", "latin-1")} - {""}
    for m in QUERY_PASSWORD.finditer(parts.query):
        found |= {m.group(2), unquote_plus(m.group(2))}
    return found


def _basic(user: str, password: str, codec: str) -> str:
    """The credentials as an ``Authorization: Basic`` header carries them ('' if ``codec``
    cannot encode them; aiohttp encodes latin-1, most servers' examples UTF-8)."""
    import base64

    try:
        return base64.b64encode(f"{user}:{password}".encode(codec)).decode("ascii")
    except UnicodeEncodeError:
        return ""


def safe_url(url: str) -> str:
    """``redis://:hunter2@host:6379/0`` -> ``redis://:…[redacted]@host:6379/0``, and
    ``redis://host/0?password=hunter2`` -> ``redis://host/0?password=…[redacted]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and parts.password is not None:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:…[redacted]@{host}")
    elif at and userinfo:  # a user name alone is a token
        parts = parts._replace(netloc=f"…[redacted]@{host}")
    query = QUERY_PASSWORD.sub(lambda m: m.group(1) + "…[redacted]", parts.query)
    return urlunsplit(parts._replace(query=query))


def secrets_of(settings: Any) -> tuple[str, ...]:
    """The key values and URL passwords this run could read, longest first."""
    found: set[str] = set()
    for spec in settings.models.values():
        if spec.api_key_env and os.environ.get(spec.api_key_env):
            found.add(os.environ[spec.api_key_env])
        found |= url_secrets(spec.api_base)
    found |= url_secrets(getattr(settings, "cache_url", None))
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
