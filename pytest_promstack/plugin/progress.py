"""A run's progress as JSON lines, for a process that started the run and shows it (the MCP
server's progress notifications): registered at configure when ``PROMSTACK_PROGRESS_FILE``
names a file, in the process that reports (xdist's controller, never its workers).

    {"total": 11}                                        the cases collected
    {"calls": 4, "of": 11, "hits": 2, "errors": 0}       model calls done, of those submitted so far
    {"done": 1, "total": 11, "case": "prompt_tests/app.csv::환불[app]", "outcome": "passed"}

The cases are scored after every call (a run with judges, an arena, conversations or agents),
or each as soon as its own answers are in (pipeline/cases.py ``Batch.judge``): then the calls
and cases lines interleave. Each line is written whole and flushed, so a reader tailing the
file sees complete lines."""

from __future__ import annotations

import json
from typing import IO, Any

import pytest


class Progress:
    def __init__(self, path: str) -> None:
        self.out: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        self.total: int | None = None
        self.done = 0
        self.calls: tuple[int, int] | None = None  # the last (done, submitted) written

    def _write(self, line: dict[str, Any]) -> None:
        self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self._write({"total": self.total})

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.total is None:  # every worker collects the same items
            self.total = len(ids)
            self._write({"total": self.total})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # a case ends at its call, or at a setup that did not pass (then it has no call)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.done += 1
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            self._write({"done": self.done, "total": self.total, "case": report.nodeid, "outcome": outcome})

    def on_calls(self, done: int, total: int, hits: int, errors: int) -> None:
        if (done, total) != self.calls:
            self.calls = (done, total)
            self._write({"calls": done, "of": total, "hits": hits, "errors": errors})

    def pytest_unconfigure(self) -> None:
        self.out.close()


def register(config: pytest.Config, path: str) -> None:
    """In the process that reports: its cases' outcomes, and the model calls it waits for
    (with xdist the workers make the calls, and only the cases are told)."""
    if getattr(config, "workerinput", None) is None:
        from .stash import SESSION_KEY

        progress = Progress(path)
        config.pluginmanager.register(progress, "promstack-progress")
        config.stash[SESSION_KEY].batch.listeners.append(progress.on_calls)
