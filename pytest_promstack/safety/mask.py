"""Masking: each detected value replaced by a typed placeholder, ``<KR_RRN_1>``.

One ``Masker`` serves one case (or one SDK call): the same value gets the same placeholder
in every text it masks (its prompt, its answer, its assertions' reasons, its turns), numbered
per type in order of first sight. ``hashed=True`` writes a digest instead of a number
(``<EMAIL_3f2a9c1b0d>``), the same for a value across cases and runs, so an audit reader can
tell that two calls carried the same address without seeing it; with ``PROMSTACK_MASK_SALT``
set, the digest is keyed with it (a phone number's digest alone could be found by trying them
all). ``restore`` puts the values back (the reply of a masked request, for its caller).

A placeholder already in a text is left alone: masking twice changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Any

from .detect import find
from .findings import MEDIUM, TYPES, Finding

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*[A-Z])_(\d+|[0-9a-f]{10})>")


class Masker:
    def __init__(self, types: Sequence[str] = TYPES, *, hashed: bool = False, min_confidence: float = MEDIUM) -> None:
        self.types = tuple(types)
        self.hashed = hashed
        self.min_confidence = min_confidence
        self.placeholders: dict[str, str] = {}  # value -> placeholder
        self.values: dict[str, str] = {}  # placeholder -> value
        self._counts: dict[str, int] = {}
        self.findings: list[Finding] = []  # every finding masked, in the order seen

    @classmethod
    def of(cls, masking: Any) -> Masker:
        """The masker of a run's ``masking`` settings (config/settings.Masking)."""
        return cls(masking.types, hashed=masking.hashed, min_confidence=masking.min_confidence)

    def mask(self, text: str) -> str:
        if not text or not self.types:
            return text
        found = find(text, self.types, self.min_confidence)
        if not found:
            return text
        out, at = [], 0
        for f in found:
            out += [text[at:f.start], self._placeholder(f)]
            at = f.end
        self.findings += found
        return "".join(out) + text[at:]

    def _placeholder(self, f: Finding) -> str:
        if f.value in self.placeholders:
            return self.placeholders[f.value]
        if self.hashed:
            salt = os.environ.get("PROMSTACK_MASK_SALT", "").encode("utf-8")
            digest = (hmac.new(salt, f.value.encode("utf-8"), hashlib.sha256) if salt
                      else hashlib.sha256(f.value.encode("utf-8"))).hexdigest()[:10]
            name = f"<{f.type}_{digest}>"
        else:
            self._counts[f.type] = self._counts.get(f.type, 0) + 1
            name = f"<{f.type}_{self._counts[f.type]}>"
        self.placeholders[f.value] = name
        self.values[name] = f.value
        return name

    def restore(self, text: str | None) -> str | None:
        """``text`` with this masker's placeholders turned back into their values (others left)."""
        if not text or not self.values:
            return text
        return PLACEHOLDER.sub(lambda m: self.values.get(m.group(), m.group()), text)

    def mask_json(self, value: Any, keep: frozenset[str] = frozenset()) -> Any:
        """Every string in a JSON value masked (a mapping's keys in ``keep`` left as they are)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: v if k in keep else self.mask_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_json(v) for v in value]
        return value


def placeholders_in(text: str, types: Sequence[str] = TYPES) -> list[re.Match[str]]:
    """The masking placeholders of ``types`` in ``text`` (masked PII in a replayed answer)."""
    wanted = set(types)
    return [m for m in PLACEHOLDER.finditer(text or "") if m.group(1) in wanted]
