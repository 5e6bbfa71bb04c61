"""pytest hooks only; each delegates to the session object or a pure module.

Nothing happens without ``--promstack``: no files are collected and nothing heavy is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from .options import add_options, settings_options
from .stash import SESSION_KEY


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from ..score import hookspecs as hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser.getgroup("promstack", "prompt regression tests (pytest-promstack)").addoption)


@pytest.hookimpl(trylast=True)
def pytest_promstack_register_assertions(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from ..score.assertions import register_builtins

    register_builtins(register)


@pytest.hookimpl(trylast=True)
def pytest_promstack_register_judges(register: Callable[[str, Any], None], settings: Any) -> None:
    for name, judge in (getattr(settings, "judges", None) or {}).items():
        register(name, judge)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``--promstack-estimate`` calls nothing and runs no item: it reads every planned case in
    this one process, so xdist stays off (its controller collects nothing to estimate)."""
    option = config.option
    if getattr(option, "promstack", False) and getattr(option, "promstack_estimate", False) \
            and getattr(option, "numprocesses", None):
        option.numprocesses, option.dist, option.tx = 0, "no", []


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.promstack:
        return
    from ..config.settings import load_settings
    from ..model.errors import ConfigError
    from ..score.registry import build_registry, with_judges
    from .session import PromstackSession
    from .xdist import worker_count

    try:
        root = _root(config)
        settings = load_settings(root, settings_options(config.option, config.invocation_params.dir,
                                                         workers=worker_count(config)))
        registry = build_registry(config.hook, settings)
        ps = PromstackSession(config, with_judges(settings, registry), registry)
    except ConfigError as exc:
        raise pytest.UsageError(f"promstack: invalid configuration\n{exc}") from None
    config.stash[SESSION_KEY] = ps
    ps.observe_prompts()
    config.pluginmanager.register(Reporter(ps), "promstack-reporter")
    ps.restore_sigterm = _interrupts(config, ps)
    if config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(), "promstack-xdist")


