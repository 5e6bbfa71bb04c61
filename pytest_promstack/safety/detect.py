"""The detectors as one call: ``find(text, types)`` runs the rules that report any of
``types`` and returns their findings without overlaps, left to right.

A detector is ``findings.Detector(name, types, fn)``: ``fn(text)`` yields ``Finding``s. The PII rules
live in ``pii.py``, the secret rules in ``secrets.py``; each is imported when a run first asks
for one of its types, so a run that never masks never loads ``phonenumbers``."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import replace

from .findings import PII, SECRETS, TYPES, Detector, Finding, resolve


def detectors(types: Sequence[str] = TYPES) -> list[Detector]:
    """The detectors that report any of ``types``."""
    return list(_detectors(tuple(types)))


@functools.lru_cache(maxsize=64)
def _detectors(types: tuple[str, ...]) -> tuple[Detector, ...]:
    wanted = set(types)
    found: list[Detector] = []
    for module in ("pii", "secrets"):
        if wanted & set(PII if module == "pii" else SECRETS):
            found += importlib.import_module(f"{__package__}.{module}").DETECTORS
    return tuple(d for d in found if wanted & set(d.types))


# what the rules read as ASCII: fullwidth forms (０１０－１２３４, ｓｋ－…), the ideographic space and
# the dashes people and word processors put in numbers (010–1234–5678); one character for one,
# so a finding's span is the same in the text as written
FOLD = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: 0x20,
        **dict.fromkeys((0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63), 0x2D)}


def find(text: str, types: Sequence[str] = TYPES, min_confidence: float = 0.0) -> list[Finding]:
    """Every finding of ``types`` in ``text`` at ``min_confidence`` or above, without overlaps. The
    rules read the text with ``FOLD`` applied; a finding's value is as written."""
    if not text:
        return []
    wanted = set(types)
    folded = text.translate(FOLD)
    found = resolve([f for d in _detectors(tuple(types)) for f in d.fn(folded)
                     if f.type in wanted and f.confidence >= min_confidence])
    if folded == text:
        return found
    return [replace(f, value=text[f.start:f.end]) for f in found]


def parse_types(value: object) -> tuple[str, ...]:
    """``"kr_rrn, phone"`` / ``["KR_RRN", "PHONE"]`` / ``"pii"`` / ``"secrets"`` -> type names.
    Raises ValueError naming an unknown type and the known ones."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    out: list[str] = []
    for item in (str(i).strip().upper().replace("-", "_") for i in items):
        if not item:
            continue
        group = {"PII": PII, "SECRETS": SECRETS, "ALL": TYPES}.get(item)
        if group is None and item not in TYPES:
            raise ValueError(f"unknown type {item!r}: use pii, secrets or any of {', '.join(TYPES)}")
        out += group or (item,)
    return tuple(dict.fromkeys(out))
