"""The ``promstack`` fixture: call a prompt (or raw messages) on a model from an ordinary
test and score the reply with the same assertion language as the test files. Available
without ``--promstack``; its calls use the project's cache (and ``--promstack-cache``,
``--promstack-record``), cassettes (``cassettes/fixture.jsonl``) and call log, and appear in
a summary at the end of the run, with or without xdist."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import pytest


class Promstack:
    """What the fixture gives a test::

        def test_refund_reply(promstack):
            r = promstack.run("support", vars={"input": "환불하고 싶어요"}, model="local/gemma-3-270m")
            promstack.check(r, "icontains:환불", "llm-rubric:환불 절차를 안내한다")  # raises AssertionError
            assert r.latency_ms < 5000

        def test_many(promstack):
            replies = promstack.run_many([{"prompt": "support", "vars": {"input": q}} for q in questions])

    A failed call (an HTTP error, a cache miss under ``--promstack-cache replay``) raises
    ``pytest_promstack.model.errors.PromstackError`` and the test fails with one line naming it and
    the test's line; ``allow_error=True`` returns the reply with ``error`` set instead.
    """

    def __init__(self, runner: Any, nodeid: str) -> None:
        self._runner = runner
        self._nodeid = nodeid

    def run(self, prompt: str | Sequence[dict[str, Any]], vars: dict[str, Any] | None = None,
            model: str | None = None, params: dict[str, Any] | None = None, allow_error: bool = False,
            mask_inputs: bool | None = None, guards: bool = True) -> Any:
        """Render ``prompt`` (a prompt id, a prompt file, or a list of chat messages) with
        ``vars`` and call ``model`` (a configured alias or a litellm name). ``mask_inputs``:
        send it with its PII and secrets masked (None: promstack.yaml's ``mask_inputs``);
        ``guards=False``: past promstack.yaml's ``guards:`` (see the SDK's ``complete``)."""
        (reply,) = self.run_many([{"prompt": prompt, "vars": vars, "model": model, "params": params,
                                   "mask_inputs": mask_inputs, "guards": guards}], allow_error=allow_error)
        return reply

    def run_many(self, jobs: Iterable[dict[str, Any]], allow_error: bool = False) -> list[Any]:
        """Run several calls concurrently; each job holds ``prompt`` and optionally ``vars``,
        ``model``, ``params``, ``mask_inputs`` and ``guards``. Replies come back in order."""
        return self._runner.run_many(({**{k: v for k, v in job.items() if k != "mask_inputs"},
                                       "meta": {"case_id": self._nodeid, "mask_inputs": job.get("mask_inputs")}}
                                      for job in jobs), allow_error=allow_error)

    def check(self, reply: Any, *specs: str | dict[str, Any], threshold: float | None = None) -> Any:
        """Assert that ``reply`` passes ``specs`` (``"icontains:환불"``, ``{type: ..., value: ...}``,
        ``"llm-rubric:…"`` with the configured default judge)."""
        __tracebackhide__ = True
        return self._runner.check(reply, *specs, threshold=threshold)


@pytest.fixture(scope="session")
def _promstack_runner(pytestconfig: pytest.Config) -> Iterator[Any]:
    from ..config.settings import load_or_default
    from ..model.errors import ConfigError
    from ..pipeline.runner import Runner
    from ..score.registry import build_registry, with_judges
    from .options import settings_options
    from .xdist import worker_count

    wanted = ("config", "cache", "cache_url", "log", "concurrency", "no_python")
    options = {k: v for k, v in settings_options(pytestconfig.option, pytestconfig.invocation_params.dir,
                                                 workers=worker_count(pytestconfig)).items()
               if k in wanted}
    problem = None
    try:
        settings = load_or_default(pytestconfig.rootpath, options)
    except ConfigError as exc:
        problem = f"promstack: invalid configuration\n{exc}"
    if problem is not None:  # raised here, not in the except: one message, no chained traceback
        pytest.fail(problem, pytrace=False)
    registry = build_registry(pytestconfig.hook, settings)
    runner = Runner(with_judges(settings, registry), registry)
    pytestconfig.stash[RUNNER_KEY] = runner
    yield runner
    runner.close()


@pytest.fixture
def promstack(_promstack_runner: Any, request: pytest.FixtureRequest) -> Promstack:
    """Call prompts on models and check the replies; see ``Promstack``."""
    return Promstack(_promstack_runner, request.node.nodeid)


RUNNER_KEY = pytest.StashKey[Any]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A test's fixture calls travel on its call report (as the cases' records do), so the
    controller sums them under xdist too."""
    report = yield
    runner = item.config.stash.get(RUNNER_KEY, None)
    if call.when == "call" and runner is not None and "promstack" in getattr(item, "fixturenames", ()):
        _one_line(item, call, report)
        records = runner.records(item.nodeid)
        if records:
            report.promstack_fixture = {"records": records, "cassette": runner.cassette_entries(item.nodeid)}
    return report


def _one_line(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Our errors (a failed call, an unknown assertion, a missing template variable) show as
    their one line and the test's line that made the call, not a traceback of our code."""
    from ..model.errors import PromstackError

    exc = call.excinfo.value if call.excinfo is not None else None
    if not isinstance(exc, PromstackError) or call.excinfo is None:
        return
    mine = [e for e in call.excinfo.traceback if str(e.path) == str(item.path)]
    at = f"\n  at {item.path.name}:{mine[-1].lineno + 1}: {str(mine[-1].statement).strip()}" if mine else ""
    runner = item.config.stash.get(RUNNER_KEY, None)
    if at and runner is not None and runner.settings.masking.on("failures"):  # the test's line may quote a value
        from ..safety.mask import Masker

        at = Masker.of(runner.settings.masking).mask(at)
    report.longrepr = f"promstack: {exc}{at}"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(FixtureCalls(config), "promstack-fixture-calls")


class FixtureCalls:
    """Gathers the fixture calls that travel on the reports (on the controller under xdist),
    writes their cassette in record mode and prints their summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.cassette: list[dict[str, Any]] = []
        self.written: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "promstack_fixture", None)
        if data is not None:
            self.records += data["records"]
            self.cassette += data["cassette"]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Record mode: the fixture calls go to ``cassettes/fixture.jsonl`` (controller only)."""
        if not self.cassette or hasattr(self.config, "workerinput"):
            return
        from ..config.settings import load_or_default
        from ..execute.cassettes import write
        from ..pipeline.runner import FIXTURE_SUITE
        from ..util.paths import rel
        from .options import settings_options

        explicit = settings_options(self.config.option, self.config.invocation_params.dir)["config"]
        settings = load_or_default(self.config.rootpath, {"config": explicit})
        path = write(settings.cassette_dir, FIXTURE_SUITE, self.cassette, None)
        self.written.append(f"promstack: wrote {rel(path, settings.root)} ({len(self.cassette)} fixture calls "
                            "recorded)")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.records:
            return
        from ..report.terminal import summary_lines
        from ..results.metrics import summarise, unpriced

        terminalreporter.section("promstack fixture calls")
        for line in summary_lines(summarise(self.records), unpriced(self.records), []):
            terminalreporter.write_line(line)
        runner = self.config.stash.get(RUNNER_KEY, None)
        for warning in runner.warnings if runner is not None else []:
            terminalreporter.write_line(f"promstack: warning: {warning}")
        for line in self.written:
            terminalreporter.write_line(line)
