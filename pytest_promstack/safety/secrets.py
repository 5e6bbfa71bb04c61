"""Secret detectors (see ``detect.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .findings import HIGH, Detector, Finding

_OPENAI = re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")


def openai_keys(text: str) -> Iterator[Finding]:
    for m in _OPENAI.finditer(text):
        yield Finding(m.start(), m.end(), "OPENAI_KEY", m.group(), HIGH, "openai")


DETECTORS = [Detector("openai", ("OPENAI_KEY",), openai_keys)]