def _interrupts(config: pytest.Config, ps: Any) -> Any:
    """SIGTERM (CI cancelling a job) ends the run like Ctrl-C: pytest then finishes the session,
    so what completed is kept and nothing half-done is cached. Returns the old handlers.

    Under xdist the controller does not stop at once: it passes SIGTERM on to the workers and
    goes on receiving their reports; each worker stops calling, scores what finished and sends
    it along as it ends; then the controller ends as interrupted, with every finished case. A
    second signal stops the controller at once. A worker acts on the first signal only (a
    terminal's Ctrl-C reaches it, and the controller's SIGTERM after it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    # xdist turns -n N into --dist load before plugins configure; its controller registers later
    controller = not ps.is_worker and getattr(config.option, "dist", "no") != "no"
    got: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        got.append(signum)
        if controller and len(got) == 1:
            _pass_on(ps.worker_pids)
            return
        if ps.is_worker and len(got) > 1:
            return
        raise KeyboardInterrupt(f"signal {signum}")

    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt)}
    if controller or ps.is_worker:
        old[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    return old


def _pass_on(pids: list[int]) -> None:
    import contextlib
    import os
    import signal

    for pid in pids:
        with contextlib.suppress(OSError):  # that worker has ended already
            os.kill(pid, signal.SIGTERM)


def _root(config: pytest.Config) -> Path:
    from ..config.settings import find_config

    for candidate in (config.rootpath, config.invocation_params.dir):
        if config.option.promstack_config or find_config(candidate, None) is not None:
            return candidate
    return config.rootpath


def _session(config: pytest.Config) -> Any:
    return config.stash.get(SESSION_KEY, None) if config.option.promstack else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    ps = _session(parent.config)
    if ps is None or not ps.wants(file_path):
        return None
    from .items import PromptFile

    return PromptFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    if _session(collector.config) is not None:
        from .items import PromptFile, plan_skipped

        if isinstance(collector, PromptFile):
            plan_skipped(collector)
    return report


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    ps = _session(config)
    return ps.header(items) if ps is not None else None


def pytest_collection_finish(session: pytest.Session) -> None:
    ps = _session(session.config)
    if ps is not None and not session.config.option.collectonly and not ps.settings.run.estimate:
        ps.start_calls(session.items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    ps = _session(session.config)
    if ps is not None and ps.settings.run.estimate and not session.config.option.collectonly:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in ps.estimate(session.items):
            if reporter is not None:
                reporter.write_line(line)
        return True  # estimate only: no item runs, no model is called
    if ps is not None and not session.config.option.collectonly:
        reporter = None if ps.is_worker else session.config.pluginmanager.get_plugin("terminalreporter")
        ps.wait_for_calls(reporter)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    ps = _session(item.config)
    if ps is None:
        return report
    from ..model.errors import PromstackError

    if call.excinfo is not None and isinstance(call.excinfo.value, PromstackError):
        from ..util.text import safe

        # users' mistakes get one line, not a traceback; a provider's or a file's control
        # characters are shown escaped, never sent to the terminal
        report.longrepr = safe(str(call.excinfo.value), newlines=True)
    from .items import CaseItem, FileErrorItem

    # The case's record travels once: on the call report, or on a failed/skipped setup (then
    # there is no call). pytest keeps every report until the end, so this also keeps memory flat.
    carries = call.when == "call" or (call.when == "setup" and not report.passed)
    if carries and isinstance(item, CaseItem):
        problem = str(call.excinfo.value) if call.excinfo is not None else None
        report.promstack = ps.result_of(item, call.when, problem)
        # The models answered before the items ran (the item only scores), so the measured
        # duration is about 1 ms; JUnit's time and --durations get the case's model latency.
        report.duration += sum(report.promstack["latencies"]) / 1000
    elif call.when == "setup" and isinstance(item, CaseItem):
        report.promstack = ps.identity_of(item)  # small: so a crash before the call is still counted
    elif carries and isinstance(item, FileErrorItem):
        report.promstack = ps.file_error_result(item)
    return report


class Reporter:
    """Registered only with ``--promstack`` (as junitxml registers its writer): gathers the
    per-case results that travel on the reports, so xdist and no xdist give the same totals."""

    def __init__(self, ps: Any) -> None:
        self.ps = ps

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.ps.record(report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    ps = _session(config)
    if ps is None or not ps.records:
        return
    terminalreporter.section("promstack summary")
    for line in ps.summary():
        terminalreporter.write_line(line)
    for line in ps.written:
        terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file: the salvaged cases go in it
def pytest_sessionfinish(session: pytest.Session) -> None:
    ps = _session(session.config)
    if ps is None:
        return
    # Ctrl-C or SIGTERM; not a plugin's deliberate stop (--sw's stop at a failure is like -x:
    # the cases after it did not run, and none is scored as if it had)
    ps.interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED and not session.shouldstop
    ps.planned = session.testscollected
    if ps.interrupted:
        ps.salvage()
        if not ps.is_worker:  # a worker's go to the controller with its end (plugin/xdist.py)
            for report in ps.salvaged_reports():
                session.config.hook.pytest_runtest_logreport(report=report)
    gates_passed = ps.check_gates()
    regressed = ps.compare_baseline()
    if session.exitstatus == pytest.ExitCode.OK:
        from ..results.baseline import REGRESSION
        from ..results.gates import GATE_FAILED

        if not gates_passed:
            session.exitstatus = GATE_FAILED  # tests passed, a gate did not: a status of its own
        elif regressed and ps.settings.run.fail_on_regression:
            session.exitstatus = REGRESSION
    ps.written = ps.finish()


def pytest_unconfigure(config: pytest.Config) -> None:
    ps = _session(config)
    if ps is not None:
        ps.close()
        if ps.restore_sigterm is not None:
            import signal

            for signum, handler in ps.restore_sigterm.items():
                signal.signal(signum, handler)
