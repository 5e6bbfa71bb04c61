"""Text from outside (a provider's error, a test file's case name, the prompt registry, a
model's answer) made safe to print on a terminal.

A hostile server can answer ``{"error": {"message": "\\x1b[2J\\x1b[H ALL TESTS PASSED"}}``;
printed raw, that clears the screen. ``safe`` shows every control character as a visible
escape (``\\x1b``, ``\\r``, ``\\x85``) and every bidirectional override or isolate (which can
reorder what a line appears to say) as ``\\u202e``; printable text, Korean included, is left
as it is. Only what is printed goes through it: the results JSON keeps the data as it came.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; the bidi embeddings, overrides, isolates
# and marks; the Unicode line and paragraph separators (a terminal may break the line there)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\n" + _UNSAFE.pattern[1:])
_NAMED = {"\r": "\\r", "\n": "\\n"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, newlines: bool = False) -> str:
    """``text`` as a string with its control characters escaped. ``newlines``: keep ``\\n``
    (our own multi-line messages); else a newline is escaped too (one line stays one line).
    Idempotent: what it returns contains nothing it would escape."""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE if newlines else _UNSAFE_ONE_LINE).sub(_escape, s)


def safe_lines(lines: list[str]) -> list[str]:
    """Each line made safe (a line that holds a newline keeps it: it was ours)."""
    return [safe(line, newlines=True) for line in lines]
