"""PII detectors (see ``detect.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .findings import HIGH, Detector, Finding

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", re.ASCII)


def emails(text: str) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text):
        yield Finding(m.start(), m.end(), "EMAIL", m.group(), HIGH, "email")


DETECTORS = [Detector("email", ("EMAIL",), emails)]
