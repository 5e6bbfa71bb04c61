"""Invisible characters: what a reader cannot see but a model reads.

``hidden(text)`` finds them in runs, each with its kind and, where the run smuggles text,
the text it spells:

- ``zero-width``: U+200B-U+200D, U+2060 (word joiner), U+FEFF (not as a text's first
  character, where it is a byte-order mark). A zero-width joiner between two emoji
  (👩‍💻) and a zero-width (non-)joiner between two letters of a script that shapes with
  them (Arabic, Persian, the Indic scripts) are writing, not hiding, and pass.
- ``bidi``: the bidirectional controls U+202A-U+202E, U+2066-U+2069, U+200E, U+200F and
  U+061C, which reorder what is shown (the "Trojan Source" trick).
- ``tag``: Unicode tag characters U+E0000-U+E007F; U+E0020-U+E007E mirror printable ASCII,
  so a run of them spells hidden text, which is decoded. A flag's tag sequence (🏴 followed
  by tags and U+E007F, as the flag of Scotland) passes.
- ``variation-selector``: U+FE00-U+FE0F and U+E0100-U+E01EF. One after a character picks
  its form (an emoji's colour, an ideograph's variant) and passes; two or more in a row, or
  one with nothing before it, carry bytes (one byte per selector: U+FE00-U+FE0F are 0-15,
  U+E0100-U+E01EF are 16-255), which are decoded as UTF-8 where they form text.
- ``other``: the soft hyphen U+00AD, the Mongolian vowel separator U+180E, the invisible
  operators U+2061-U+2064, the combining grapheme joiner U+034F, and the Hangul fillers
  U+3164 and U+FFA0 (blank "letters" used for invisible names and padding).

``reveal(text)`` is the text with every invisible character removed and every smuggled
text put back in plain sight (between spaces): what the injection score and the ban list
read."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_OTHER = "\u00ad\u180e\u2061-\u2064\u034f\u3164\uffa0"
_VS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_TAG = "\U000e0000-\U000e007f"
_RUN = re.compile(f"[{_ZERO_WIDTH}{_BIDI}{_OTHER}{_VS}{_TAG}]+")
_KINDS = (("zero-width", re.compile(f"[{_ZERO_WIDTH}]")), ("bidi", re.compile(f"[{_BIDI}]")),
          ("other", re.compile(f"[{_OTHER}]")), ("variation-selector", re.compile(f"[{_VS}]")),
          ("tag", re.compile(f"[{_TAG}]")))
_BLACK_FLAG, _CANCEL_TAG = "\U0001f3f4", "\U000e007f"
_VS_ONLY = re.compile(f"[{_VS}]+")


@dataclass(frozen=True)
class Hidden:
    """A run of invisible characters of one kind at ``start:end``; ``text`` is what a run of
    tags or variation selectors spells (None for the others)."""

    start: int
    end: int
    kind: str
    chars: str
    text: str | None = None

    def describe(self) -> str:
        """``zero-width U+200B ZERO WIDTH SPACE ×3 at 5``; ``tag characters ×11 at 1 spelling 'hi'``."""
        times = f" ×{len(self.chars)}" if len(self.chars) > 1 else ""
        if self.text:
            return f"{self.kind} characters{times} at {self.start} spelling {self.text!r}"
        names = dict.fromkeys(f"U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')}" for c in self.chars)
        what = ", ".join(names) if len(names) <= 3 else f"{', '.join(list(names)[:3])} …"
        return f"{self.kind} {what}{times} at {self.start}"


def hidden(text: str) -> list[Hidden]:
    """The runs of invisible characters in ``text`` that hide something, left to right."""
    found: list[Hidden] = []
    for m in _RUN.finditer(text):
        for start, end, kind in _split(m.group(), m.start()):
            run = text[start:end]
            if not _benign(text, start, end, kind):
                found.append(Hidden(start, end, kind, run, _spelt(run, kind)))
    return found


def _split(run: str, at: int) -> list[tuple[int, int, str]]:
    """A run of mixed invisible characters as runs of one kind each."""
    parts: list[tuple[int, int, str]] = []
    for i, char in enumerate(run):
        kind = next(k for k, pattern in _KINDS if pattern.match(char))
        if parts and parts[-1][2] == kind:
            parts[-1] = (parts[-1][0], at + i + 1, kind)
        else:
            parts.append((at + i, at + i + 1, kind))
    return parts


def _benign(text: str, start: int, end: int, kind: str) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if kind == "zero-width":
        run = text[start:end]
        if run == "\ufeff" and start == 0:
            return True  # a byte-order mark
        if run == "\u200d" and _emoji(before) and _emoji(after):
            return True
        return run in ("\u200c", "\u200d") and _joining(before) and _joining(after)
    if kind == "variation-selector":
        return end - start == 1 and before != "" and not _VS_ONLY.fullmatch(before)
    if kind == "tag":
        return before == _BLACK_FLAG and text[end - 1] == _CANCEL_TAG
    return False


def _emoji(char: str) -> bool:
    return bool(char) and (0x1F000 <= ord(char) <= 0x1FAFF or 0x2300 <= ord(char) <= 0x27BF
                           or 0x2B00 <= ord(char) <= 0x2BFF or char == "\ufe0f")


def _joining(char: str) -> bool:
    """A letter of a script written with joiners: Arabic, Syriac, Thaana, N'Ko, the Indic and
    South-East Asian scripts."""
    return bool(char) and (0x0600 <= ord(char) <= 0x0DFF or 0x0F00 <= ord(char) <= 0x109F
                           or 0x1780 <= ord(char) <= 0x17FF or 0xA8E0 <= ord(char) <= 0xA8FF)


def _spelt(run: str, kind: str) -> str | None:
    if kind == "tag":
        spelt = "".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E)
        return spelt or None
    if kind == "variation-selector" and len(run) > 1:
        data = bytes(ord(c) - 0xFE00 if ord(c) <= 0xFE0F else ord(c) - 0xE0100 + 16 for c in run)
        try:
            spelt = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return spelt if spelt.isprintable() else None
    return None


def reveal(text: str) -> str:
    """``text`` with its invisible characters removed and what tags and variation selectors
    spell put in their place, between spaces (so a hidden sentence is read as words of its own)."""
    if not _RUN.search(text):
        return text
    out, at = [], 0
    for h in hidden(text):
        out += [_RUN.sub("", text[at:h.start]), f" {h.text} " if h.text else ""]
        at = h.end
    out.append(_RUN.sub("", text[at:]))
    return "".join(out)
