from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.project import KEY_ENV, config, write


@pytest.fixture(scope="session", autouse=True)
def _heavy_imports_once() -> None:
    """pytester's in-process runs drop modules imported inside them; importing litellm and
    pandas here once keeps every inner run from paying their import again."""
    from pytest_promstack.execute.litellm_import import import_litellm

    import_litellm()
    import gc
    import importlib
    import pkgutil

    import pytest_promstack

    # every module of every subpackage: one first imported inside an inner run is dropped after
    # it while its package keeps it as an attribute, so the next run's `from ..score import
    # assertions` gets that stale copy and `from ..score.assertions import x` a fresh one
    ours = [m.name for m in pkgutil.walk_packages(pytest_promstack.__path__, prefix="pytest_promstack.")
            if m.name != "pytest_promstack.execute.providers.local"]
    for name in ("pandas", "numpy", "diskcache", "tabulate", "hypothesis", *ours):
        with contextlib.suppress(ImportError):  # hypothesis: its plugin imports it in every inner run
            importlib.import_module(name)
    gc.freeze()  # inner runs gc.collect() at their end; keep that off these big module graphs


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


class Project:
    """A promstack project in a pytester dir, run in-process with invariant checks."""

    def __init__(self, pytester: pytest.Pytester, server: FakeOpenAI) -> None:
        self.pytester = pytester
        self.server = server
        self.path = pytester.path

    def write(self, files: dict[str, str | bytes], **config_kwargs: Any) -> Project:
        if "promstack.yaml" not in files:
            files = {"promstack.yaml": config(self.server.url, **config_kwargs), **files}
        write(self.path, files)
        return self

    def run(self, *args: str) -> pytest.RunResult:
        result = self.pytester.runpytest("--promstack", "-p", "no:cacheprovider", *args)
        check_invariants(result)
        return result


def check_invariants(result: pytest.RunResult) -> None:
    """On every run: no traceback of ours; the summary's case count equals the items run."""
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    if result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return
    outcomes = result.parseoutcomes()
    ran = sum(outcomes.get(k, 0) for k in ("passed", "failed", "errors", "error", "xfailed", "xpassed",
                                          "skipped"))
    cases = summary_cases(result)
    if cases is not None:
        assert cases == ran, f"summary says {cases} cases, pytest ran {ran}"


def summary_cases(result: pytest.RunResult) -> int | None:
    rows = summary_rows(result)
    return sum(int(r["cases"]) for r in rows) if rows else None


def summary_rows(result: pytest.RunResult) -> list[dict[str, str]]:
    """The promstack summary table, parsed back into dicts by column."""
    lines = result.stdout.lines
    try:
        top = next(i for i, line in enumerate(lines) if "promstack summary" in line)
        start = next(i for i in range(top, len(lines)) if lines[i].startswith("suite ")) - 1
    except StopIteration:
        return []
    header = lines[start + 1]
    rule = lines[start + 2]
    spans, col = [], 0
    for part in rule.split("  "):
        if part:
            spans.append((col, col + len(part)))
        col += len(part) + 2
    names = [header[a:b].strip() for a, b in spans]
    rows = []
    for line in lines[start + 3:]:
        if not line.strip() or line.startswith(("promstack:", "=")):
            break
        cells = line.split()
        rows.append(dict(zip(names, cells, strict=False)))
    return rows


@pytest.fixture
def project(pytester: pytest.Pytester, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv(KEY_ENV, "test-key")
    monkeypatch.delenv("CI", raising=False)  # the inner runs are a user's local runs (the registry tests set CI)
    return Project(pytester, server)
