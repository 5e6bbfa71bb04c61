"""The ``promstack`` fixture: call a prompt (or raw messages) on a model from an ordinary
test and score the reply with the same assertion language as the test files. Available
without ``--promstack``; its calls use the project's cache, cassettes and call log, and
appear in a summary at the end of the run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest


class Promstack:
    """What the fixture gives a test::

        def test_refund_reply(promstack):
            r = promstack.run("support", vars={"input": "환불하고 싶어요"}, model="local/gemma-3-270m")
            promstack.check(r, "icontains:환불")   # raises AssertionError listing each check
            assert r.latency_ms < 5000

        def test_many(promstack):
            replies = promstack.run_many([{"prompt": "support", "vars": {"input": q}} for q in questions])
    """

    def __init__(self, runner: Any, nodeid: str) -> None:
        self._runner = runner
        self._nodeid = nodeid

    def run(self, prompt: str | Sequence[dict[str, Any]], vars: dict[str, Any] | None = None,
            model: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """Render ``prompt`` (a prompt id, a prompt file, or a list of chat messages) with
        ``vars`` and call ``model`` (a configured alias or a litellm name)."""
        (reply,) = self.run_many([{"prompt": prompt, "vars": vars, "model": model, "params": params}])
        return reply

    def run_many(self, jobs: Iterable[dict[str, Any]]) -> list[Any]:
        """Run several calls concurrently; each job holds ``prompt`` and optionally ``vars``,
        ``model`` and ``params``. Replies come back in order."""
        return self._runner.run_many({**job, "meta": {"case_id": self._nodeid}} for job in jobs)

    def check(self, reply: Any, *specs: str | dict[str, Any], threshold: float | None = None) -> Any:
        """Assert that ``reply`` passes ``specs`` (``"icontains:환불"``, ``{type: ..., value: ...}``)."""
        __tracebackhide__ = True
        return self._runner.check(reply, *specs, threshold=threshold)


@pytest.fixture(scope="session")
def _promstack_runner(pytestconfig: pytest.Config) -> Iterator[Any]:
    from .config import load_or_default
    from .registry import build_registry
    from .runner import Runner

    settings = load_or_default(pytestconfig.rootpath)
    runner = Runner(settings, build_registry(pytestconfig.hook, settings))
    pytestconfig.stash[RUNNER_KEY] = runner
    yield runner
    runner.close()


@pytest.fixture
def promstack(_promstack_runner: Any, request: pytest.FixtureRequest) -> Promstack:
    """Call prompts on models and check the replies; see ``Promstack``."""
    return Promstack(_promstack_runner, request.node.nodeid)


RUNNER_KEY = pytest.StashKey[Any]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runner = config.stash.get(RUNNER_KEY, None)
    if runner is None or not runner.replies:
        return
    from .metrics import summarise, unpriced
    from .report.terminal import summary_lines

    records = runner.records()
    terminalreporter.section("promstack fixture calls")
    for line in summary_lines(summarise(records), unpriced(records), []):
        terminalreporter.write_line(line)
    for warning in runner.warnings:
        terminalreporter.write_line(f"promstack: warning: {warning}")
