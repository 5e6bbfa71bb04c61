from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
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
            if m.name != "pytest_promstack.execute.providers.local" and not m.name.endswith(".__main__")]
    for name in ("pandas", "numpy", "diskcache", "tabulate", "hypothesis", *ours):
        with contextlib.suppress(ImportError):  # hypothesis: its plugin imports it in every inner run
            importlib.import_module(name)
    gc.freeze()  # inner runs gc.collect() at their end; keep that off these big module graphs


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


class Project:
    """A promstack project in a pytester dir, run in-process with invariant checks.

    Under `both_modes` a project lives in a folder of its own, adds its mode's xdist options to
    every run and keeps each run's results document (`documents`) for the comparison."""

    def __init__(self, pytester: pytest.Pytester, server: FakeOpenAI, path: Path | None = None,
                 mode: str | None = None) -> None:
        self.pytester = pytester
        self.server = server
        self.path = path or pytester.path
        self.mode = mode
        self.documents: list[dict[str, Any] | None] = []

    def write(self, files: dict[str, str | bytes], **config_kwargs: Any) -> Project:
        if "promstack.yaml" not in files:
            files = {"promstack.yaml": config(self.server.url, **config_kwargs), **files}
        write(self.path, files)
        return self

    def run(self, *args: str) -> pytest.RunResult:
        if self.mode is None:
            return self._run(args)
        named = _json_option(args)
        doc = self.path / named if named else self.path.parent / f"{self.mode}-{len(self.documents) + 1}.json"
        doc.unlink(missing_ok=True)  # a run that writes none records None
        result = self._run((*args, *(() if named else (f"--promstack-json={doc}",)), *MODES[self.mode]))
        self.documents.append(json.loads(doc.read_text(encoding="utf-8")) if doc.exists() else None)
        return result

    def _run(self, args: tuple[str, ...]) -> pytest.RunResult:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.path)
            result = self.pytester.runpytest("--promstack", "-p", "no:cacheprovider", *args)
        check_invariants(result)
        return result


def _json_option(args: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith("--promstack-json="):
            return arg.split("=", 1)[1]
        if arg == "--promstack-json":
            return args[i + 1]
    return None


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


MODES = {"no-xdist": (), "xdist": ("-n", "2")}
# What may differ between two runs of the same project: when they ran, and how long each call
# took. Everything else (settings, cases and their order, outcomes, outputs, scores, assertions,
# judges, tokens, costs, cache use, summaries, gates, baselines, arena) must be the same with
# and without xdist.
TIMINGS = re.compile(r"latencies|p\d+_ms\w*")  # latencies, p95_ms, p95_ms_before, p95_ms_delta, ...
RUN_STAMPS = {"id", "started", "finished", "git_commit"}  # of the run, and of the baseline's run


class BothModes:
    """`for project in both_modes:` runs the loop's body twice, each time on a fresh project
    with a loopback server of its own: first without xdist, then with `-n 2` added to every
    `project.run`. When the loop ends, the results documents of the two sequences of runs must
    be the same, run by run, except for timings and run stamps (`TIMINGS`, `RUN_STAMPS`)."""

    def __init__(self, pytester: pytest.Pytester, stack: contextlib.ExitStack) -> None:
        self.pytester = pytester
        self.stack = stack
        self.modes = list(MODES)

    def __iter__(self) -> Iterator[Project]:
        projects = []
        for mode in self.modes:
            server = self.stack.enter_context(FakeOpenAI())
            projects.append(Project(self.pytester, server, self.pytester.mkdir(mode), mode))
            print(f"---- both_modes: {mode} ----")  # shown with a failure: which mode failed
            yield projects[-1]
        if len(projects) == 2:
            assert_same_documents(*projects)


def assert_same_documents(one: Project, two: Project) -> None:
    assert len(one.documents) == len(two.documents), "the two modes ran a different number of runs"
    for i, (a, b) in enumerate(zip(one.documents, two.documents, strict=True), 1):
        diffs = document_diffs(comparable(a), comparable(b))
        assert not diffs, (f"run {i}: the results document differs between {one.mode} and {two.mode}:\n"
                           + "\n".join(diffs[:20]))


def comparable(doc: Any, key: str = "") -> Any:
    """The document without what legitimately differs; cases keyed by id for a readable diff."""
    if isinstance(doc, dict):
        return {k: comparable(v, k) for k, v in doc.items()
                if not TIMINGS.fullmatch(k) and not (key == "run" and k in RUN_STAMPS)}
    if isinstance(doc, list) and key == "cases":
        return {"(order)": [c["case_id"] for c in doc], **{c["case_id"]: comparable(c) for c in doc}}
    if isinstance(doc, list):
        return [comparable(v) for v in doc]
    return doc


def document_diffs(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys(), key=str)
                for d in document_diffs(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in document_diffs(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"  {path or '.'}: {a!r:.200} != {b!r:.200}"]


@pytest.fixture
def both_modes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[BothModes]:
    """Main stories run without xdist and with `-n 2`, and their results documents compared:
    `for project in both_modes: project.write(...); project.run(...)...`."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    monkeypatch.delenv("CI", raising=False)
    with contextlib.ExitStack() as stack:
        yield BothModes(pytester, stack)
