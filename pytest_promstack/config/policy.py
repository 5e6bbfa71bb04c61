"""What a run may do with code from the repository's files (``allow_python``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model.types import AssertionSpec

PREFIX = "python:"


def refused(settings: Any, models: Iterable[str], asserts: Iterable[AssertionSpec]) -> str | None:
    """Why this case may not run with ``allow_python: false`` / ``--promstack-no-python``: a
    python: target or a python assertion runs code from the repository's files."""
    if settings.allow_python:
        return None
    for name in models:
        spec = settings.models.get(name)
        target = spec.model if spec is not None else name
        if target.startswith(PREFIX):
            return (f"model {name} is a python: target ({target}), code from this repository; python is refused "
                    "here (--promstack-no-python or allow_python: false): run it on trusted code only")
    for a in asserts:
        if a.type.removeprefix("not-") == "python":
            return (f"{a.origin or 'an assertion'}: a python assertion runs code; python is refused here "
                    "(--promstack-no-python or allow_python: false): use a declarative assertion, or run it on "
                    "trusted code only")
    return None
