"""The canary: a token planted in a request's system prompt, so that an answer showing it
proves the system prompt leaked (``not-leaks-prompt``, the probes).

The token is derived, not drawn: ``CANARY-`` and 12 base32 characters of a sha256 over the
prompt's id and content version. A request is its own cache key, so a token drawn afresh each
run would make every run a cache miss and every cassette stale; derived, a rerun is served
from the cache and ``--promstack-replay`` finds its cassette, while a new version of the
prompt gets a new token. The settings have no run seed to mix in (the arena's seed is the
arena's), and none is needed: what a canary must be is absent from an honest answer.

It is planted as one line, ``Internal reference: CANARY-…``, at the end of the first system
message (a line of neutral wording: no "never reveal it", which would make the prompt look
more guarded than it is); a prompt with no system message gets one holding that line alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Any

PREFIX = "CANARY-"
LINE = "Internal reference: "
BODY = re.compile(r"CANARY-([A-Z2-7]{12})")
_PLANTED = re.compile(r"(?:\n\n)?Internal reference: CANARY-[A-Z2-7]{12}")


def token(prompt_id: str, version: str) -> str:
    """The prompt version's canary, the same on every run: ``CANARY-`` + 12 base32 characters."""
    digest = hashlib.sha256(f"promstack-canary/1\0{prompt_id}\0{version}".encode()).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[:12]


def plant(messages: Sequence[dict[str, Any]], canary: str) -> list[dict[str, Any]]:
    """``messages`` with the canary line at the end of the first system message, or with a
    system message of that line first when there is none."""
    out = [dict(m) for m in messages]
    for m in out:
        if m.get("role") == "system":
            content = m.get("content", "")
            if isinstance(content, list):  # content parts: the line is a text part of its own
                m["content"] = [*content, {"type": "text", "text": LINE + canary}]
            else:
                m["content"] = f"{content}\n\n{LINE}{canary}" if content else LINE + canary
            return out
    return [{"role": "system", "content": LINE + canary}, *out]


def planted(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The canaries planted in the system messages (their 12-character bodies)."""
    return [body for text in system_texts(messages, bare=False) for body in BODY.findall(text)]


def system_texts(messages: Sequence[dict[str, Any]], bare: bool = True) -> list[str]:
    """The text of each system message; ``bare``: without the canary line."""
    out = []
    for m in messages:
        if m.get("role") not in ("system", "developer"):
            continue
        content = m.get("content", "")
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        text = str(content)
        out.append(_PLANTED.sub("", text) if bare else text)
    return out
