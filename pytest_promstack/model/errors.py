"""The error tree. Every message is one line that says where, what and the fix."""

from __future__ import annotations


class PromstackError(Exception):
    """Base class; ``str(err)`` is the one line shown to the user."""


class ConfigError(PromstackError):
    """``promstack.yaml`` / ``[tool.promstack]`` is invalid; lists every problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class CaseError(PromstackError):
    """A test file or one of its rows is malformed."""

    def __init__(self, file: str, row: int | None, message: str, column: str | None = None):
        self.file, self.row, self.column, self.message = file, row, column, message
        where = file if row is None else f"{file}:{row}"
        if column:
            where += f" {column}"
        super().__init__(f"{where}: {message}")


class TemplateError(PromstackError):
    """A prompt template could not be rendered for a case (e.g. a missing variable, then named
    in ``variable``, so that each caller can say where to give it)."""

    variable: str | None = None


class JudgeError(PromstackError):
    """An LLM judge gave no usable verdict."""


class CallFailed(PromstackError):
    """A model call (or its judge) failed; the fixture's ``run`` raises it unless asked not to."""


class CheckFailed(PromstackError, AssertionError):
    """The fixture's ``check`` found the reply wanting: an AssertionError
    (``pytest.raises(AssertionError)`` works) that pytest shows as its lines, not as a
    traceback of this package."""
