"""pytest marks from a test file's columns: ``__marks`` act (skip, xfail, …) as pytest
decides for a mark in code; ``__metadata:*`` are data, markers only for ``-m`` selection."""

from __future__ import annotations

from typing import Any

import pytest

from ..config.settings import Suite
from ..model.types import Case
from ..util.text import safe

# marks that change how pytest (or a common plugin) runs an item: a metadata column of this
# name stays a keyword (-k), never becomes the mark
ACTING_MARKS = frozenset({
    "skip", "skipif", "xfail", "usefixtures", "filterwarnings", "parametrize", "tryfirst", "trylast",
    "timeout", "flaky", "order", "run", "dependency", "asyncio", "anyio", "trio", "repeat", "forked",
    "xdist_group", "django_db", "no_cover", "benchmark", "randomly_dont_reorganize", "serial"})


class Marks:
    """``marks(case, suite, model)`` -> (pytest marks, keywords, the error of a bad mark)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._warned: dict[tuple[str, str], str | None] = {}  # (row, mark) warned of -> its error, if it was one

    def __call__(self, case: Case, suite: Suite, model: str) -> tuple[list[Any], set[str], str | None]:
        markers: list[Any] = []
        keywords = {suite.name, model}
        for key, value in case.metadata.items():
            keywords.update(str(v) for v in (value if isinstance(value, list) else [value]))
            # metadata are data: a marker only to select with -m, never one that acts
            # (__metadata:xfail must not xfail a failing case); acting marks come from __marks
            if key.isidentifier() and key not in ACTING_MARKS:
                self.config.addinivalue_line("markers", f"{key}: promstack case metadata")
                markers.append(getattr(pytest.mark, key)(value=value))
            else:
                keywords.add(key)
        for mark in case.marks:
            name, _, reason = (part.strip() for part in mark.partition(":"))
            decorator, problem = self._mark(case, name)
            if decorator is None:
                return [], keywords, problem
            # pytest prints a skip/xfail reason as it is: a reason from a file shows no escapes
            markers.append(decorator(reason=safe(reason)) if reason else decorator)
        return markers, keywords, None

    def _mark(self, case: Case, name: str) -> tuple[Any, str | None]:
        """pytest's own verdict on a mark name from a file: under strict markers an unknown
        name errors the case; otherwise pytest's "unknown mark" warning is issued at the row
        (shown in the warnings summary, silenced or made an error by the user's filters; an
        error errors only this case, never the collection of the whole file)."""
        import warnings

        problem = (f"__marks: {name!r} is not a registered marker; "
                   "add it to markers in your pytest config")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pytest.PytestUnknownMarkWarning)
            try:
                decorator = getattr(pytest.mark, name)
            except pytest.fail.Exception:
                return None, problem
        if caught and (case.where, name) not in self._warned:  # warned once per row, for all its models
            self._warned[(case.where, name)] = None
            try:
                warnings.warn_explicit(f"{problem} (a typo?)", pytest.PytestUnknownMarkWarning,
                                       filename=case.file, lineno=case.row)
            except pytest.PytestUnknownMarkWarning:  # the user's filters make it an error
                self._warned[(case.where, name)] = problem
        error = self._warned.get((case.where, name)) if caught else None
        return (None, error) if error else (decorator, None)

