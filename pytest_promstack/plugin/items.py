"""pytest ``File`` and ``Item`` classes for prompt cases: ids, markers, failure text. An item
carries its planned case and keeps the answers and the ``Outcome`` the batch gives it
(pipeline/cases.py), which also defines what it raises (``CaseErrored``, ``CaseFailed``)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import pytest

from ..model.errors import CaseError, PromstackError
from ..pipeline.cases import CaseErrored, CaseFailed
from ..results.records import junit_properties

if TYPE_CHECKING:
    from ..model.types import Response
    from ..plan.planned import Planned
    from ..score.case import Outcome
    from .session import PromstackSession


class _OneLineSetupErrors:
    """pytest formats an error in setup with ``_repr_failure_py`` (``repr_failure`` only in
    the call): a traceback with the source of every frame, about 50 ms each, which the
    session replaces with the error's one line anyway. A thousand cases whose key is missing
    took a minute to report; one line each costs nothing."""

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, PromstackError):
            return str(excinfo.value)
        return super()._repr_failure_py(excinfo, style)  # type: ignore[misc]


class PromptFile(pytest.File):
    """A test file of one or more suites; yields one item per case x model x prompt."""

    planned = False  # collect() ran; pytest's --lf skips the files without a last failure

    def collect(self) -> Any:
        ps: PromstackSession = self.config.stash[_key()]
        self.planned = True
        try:
            planned = ps.planner.plan_file(self.path)
        except CaseError as exc:
            yield FileErrorItem.from_parent(self, name="<file>", message=str(exc))
            return
        for plan in planned:
            item = CaseItem.from_parent(self, name=plan.name, nodeid=_nodeid(self, plan.name), plan=plan)
            for mark in plan.markers:
                item.add_marker(mark)
            item.extra_keyword_matches.update(plan.keywords)
            yield item


def plan_skipped(file: PromptFile) -> None:
    """Plan a file that pytest collected without running ``collect()`` (``--lf`` skips the
    files without a last failure): its cases still exist, so recording keeps their cassette
    entries."""
    if not file.planned:
        file.planned = True
        with contextlib.suppress(CaseError):  # an unreadable file has no cases to keep
            file.config.stash[_key()].planner.plan_file(file.path)


def _nodeid(parent: pytest.File, name: str) -> str:
    """The item's node id as a string, ``<file>::<name>``, so pytest parses it.

    Case names end in ``[model]`` (or ``[prompt-model]``, ``[suite-prompt-model]``). Since pytest 9.2 a node id
    is structured (path, names, params) and pytest reads the ids it kept in its cache
    (``--lf``, ``--ff``, ``--sw``) by parsing the string, which takes ``[...]`` as the params;
    an id built from the name alone keeps the brackets in the name, never equals its parsed
    self, and every ``--lf`` would rerun everything ("N known failures not in selected
    tests"). A string id is what older pytest builds anyway, so the ids are unchanged."""
    return f"{parent.nodeid}::{name}"


def _key() -> Any:
    from .stash import SESSION_KEY

    return SESSION_KEY


class FileErrorItem(_OneLineSetupErrors, pytest.Item):
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


class CaseItem(_OneLineSetupErrors, pytest.Item):
    """One case on one model with one prompt."""

    def __init__(self, *, plan: Planned, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan: Planned | None = plan  # None once it passed: its record has what it was (session.py)
        self.responses: list[Response] = []  # set up from the engine: one per repeat (or per contender)
        self.outcome: Outcome | None = None  # what scoring gave it (score/case.py); None until it ran

    @property
    def ps(self) -> PromstackSession:
        return self.config.stash[_key()]

    def setup(self) -> None:
        if self.plan is None:
            raise CaseErrored(f"{self.nodeid}: this case passed once in this session; run it in a session of its "
                              "own to run it again")
        start = time.perf_counter()
        self.responses, problem = self.ps.batch.setup(self.nodeid, self.plan)
        # the time it waited for its answers, mostly: the session takes it off the case's own time
        self.ps.waited = (self.nodeid, time.perf_counter() - start)
        if self.responses and getattr(self.config.option, "xmlpath", None):  # only JUnit reads them: on a
            self.user_properties.extend(junit_properties(self.plan, self.responses))  # big run, ~1.5 KB a case
        if problem is not None:
            raise CaseErrored(problem)

    def runtest(self) -> None:
        assert self.plan is not None  # setup checked it
        self.outcome = self.ps.batch.score(self.nodeid, self.plan, self.responses)
        if not self.outcome.passed:
            raise CaseFailed(self.outcome.failure)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return _repr(self, excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        if self.plan is None:  # it passed: pytest kept the location it gave before it ran
            return self.path, self.location[1], self.location[2]
        return self.path, self.plan.case.row - 1, self.plan.where


def _repr(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], style: Any) -> Any:
    if isinstance(excinfo.value, PromstackError):
        return str(excinfo.value)
    return pytest.Item.repr_failure(item, excinfo, style)

