"""``json-path``: a field of a JSON output, found by an RFC 9535 JSONPath (python-jsonpath),
exists or compares with a JSON literal: ``$.label == "billing"``, ``$.items[*].price < 100``,
``$.customer.name``. With several matches every one must satisfy the comparison; no match
fails. Imported only when a json-path assertion runs."""

from __future__ import annotations

import json
from typing import Any

from ..model.specs import json_path_parts
from .outcome import Outcome, Undecided

MISMATCHES_SHOWN = 3


def json_path(output: str, value: Any, ctx: Any) -> Outcome:
    path, op, expected = json_path_parts(value)
    try:
        data = json.loads(output)
    except (json.JSONDecodeError, RecursionError):
        raise Undecided(f"{value}: the output is not JSON ({_short(output)})") from None
    matches = [(m.path, m.obj) for m in path.finditer(data)]
    if not matches:
        return Outcome(False, f"{value}: no match for {path} in the output")
    failing = [(where, got) for where, got in matches if not _holds(got, op, expected)]
    if not failing:
        return Outcome(True, f"{value}: {_agreement(matches)}")
    shown = "; ".join(f"{where} is {_json(got)}" for where, got in failing[:MISMATCHES_SHOWN])
    more = f" and {len(failing) - MISMATCHES_SHOWN} more" if len(failing) > MISMATCHES_SHOWN else ""
    head = f"{len(failing)} of {len(matches)} matches fail: " if len(matches) > 1 else ""
    return Outcome(False, f"{value}: {head}{shown}{more}")


def _holds(got: Any, op: str | None, expected: Any) -> bool:
    if op is None:
        return got is not None
    if op in ("==", "!="):
        return _same(got, expected) == (op == "==")
    if op == "contains":
        if isinstance(got, str):
            return isinstance(expected, str) and expected in got
        return isinstance(got, list) and any(_same(item, expected) for item in got)
    if op == "matches":
        return isinstance(got, str) and _search(expected, got)
    if not _comparable(got, expected):
        return False
    return {"<": got < expected, "<=": got <= expected, ">": got > expected, ">=": got >= expected}[op]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return (type(a) is type(b) or (_number(a) and _number(b))) and a == b


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _comparable(a: Any, b: Any) -> bool:
    return (_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str))


def _search(pattern: str, text: str) -> bool:
    import regex

    from .assertions import REGEX_TIMEOUT_S

    try:
        return regex.search(pattern, text, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        raise Undecided(f"/{pattern}/ took longer than {REGEX_TIMEOUT_S:g} s and was stopped; simplify the "
                        "pattern") from None


def _agreement(matches: list[tuple[str, Any]]) -> str:
    if len(matches) == 1:
        return f"{matches[0][0]} is {_json(matches[0][1])}"
    return f"all {len(matches)} matches hold"


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _short(output: str) -> str:
    return repr(output if len(output) <= 60 else output[:59] + "…")
