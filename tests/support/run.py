"""The one way tests start our programs in a subprocess, as a user's shell would.

Every run gets the same clean environment (`environment`): no API key, no variable of this
pytest run (PYTEST_*, xdist's), no CI flag, no PROMSTACK_* setting, an empty HOME (as pytester
gives its runs: no user config is read), and the venv's bin first on PATH so `pytest` and
`promstack` are the installed ones. A test adds what its story needs
(`env={KEY_ENV: "k"}`, `env={"CI": "true"}`). Output is UTF-8 text; every run has a timeout.

    done = run_pytest("--promstack-json=r.json", cwd=project.path, env={KEY_ENV: "k"})
    done.assert_outcomes(passed=2)
    done.fnmatch_lines(["promstack: calls 2/2 done*"])
    run_promstack("report", "r.json", cwd=project.path).check()
    run_shell("pytest --promstack --junitxml=junit.xml", cwd=tmp)     # a README line, under `bash -e`
    run_python("import pytest_promstack.plugin", cwd=tmp)
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT = 300  # seconds: a generous bound for a loaded 2-core machine; a hang fails, never blocks
VENV_BIN = Path(sys.executable).parent
PROMSTACK = str(VENV_BIN / "promstack")
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
DROPPED_PREFIXES = ("PYTEST_", "CI", "PROMSTACK_")


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: this process's, less keys and this run's variables."""
    kept = {k: v for k, v in os.environ.items()
            if not k.startswith(DROPPED_PREFIXES) and not k.endswith("_API_KEY") and k not in KEYS}
    kept["PATH"] = os.pathsep.join([str(VENV_BIN), kept.get("PATH", "")])
    kept["HOME"] = _empty_home().name
    kept["PYTHONIOENCODING"] = "utf-8"  # the text is decoded as UTF-8 whatever the locale
    return {**kept, **(env or {})}


@functools.cache
def _empty_home() -> tempfile.TemporaryDirectory[str]:
    """One empty HOME for every run of this process, removed when the process ends."""
    return tempfile.TemporaryDirectory(prefix="promstack-home-")


@dataclass(frozen=True)
class Ran:
    """A finished subprocess: its exit code and output, with pytester's matchers."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def last_line(self) -> str:
        """pytest's final summary line (`== 2 passed in 0.1s ==`), or '' without output."""
        return self.lines[-1] if self.lines else ""

    def tail(self, chars: int = 3000) -> str:
        """The end of both streams, for an assertion message."""
        return f"exit {self.returncode}\n{self.stdout[-chars:]}\n--- stderr ---\n{self.stderr[-chars:]}"

    def check(self) -> Ran:
        assert self.returncode == 0, self.tail()
        return self

    def fnmatch_lines(self, patterns: Sequence[str]) -> None:
        pytest.LineMatcher(self.lines).fnmatch_lines(list(patterns))

    def no_fnmatch_line(self, pattern: str) -> None:
        pytest.LineMatcher(self.lines).no_fnmatch_line(pattern)

    def as_run_result(self) -> pytest.RunResult:
        """The same run as pytester's RunResult (for `parseoutcomes`, `check_invariants`)."""
        return pytest.RunResult(self.returncode, self.lines, self.stderr.splitlines(), 0.0)

    def outcomes(self) -> dict[str, int]:
        return self.as_run_result().parseoutcomes()

    def assert_outcomes(self, **expected: int) -> None:
        """As pytester's: every outcome not named must be 0."""
        self.as_run_result().assert_outcomes(**expected)


def run(argv: Sequence[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT) -> Ran:
    """Any program, in the clean environment, waited for."""
    done = subprocess.run(list(argv), cwd=cwd, env=environment(env), capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout, check=False)
    return Ran(done.args, done.returncode, done.stdout, done.stderr)


def run_pytest(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> Ran:
    """`pytest --promstack -p no:cacheprovider ARGS` with this interpreter."""
    return run(pytest_argv(*args), cwd=cwd, env=env, timeout=timeout)


def pytest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "--promstack", "-p", "no:cacheprovider", *args]


def run_promstack(*args: str, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
                  timeout: float = TIMEOUT) -> Ran:
    """The installed `promstack` console script."""
    return run([PROMSTACK, *args], cwd=cwd, env=env, timeout=timeout)


def run_python(code: str, *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
               timeout: float = TIMEOUT) -> Ran:
    """`python -c CODE` (dedented) with this interpreter."""
    return run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, timeout=timeout)


def run_shell(command: str, *, cwd: Path | str, env: Mapping[str, str] | None = None,
              timeout: float = TIMEOUT) -> Ran:
    """A command line as a README or a workflow step has it, under `bash -e` as GitHub runs a
    step; `pytest` and `promstack` are the venv's."""
    return run(["bash", "-e", "-c", command], cwd=cwd, env=env, timeout=timeout)


def start(argv: Sequence[str], *, cwd: Path | str | None = None,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """A program left running (to signal or kill it): stdout and stderr merged into one pipe."""
    return subprocess.Popen(list(argv), cwd=cwd, env=environment(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8")
