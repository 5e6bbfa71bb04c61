"""Masking: each detected value replaced by a typed placeholder, ``<KR_RRN_1>``.

One ``Masker`` serves one case (or one SDK call): the same value gets the same placeholder
in every text it masks (its prompt, its answer, its assertions' reasons, its turns), numbered
per type in order of first sight. A value is known by its canonical form, so one phone number
written ``010-1234-5678``, ``01012345678`` and ``+82 10 1234 5678`` is one placeholder, as is a
card with or without its spaces. Once seen, a value is masked wherever it appears again in the
masker's texts, even where no rule would find it on its own (a name without its title word),
and so is the part of it left before a cut (``'…900101-12345…'``: a reason shows the output cut
at a length, which can cut a value in two). ``hashed=True`` writes a digest instead of a number
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

from .detect import FOLD, find
from .findings import MEDIUM, TYPES, Finding

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*[A-Z])_(\d+|[0-9a-f]{10})>")


class Masker:
    def __init__(self, types: Sequence[str] = TYPES, *, hashed: bool = False, min_confidence: float = MEDIUM) -> None:
        self.types = tuple(types)
        self.hashed = hashed
        self.min_confidence = min_confidence
        self.placeholders: dict[str, str] = {}  # canonical value -> placeholder
        self.values: dict[str, str] = {}  # placeholder -> the value as first written
        self._seen: dict[str, str] = {}  # every form a value was written in -> its placeholder
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
        if found:
            out, at = [], 0
            for f in found:
                cut = text.startswith("…", f.end) and self._begun(f.value)  # a seen value, cut short here
                out += [text[at:f.start], cut or self._placeholder(f)]
                at = f.end
            self.findings += found
            text = "".join(out) + text[at:]
        return self._known(text) if self._seen else text

    def _known(self, text: str) -> str:
        """``text`` with the values seen before masked where they appear whole, and a value's
        beginning masked where a cut (``…``) ends it."""
        forms = sorted((v for v in self._seen if len(v) >= MIN_KNOWN), key=len, reverse=True)
        for form in forms:
            if form in text:
                text = text.replace(form, self._seen[form])
        return self._cuts(text) if "…" in text else text

    def _cuts(self, text: str) -> str:
        """Each ``…`` that cuts a seen value: the value's beginning before it masked."""
        out, at = [], 0
        for cut in (i for i, c in enumerate(text) if c == "…"):
            start, name = self._cut_start(text, cut)
            if name is not None and start >= at:
                out += [text[at:start], name]
                at = cut
        return "".join(out) + text[at:] if out else text

    def _cut_start(self, text: str, cut: int) -> tuple[int, str | None]:
        """Where the longest beginning of a seen value that ends at ``cut`` starts, and its
        placeholder (``(cut, None)``: no value ends there cut)."""
        best, found = cut, None
        for form, name in self._seen.items():
            for k in range(min(len(form) - 1, cut), MIN_CUT - 1, -1):
                if text[cut - k:cut] == form[:k]:
                    if cut - k < best:
                        best, found = cut - k, name
                    break
        return best, found

    def _begun(self, part: str) -> str | None:
        """The placeholder of the seen value that ``part`` begins, if any."""
        return next((name for form, name in self._seen.items() if form.startswith(part) and form != part), None)

    def _placeholder(self, f: Finding) -> str:
        key = canonical(f.type, f.value)
        name = self.placeholders.get(key)
        if name is None:
            if self.hashed:
                salt = os.environ.get("PROMSTACK_MASK_SALT", "").encode("utf-8")
                digest = (hmac.new(salt, key.encode("utf-8"), hashlib.sha256) if salt
                          else hashlib.sha256(key.encode("utf-8"))).hexdigest()[:10]
                name = f"<{f.type}_{digest}>"
            else:
                self._counts[f.type] = self._counts.get(f.type, 0) + 1
                name = f"<{f.type}_{self._counts[f.type]}>"
            self.placeholders[key] = name
            self.values[name] = f.value
        self._seen[f.value] = name
        shown = repr(f.value)[1:-1]  # as a reason shows it: repr() escapes U+3000, a no-break space, …
        if shown != f.value:
            self._seen[shown] = name
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


MIN_KNOWN = 3  # a seen value this long or longer is masked wherever it appears again
MIN_CUT = 4  # the shortest beginning of a value masked before a cut
_SEPARATORS = re.compile(r"[\s().\-–—/_]")


def canonical(kind: str, value: str) -> str:
    """The form a value is known by: a number without its separators (a Korean phone number in
    its national form, ``+82 10…`` as ``010…``), an address or a key as written, an e-mail
    address case-folded."""
    value = value.translate(FOLD)
    if kind == "EMAIL":
        return value.casefold()
    if kind in ("PHONE", "KR_RRN", "KR_FRN", "CREDIT_CARD", "US_SSN", "IBAN"):
        digits = _SEPARATORS.sub("", value).upper()
        if kind == "PHONE" and digits.startswith("+82"):
            digits = "0" + digits[3:].removeprefix("0")
        elif kind == "PHONE" and digits.startswith("82") and not value.lstrip().startswith("0"):
            digits = "0" + digits[2:].removeprefix("0")
        return digits
    return value


def placeholders_in(text: str, types: Sequence[str] = TYPES) -> list[re.Match[str]]:
    """The masking placeholders of ``types`` in ``text`` (masked PII in a replayed answer)."""
    wanted = set(types)
    return [m for m in PLACEHOLDER.finditer(text or "") if m.group(1) in wanted]
