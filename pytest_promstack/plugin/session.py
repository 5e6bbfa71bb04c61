"""The controller of a ``--promstack`` run: registered as a plugin (as pytest's junitxml
registers its writer) and kept in ``config.stash``; its methods are the hooks the run needs.
It holds the run's state and hands the work to the stages: the planner (plan/), the batch
(pipeline/cases.py: calls, judges, scoring, records), the results (results/run.py), the
prompt versions (pipeline/prompts.py) and the reports (report/summary.py, report/outputs.py)."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..config.modes import CacheMode
from ..config.settings import Settings
from ..model.errors import PromstackError
from ..pipeline.cases import Batch
from ..pipeline.prompts import PromptVersions
from ..plan.planner import Planner
from ..results import records
from ..results.run import RunResults
from ..score.registry import Registry
from ..util.paths import importable, rel
from ..util.text import safe
from .items import CaseItem, FileErrorItem, PromptFile, plan_skipped
from .marks import Marks
from .reports import reports_of_salvaged


class PromstackSession:
    def __init__(self, config: pytest.Config, settings: Settings, registry: Registry) -> None:
        from datetime import UTC, datetime

        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self.run_id = workerinput.get("testrunuid", "")[:12] if workerinput else uuid.uuid4().hex[:12]
        self.started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.warnings: list[str] = []
        self.versions = PromptVersions(settings, self.is_worker, self.warn)
        self.planner = Planner(settings, registry.assertions.__contains__, registry.suggest,
                               marks=Marks(config), swap=self.versions.swap)
        self.batch = Batch(settings, registry, self.run_id, self.warn)
        self.results = RunResults(settings)
        self.selected = 0  # the cases selected before --promstack-shard took this job's share
        self.mine: list[CaseItem] = []  # this process's cases (an xdist worker's share)
        self.written: list[str] = []
        self.reported: set[str] = set()  # node ids pytest (or xdist) sent a report for
        # node ids whose setup passed and whose call has not been reported (one per process that
        # runs items): an interrupt there leaves them unscored, so salvage scores them
        self.awaiting_call: set[str] = set()
        self.interrupted = False
        # (node id, seconds) the item being set up waited for its answers (not kept on the item:
        # one more attribute on each of 100,000 items costs more than it says)
        self.waited: tuple[str, float] | None = None
        self.planned = 0  # the cases this run set out to run (set at the end; the xdist controller collects none)
        self.worker_pids: list[int] = []  # xdist workers, to pass a SIGTERM on to
        self.restore_sigterm: Any = None
        self._unimport = importable(settings.root)  # python: targets and assertions import from the root

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def start(self) -> None:
        """At configure: the prompt files' versions are observed (controller only)."""
        if not self.is_worker:
            self.versions.observe(self.planner)
        # What pytest, the plugins and this run have imported and built so far lives until the
        # process ends: out of the garbage collector's way, so its passes while the files are
        # collected do not walk it again and again (then again when the calls start, below).
        gc.freeze()

    # -- collection -------------------------------------------------------------------------

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        return PromptFile.from_parent(parent, path=file_path) if self.planner.wants(file_path) else None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        if isinstance(collector, PromptFile):
            plan_skipped(collector)
        return report

    @pytest.hookimpl(trylast=True)  # after -k, -m and --lf: the shards split what they selected
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.settings.run.shard is not None:
            from .shard import apply

            self.selected = apply(config, items, self.settings.run.shard)

    @pytest.hookimpl(trylast=True)  # pytest prints these lines last-called first: ours above --lf's
    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> str:
        return self.header(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.config.option.collectonly and not self.settings.run.estimate:
            self.start_calls(session.items)

    # -- running ----------------------------------------------------------------------------

    def start_calls(self, items: list[pytest.Item]) -> None:
        """Resolve every request of this process's items: cache hits at once, misses concurrently."""
        from .xdist import my_items

        # Items, plans and the modules imported so far live until the session ends: move them
        # out of the garbage collector's way, so its passes during the run and pytest's five
        # collections at the end do not walk them again (0.5 s on 1,000 cases).
        gc.freeze()
        self.mine = [i for i in my_items(self.config, items) if isinstance(i, CaseItem)]
        self.batch.submit({i.nodeid: i.plan for i in self.mine})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """Wait for the calls, then ask the arena's and the judges' verdicts; items then only
        score. ``--promstack-estimate`` prints its bound instead and runs no item."""
        if session.config.option.collectonly:
            return None
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if self.settings.run.estimate:
            for line in self.estimate(session.items):
                if reporter is not None:
                    reporter.write_line(line)
            return True  # no item runs, no model is called
        self.batch.judge(None if self.is_worker else reporter)
        return None

    def estimate(self, items: list[pytest.Item]) -> list[str]:
        """The cost bound of the calls these items would make; calls nothing."""
        from ..results.estimate import for_plans

        return for_plans(self.settings, [i.plan for i in items if isinstance(i, CaseItem)], self.warn)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, Any, Any]:
        report = yield
        if call.when == "setup" and self.waited is not None and self.waited[0] == item.nodeid:
            # the items are scored as their answers arrive: the wait is the calls', not the case's time
            report.duration = max(0.0, report.duration - self.waited[1])
            self.waited = None
        if call.excinfo is not None and isinstance(call.excinfo.value, PromstackError):
            # users' mistakes get one line, not a traceback; a provider's or a file's control
            # characters are shown escaped, never sent to the terminal
            report.longrepr = safe(str(call.excinfo.value), newlines=True)
        # The case's record travels once: on the call report, or on a failed/skipped setup (then
        # there is no call). pytest keeps every report until the end, so this also keeps memory flat.
        carries = call.when == "call" or (call.when == "setup" and not report.passed)
        if isinstance(item, CaseItem) and item.plan is None:  # it passed before (see below): recorded then
            pass
        elif carries and isinstance(item, CaseItem):
            problem = str(call.excinfo.value) if call.excinfo is not None else None
            report.promstack = self.batch.record(item.nodeid, item.plan, item.responses, item.outcome, call.when,
                                                 problem)
            item.responses, item.outcome = [], None  # in the record now; pytest keeps every item to the end
            if call.when == "call" and report.passed:  # never run again (a rerun plugin reruns failures):
                self.batch.forget(item.nodeid)  # what it was planned with, asked and answered is in its
                item.plan = None  # record now (about 1 KB a case that a large run would keep to its end)
            # The models answered before the items ran (the item only scores), so the measured
            # duration is about 1 ms; JUnit's time and --durations get the case's model latency.
            report.duration += sum(report.promstack["latencies"]) / 1000
        elif call.when == "setup" and isinstance(item, CaseItem):
            report.promstack = records.identity(item.plan)  # so a crash before the call is still counted
        elif carries and isinstance(item, FileErrorItem):
            # an unreadable file counts once, as an error, under the first suite that uses it
            path = Path(item.path)
            report.promstack = records.file_error(self.planner.files[path.resolve()][0].name, str(item.nodeid),
                                                  rel(path, self.settings.root))
        if isinstance(report.longrepr, str) and self.settings.masking.on("failures"):  # terminal and JUnit
            from ..results.masking import masked_text

            report.longrepr = masked_text(report.longrepr, getattr(report, "promstack", None), self.settings.masking)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gathers the per-case records that travel on the reports, so xdist and no xdist give
        the same totals."""
        self.reported.add(report.nodeid)
        if report.when == "setup" and report.passed:  # its record is the case's identity until its call
            self.awaiting_call.add(report.nodeid)
        else:
            self.awaiting_call.discard(report.nodeid)
        data = getattr(report, "promstack", None)
        self.results.add(report.nodeid, data, lambda current: _outcome(report, current), owned=not self.is_worker)
        if data is not None and not self.is_worker:  # pytest keeps every report to the end: one copy is enough
            report.promstack = None  # (a worker's report still carries its record to the controller)

    # -- the end ------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file: the salvaged cases go in it
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Ctrl-C or SIGTERM; not a plugin's deliberate stop (--sw's stop at a failure is like -x:
        # the cases after it did not run, and none is scored as if it had)
        self.interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED and not session.shouldstop
        self.planned = session.testscollected
        if self.interrupted:
            self.salvage()
            if not self.is_worker:  # a worker's go to the controller with its end (plugin/xdist.py)
                for report in self.salvaged_reports():
                    session.config.hook.pytest_runtest_logreport(report=report)
        if not self.is_worker:  # the calls' line, below the items (and salvaged cases) that waited for them
            self.batch.streamed(session.config.pluginmanager.get_plugin("terminalreporter"))
        if self.is_worker:
            return
        if self.settings.run.shard is None:  # a shard's gates and baseline are judged on the merged results
            self.results.check_gates()
            self.compare_baseline()
        status = self.results.exit_status()
        if self.settings.run.shard is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED \
                and self.selected:  # more shards than rows: this job has nothing to do, and that is fine
            session.exitstatus = pytest.ExitCode.OK
        if session.exitstatus == pytest.ExitCode.OK and status is not None:
            session.exitstatus = status  # the tests passed, a gate or the baseline did not: a status of its own
        run = self.settings.run
        if run.json or run.report or self.settings.cache_mode == CacheMode.RECORD:
            from ..report.outputs import write_all

            self.written = write_all(self.settings, self.document, self.results.cassette_entries,
                                     self.planner.all_ids())
        self.audit_cases()

    def audit_cases(self) -> None:
        """``audit: {enabled: true}``: one line per case that called a model, by the controller
        alone (an xdist worker's cases arrive here on its reports)."""
        from ..execute.calllog import user_id
        from ..safety import audit

        log = audit.open_log(self.settings, self.run_id, self.settings.user_id or user_id())
        if log is None:
            return
        cases = [r for r in self.results.records.values() if r.get("called")]
        lines = log.write_many([("case", audit.case_fields(r)) for r in cases])
        if log.failed:
            self.warn(f"audit log not written: {log.failed}")
        elif lines:
            self.written.append(f"promstack: appended {len(lines)} lines to {rel(log.path, self.settings.root)} "
                                "(audit trail)")
        if log.unrotated:  # its lines were appended to the live file
            self.warn(f"audit log not rotated: {log.unrotated}")

    def salvage(self) -> int:
        """After an interrupt: the cases whose calls had all finished but which pytest never ran
        are scored (pipeline/cases.Batch.salvage), so the reports hold every finished case.
        Returns how many were added. An xdist worker hands them to the controller in its
        ``workeroutput``."""
        pending = {i.nodeid: i.plan for i in self.mine if i.plan is not None
                   and (i.nodeid not in self.results.records or i.nodeid in self.awaiting_call)}
        scored = self.batch.salvage(pending)
        for nodeid, record in scored.items():
            self.results.add_salvaged(nodeid, record, replace=nodeid in self.awaiting_call)
            if self.is_worker:  # sent with the worker's end (xdist's workerfinished)
                self.config.workeroutput.setdefault("promstack_salvaged", {})[nodeid] = record
        return len(scored)

    def salvaged_reports(self) -> list[pytest.TestReport]:
        """pytest's reports (setup, call, teardown) for the cases scored after an interrupt that
        pytest never reported, so JUnit and the terminal count them as the JSON and HTML do."""
        out = []
        for nodeid, rec in list(self.results.records.items()):
            if rec.get("salvaged") and (nodeid not in self.reported or nodeid in self.awaiting_call):
                out += reports_of_salvaged(nodeid, rec)
        return out

    def compare_baseline(self) -> None:
        """Compare with --promstack-baseline, when given."""
        path = self.settings.run.baseline
        if path:
            problem = self.results.compare_baseline(path, self.planner.all_ids())
            if problem is not None:
                self.warn(problem)

    def document(self) -> dict[str, Any]:
        """The results JSON document of this run (what every report reads)."""
        used = {(str(r.get("prompt_id")), str(r.get("prompt_version"))) for r in self.results.records.values()}
        return self.results.document(self.run_id, self.started, self.interrupted, self.planned_count(),
                                     self.versions.texts(self.planner, used), self.versions.numbers)

    def planned_count(self) -> int:
        """The cases this run set out to run (the xdist controller collects none itself)."""
        return max(len(self.mine), self.planned, len(self.results.records))

    # -- terminal -------------------------------------------------------------------------------

    def header(self, items: list[pytest.Item]) -> str:
        from ..execute.providers.routes import summary
        from ..report.terminal import header_line

        cases = [i for i in items if isinstance(i, CaseItem)]
        line = header_line(self.settings, len(cases), len({i.plan.case.file for i in cases}),
                           self.planner.loader.decoded)
        seen: dict[tuple[str, str], Any] = {}
        for i in cases:
            if i.plan.requests:
                seen.setdefault((i.plan.model, i.plan.prompt_id), i.plan.requests[0])
        ways = summary(list(seen.values()), self.settings.transport)
        line += f"\npromstack: {ways}" if ways else ""
        return safe(line + ("" if cases else self._outside()), newlines=True)

    def _outside(self) -> str:
        """Why nothing was collected when the suites' files lie outside what pytest collects
        (e.g. --promstack-config names a project in another folder)."""
        here = self.config.invocation_params.dir
        args = [a.split("::")[0] for a in self.config.args] or ["."]
        roots = [Path(here, a).resolve() for a in args]
        files = self.planner.files
        if not files or any(f == r or f.is_relative_to(r) for f in files for r in roots):
            return ""
        root = self.settings.tests_folder()
        return (f"\npromstack: warning: the suites' test files are under {root}, outside what pytest collects "
                f"({', '.join(args)}); run pytest there, or name it: pytest --promstack {os.path.relpath(root, here)}")

    @pytest.hookimpl(trylast=True)  # after the fixture's section, as before
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results.records:
            return
        terminalreporter.section("promstack summary")
        for line in self.summary() + self.written:
            terminalreporter.write_line(line)

    def summary(self) -> list[str]:
        from ..report.summary import run_summary

        engine = self.batch.engine
        if engine is not None and engine.log is not None and engine.log.failed:
            self.warn(f"call log not written: {engine.log.failed}")
        if engine is not None and engine.log is not None and engine.log.unrotated:
            self.warn(f"call log not rotated: {engine.log.unrotated}")
        for note in engine.notes if engine is not None else []:  # e.g. a judge's structured output refused
            self.warn(note)
        results = self.results
        return run_summary(list(results.records.values()), comparison=results.comparison,
                           prompt_name=self.versions.name, arena=results.arena(),
                           gate_lines=[v.line() for v in results.gate_verdicts] + results.gate_warnings,
                           selection=results.selection(), notes=self.versions.notes,
                           cache_mode=self.settings.cache_mode,
                           interrupted=self.planned_count() if self.interrupted else None,
                           warnings=self.warnings)

    def close(self) -> None:
        self.batch.close()
        self._unimport()


def _outcome(report: pytest.TestReport, current: str) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "error" if report.when != "call" else "failed"
    if report.skipped:
        return "skipped"
    return current
