"""pytest ``File`` and ``Item`` classes for prompt cases: ids, markers, failure text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .errors import CaseError, PromstackError

if TYPE_CHECKING:
    from .session import Planned, PromstackSession


class CaseFailed(PromstackError):
    """The response did not meet the case's expectations."""


class CaseErrored(PromstackError):
    """The case could not be run (template, provider, bad prompt)."""


class PromptFile(pytest.File):
    """A test file of one or more suites; yields one item per case x model x prompt."""

    def collect(self) -> Any:
        ps: PromstackSession = self.config.stash[_key()]
        try:
            planned = ps.plan_file(self.path)
        except CaseError as exc:
            yield FileErrorItem.from_parent(self, name="<file>", message=str(exc))
            return
        for plan in planned:
            item = CaseItem.from_parent(self, name=plan.name, plan=plan)
            for mark in plan.markers:
                item.add_marker(mark)
            item.extra_keyword_matches.update(plan.keywords)
            yield item


def _key() -> Any:
    from .stash import SESSION_KEY

    return SESSION_KEY


class FileErrorItem(pytest.Item):
    """An unreadable file: one item that errors with the file's one-line message."""

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def setup(self) -> None:
        raise CaseErrored(self.message)

    def runtest(self) -> None:  # pragma: no cover - setup always raises
        raise CaseErrored(self.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _repr(self, excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.message


class CaseItem(pytest.Item):
    """One case on one model with one prompt."""

    def __init__(self, *, plan: Planned, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.responses: list[Any] = []
        self.passes: int | None = None
        self.score: float | None = None
        self.scores: list[Any] = []

    @property
    def ps(self) -> PromstackSession:
        return self.config.stash[_key()]

    def setup(self) -> None:
        self.ps.setup_item(self)

    def runtest(self) -> None:
        self.ps.run_item(self)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _repr(self, excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        case = self.plan.case
        return self.path, case.row - 1, self.plan.where


def _repr(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], style: Any) -> Any:
    if isinstance(excinfo.value, PromstackError):
        return str(excinfo.value)
    return pytest.Item.repr_failure(item, excinfo, style)
