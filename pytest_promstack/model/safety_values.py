"""The values of the safety assertions ``injection-score``, ``no-invisible-text``,
``no-banned-words``, ``no-pii`` and ``no-secrets``, read and checked: when the test file is read
(``specs.value_problem``) and again when a case is scored (``score/safety_checks.py``). Each
reader returns the value in one shape or raises ``ValueError`` with one line naming the fix."""

from __future__ import annotations

import re
from typing import Any

INJECTION, INVISIBLE, BANNED = "injection-score", "no-invisible-text", "no-banned-words"
KINDS = (INJECTION, INVISIBLE, BANNED)
INJECTION_THRESHOLD = 0.5
_VAR_TEXT = re.compile(r"^\s*var\s*:\s*(.+?)\s*$", re.S)
_NAME = re.compile(r"^[^\W\d]\w*$")
_INJECTION_FIX = ("injection-score checks the output, or with {var: NAME} (in a CSV cell injection-score:var:NAME) "
                  "the variable NAME instead")


def injection_vars(value: Any) -> tuple[str, ...]:
    """The variables ``injection-score`` checks instead of the output: none (the output) for no
    value; ``{var: document}`` or ``{var: [document, email]}``; ``var:document`` as text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str):
        m = _VAR_TEXT.match(value)
        if m is None:
            raise ValueError(f"{value!r}: {_INJECTION_FIX}")
        names: Any = [n.strip() for n in m.group(1).split(",")]
    elif isinstance(value, dict) and set(value) == {"var"}:
        names = value["var"] if isinstance(value["var"], list) else [value["var"]]
    else:
        raise ValueError(f"{value!r}: {_INJECTION_FIX}")
    bad = [n for n in names if not isinstance(n, str) or not _NAME.match(n)]
    if bad or not names:
        raise ValueError(f"{bad[0] if bad else value!r} is not a variable name; {_INJECTION_FIX}")
    return tuple(dict.fromkeys(names))


def ban_items(value: Any) -> list[str]:
    """The items of a ban list: a list (YAML; a CSV cell's comma list is split when the file is
    read, as ``contains-any``'s), one word or phrase, or a file's text (``file://words.txt``,
    already read: one item a line, ``#`` lines skipped). Items that start with ``!`` are
    exceptions. Raises ``ValueError`` when no word is listed."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        value = _json_list(value)
    if value is None or value == "" or value == []:
        raise ValueError("no-banned-words needs the words to ban: write no-banned-words:word1,word2 (a CSV cell), a "
                         "YAML list, or file://banned.txt (one a line)")
    if isinstance(value, str):
        items = _lines(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [line for v in value for line in (_lines(v) if "\n" in v else [v.strip()])]
    else:
        raise ValueError(f"no-banned-words lists words: write no-banned-words:word1,word2 (a CSV cell), a YAML list, "
                         f"or file://banned.txt (one a line); not {type(value).__name__}")
    items = [i for i in items if i and not i.startswith("#")]
    no_letters = [i for i in items if not any(c.isalnum() for c in i)]
    if no_letters:
        raise ValueError(f"no-banned-words: {no_letters[0]!r} has no letters or digits to match")
    if not any(not i.startswith("!") for i in items):
        raise ValueError("no-banned-words needs at least one word to ban (items starting with ! are exceptions): "
                         "write no-banned-words:word1,word2 or file://banned.txt")
    return items


def _json_list(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def problem(kind: str, value: Any, threshold: float | None) -> str | None:
    """What is wrong with a safety assertion's value or threshold, with the fix; None when fine."""
    try:
        if kind == INJECTION:
            injection_vars(value)
            if threshold is not None and not 0 < threshold <= 1:
                return f"injection-score: threshold {threshold:g} is not in (0, 1]; the score is 0..1 (default 0.5)"
        elif kind == INVISIBLE and not (value is None or value == "" or value == []):
            return f"no-invisible-text takes no value (got {value!r}): write no-invisible-text"
        elif kind == BANNED:
            ban_items(value)
    except ValueError as exc:
        return str(exc)
    return None


def privacy_problem(kind: str, value: Any) -> str | None:
    """``no-pii`` / ``no-secrets``: the types to look for (all of the check's kind when empty),
    as a comma list or a list, or ``{types: ..., min_confidence: high|medium|low}``."""
    from ..safety.detect import parse_types
    from ..safety.findings import PII, SECRETS

    options = value if isinstance(value, dict) else {"types": value}
    unknown = set(options) - {"types", "min_confidence"}
    if unknown:
        return f"{kind}: unknown key {sorted(unknown)[0]!r}; the value takes types and min_confidence"
    if options.get("min_confidence", "medium") not in ("high", "medium", "low"):
        return f"{kind}: min_confidence {options['min_confidence']!r}: write high, medium or low"
    try:
        types = parse_types(options.get("types"))
    except ValueError as exc:
        return f"{kind}: {exc}"
    own = PII if kind == "no-pii" else SECRETS
    strays = [t for t in types if t not in own]
    if strays:
        other = "no-secrets" if kind == "no-pii" else "no-pii"
        return (f"{kind}: {strays[0]} is checked by {other}; write {kind}:{','.join(own[:2])} "
                f"(its types: {', '.join(own)})")
    return None
