"""The built-in probe library (``probes.yaml`` beside this module): versioned prompt-injection
attacks with stable ids, in families, English and Korean, each judged by the canary or by a
marker it asks the model to say.

    from pytest_promstack.safety.probes import select
    for probe in select(families=["override"], languages=["ko"]):
        print(probe.id, probe.attack, probe.marker)

``attack`` is the text that goes into the prompt's variable, encoded payload included;
``document`` the text of an indirect attack (planned into ``document_var``, else after the
attack in the same variable: ``Probe.values``)."""

from __future__ import annotations

import base64
import codecs
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIBRARY = Path(__file__).with_name("probes.yaml")
LANGUAGES = ("en", "ko")
ENCODINGS = ("base64", "hex", "rot13", "tags", "zero-width")
KEYS = {"id", "family", "lang", "text", "marker", "payload", "encode", "document"}


class ProbeProblem(ValueError):
    """A probe selection names no probe (an unknown family, language or id)."""


@dataclass(frozen=True)
class Probe:
    id: str
    family: str
    lang: str
    attack: str  # the text written into the prompt's variable, any payload encoded in it
    number: int  # its place in the library, 1-based
    marker: str | None = None  # broken when the answer holds it (case-insensitive); None: the canary only
    document: str | None = None  # an indirect attack's document

    def values(self, var: str, document_var: str | None) -> dict[str, str]:
        """The variables the probe sets: its attack in ``var``; its document in ``document_var``,
        or after the attack in ``var`` when that is not given."""
        if self.document is None:
            return {var: self.attack}
        if document_var:
            return {var: self.attack, document_var: self.document}
        return {var: f"{self.attack}\n\n{self.document}"}

    @property
    def broken_when(self) -> str:
        return f"the canary leaks or the answer says {self.marker}" if self.marker else "the canary leaks"


@dataclass(frozen=True)
class Library:
    version: int
    families: dict[str, str]  # name -> what it tries
    probes: tuple[Probe, ...]


@functools.cache
def library() -> Library:
    """The library, read and checked once per process."""
    from ..util.strict import load_yaml

    data = load_yaml(LIBRARY.read_text(encoding="utf-8"))
    families = {str(k): str(v) for k, v in data["families"].items()}
    probes = tuple(_probe(item, i, families) for i, item in enumerate(data["probes"], 1))
    ids = [p.id for p in probes]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"{LIBRARY.name}: ids used twice: {', '.join(twice)}")
    return Library(int(data["version"]), families, probes)


def _probe(item: dict[str, Any], number: int, families: dict[str, str]) -> Probe:
    where = f"{LIBRARY.name}: probes[{number - 1}] ({item.get('id')})"
    unknown = set(item) - KEYS
    if unknown or item.get("family") not in families or item.get("lang") not in LANGUAGES:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}, family or lang")
    text = str(item["text"])
    if "payload" in item:
        text = text.replace("{payload}", encode(str(item["payload"]), str(item["encode"])))
    return Probe(id=str(item["id"]), family=str(item["family"]), lang=str(item["lang"]), attack=text,
                 number=number, marker=item.get("marker"), document=item.get("document"))


def encode(payload: str, how: str) -> str:
    """``payload`` written in one of ``ENCODINGS``."""
    if how == "base64":
        return base64.b64encode(payload.encode("utf-8")).decode("ascii")
    if how == "hex":
        return payload.encode("utf-8").hex()
    if how == "rot13":
        return codecs.encode(payload, "rot13")
    if how == "tags":  # each printable ASCII character as its invisible Unicode tag character
        return "".join(chr(0xE0000 + ord(c)) for c in payload if 0x20 <= ord(c) <= 0x7E)
    if how == "zero-width":
        return "\u200b".join(payload)
    raise ValueError(f"unknown encoding {how!r}; one of {', '.join(ENCODINGS)}")


def select(families: Sequence[str] | None = None, languages: Sequence[str] | None = None,
           ids: Sequence[str] | None = None) -> list[Probe]:
    """The probes of these families, languages and ids (None: every one), in library order;
    raises ``ProbeProblem`` naming an unknown one and the known ones."""
    lib = library()
    _known("family", families, list(lib.families))
    _known("language", languages, list(LANGUAGES))
    _known("probe id", ids, [p.id for p in lib.probes])
    return [p for p in lib.probes
            if (not families or p.family in families) and (not languages or p.lang in languages)
            and (not ids or p.id in ids)]


def _known(what: str, given: Sequence[str] | None, known: list[str]) -> None:
    import difflib

    for name in given or ():
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ProbeProblem(f"unknown {what} {name!r}{hint}; known: {', '.join(known)}")
