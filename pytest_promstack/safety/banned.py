"""A ban list matched the way people dodge one, Korean first.

Text and words are read after NFKC (fullwidth ``ｓｈｉｔ`` is ``shit``, decomposed Hangul is
composed), case folding and the removal of invisible characters (``시\u200b발`` is ``시발``).
Then a banned word (or phrase) matches where its letters and digits stand in order with at
most three other characters (spaces, punctuation, symbols) between any two of them:
``시 발``, ``시.발``, ``s.h.i.t``, ``s h i t``, ``kill   yourself``. Where such a match starts
and ends decides whether it counts, so that ordinary text that merely holds the letters in
sequence across its words does not:

- **Written together** (no gap inside the match): a Korean, Chinese or Japanese word may stand
  inside a longer word, as those scripts join words and particles (``개새끼야``,
  ``너는개새끼``); a word of any other script must be a whole word (``ass`` is not in
  ``class``; list ``shitty`` as well as ``shit`` to ban both).
- **Spaced out** (a gap inside the match): the match must begin a word and end one, for every
  script (``this hit`` does not hold ``shit``: its ``s`` ends ``this``; ``시 발표`` does not hold
  ``시발``: its ``발`` begins ``발표``); a Korean match may be followed by a particle
  (``시 발아``, ``개 새끼가``).

An item that starts with ``!`` is an exception: where its text is written, nothing inside it
counts (``!시발점`` keeps ``시발점``, "starting point", from matching ``시발``). Lines that
start with ``#`` are comments (in a file).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .invisible import reveal

MAX_GAP = 3  # characters between two letters of a spaced-out word
_TOKEN = re.compile(r"[^\W_]+")
# after a spaced-out Korean word: a particle (이/가, 을/를, 은/는, 아/야 …), then the word ends
_PARTICLE = re.compile(r"(?:이랑|이야|이다|에게|한테|으로|까지|부터|처럼|같은|들이|들은|들아|"
                       r"이|가|을|를|은|는|아|야|도|만|의|에|로|과|와|랑|들|요|냐|네)(?![^\W_])")


def _gluing(char: str) -> bool:
    """A letter of a script that writes words together: Hangul, CJK ideographs, kana."""
    code = ord(char)
    return (0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F
            or 0x3040 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF)


def normalise(text: str) -> str:
    """NFKC, case folded, invisible characters removed."""
    return unicodedata.normalize("NFKC", reveal(text)).casefold()


@dataclass(frozen=True)
class Hit:
    word: str  # the banned item as listed
    start: int  # in the normalised text
    end: int
    found: str  # the normalised text matched (``시 발``)


class _Skeleton:
    """A text's letters and digits alone (``skeleton``), with where each word of them starts in
    the text and in the skeleton, to map a match in the skeleton back to the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        tokens = list(_TOKEN.finditer(text))
        self.spans = [(m.start(), m.end()) for m in tokens]
        self.starts, at = [], 0  # the skeleton index where each token starts
        for start, end in self.spans:
            self.starts.append(at)
            at += end - start
        self.skeleton = "".join(m.group() for m in tokens)

    def occurrences(self, needle: str) -> Iterable[int]:
        at = self.skeleton.find(needle)
        while at >= 0:
            yield at
            at = self.skeleton.find(needle, at + 1)

    def token(self, k: int) -> int:
        return bisect.bisect_right(self.starts, k) - 1

    def position(self, k: int) -> int:
        """The text index of skeleton index ``k``."""
        t = self.token(k)
        return self.spans[t][0] + k - self.starts[t]


class BanList:
    """``BanList(["시발", "s h i t", "!시발점"]).find(text)``: the banned words in ``text``."""

    def __init__(self, items: Sequence[str]) -> None:
        self.words: list[tuple[str, str]] = []  # (as listed, its letters normalised)
        self.exceptions: list[str] = []
        for item in items:
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            target = self.exceptions if item.startswith("!") else None
            letters = "".join(_TOKEN.findall(normalise(item.removeprefix("!"))))
            if not letters:
                raise ValueError(f"{item!r} has no letters or digits to match; list words (a '!' item is an exception)")
            if target is not None:
                target.append(letters)
            else:
                self.words.append((item, letters))
        if not self.words:
            raise ValueError("no banned words listed (only exceptions or comments)")

    def find(self, text: str, limit: int = 20) -> list[Hit]:
        """Up to ``limit`` hits, in the order of the list, then of the text."""
        norm = normalise(text or "")
        sk = _Skeleton(norm)
        allowed = [(k, k + len(e)) for e in self.exceptions for k in sk.occurrences(e)]
        hits: list[Hit] = []
        for item, letters in self.words:
            for k in sk.occurrences(letters):
                if any(a <= k and k + len(letters) <= b for a, b in allowed) or not _counts(sk, k, letters):
                    continue
                start, end = sk.position(k), sk.position(k + len(letters) - 1) + 1
                hits.append(Hit(item, start, end, norm[start:end]))
                if len(hits) >= limit:
                    return hits
        return hits


def _counts(sk: _Skeleton, k: int, letters: str) -> bool:
    """Whether the letters at skeleton ``k`` match by the module's rule."""
    first, last = sk.token(k), sk.token(k + len(letters) - 1)
    if any(sk.spans[t + 1][0] - sk.spans[t][1] > MAX_GAP for t in range(first, last)):
        return False
    begins = k == sk.starts[first]
    ends = k + len(letters) == sk.starts[last] + sk.spans[last][1] - sk.spans[last][0]
    gluing = _gluing(letters[0]) and _gluing(letters[-1])
    if first == last:  # written together
        return gluing or (begins and ends)
    if not begins:
        return False
    end = sk.spans[last][0] + k + len(letters) - sk.starts[last]
    return ends or (gluing and _PARTICLE.match(sk.text, end) is not None)
