"""`promstack test`: `--config PATH` picks the config as `--promstack-config` does (it used to
be rejected as an unrecognized argument), and pytest's own options still pass through."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_init import PROMSTACK, clean_env


def promstack(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMSTACK, *args, "-p", "no:cacheprovider"], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The init starter with its config under a name the default lookup does not find."""
    subprocess.run([PROMSTACK, "init"], cwd=tmp_path, env=clean_env(), check=True, capture_output=True)
    (tmp_path / "configs").mkdir()
    text = (tmp_path / "promstack.yaml").read_text(encoding="utf-8")
    (tmp_path / "configs/offline.yaml").write_text(text.replace('["prompt_tests/*.csv"]', '["../prompt_tests/*.csv"]')
                                                   .replace("cassettes: cassettes", "cassettes: ../cassettes")
                                                   .replace("prompt: prompts/", "prompt: ../prompts/"),
                                                   encoding="utf-8")
    (tmp_path / "promstack.yaml").unlink()
    return tmp_path


def test_test_command_reads_the_config_named_by_config(project):
    without = promstack("test", cwd=project)
    assert without.returncode == 4
    assert "no promstack.yaml or [tool.promstack]" in without.stdout + without.stderr
    done = promstack("test", "--config", "configs/offline.yaml", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "5 passed" in done.stdout.splitlines()[-1]
    assert "promstack: calls 5/5 done, 5 from cache" in done.stdout
    assert "warning" not in done.stdout.splitlines()[-1]  # none about the package imported before pytest started


def test_test_command_config_works_with_suite_and_pytest_options(project):
    done = promstack("test", "--co", "-q", "--config=configs/offline.yaml", "--suite", "facts", "-k", "capital",
                     cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "3/5 tests collected (2 deselected)" in done.stdout


def test_test_command_with_a_missing_config_names_it_in_one_line(project):
    done = promstack("test", "--config", "configs/nope.yaml", cwd=project)
    assert done.returncode == 4
    assert done.stderr.splitlines() == ["promstack test: --config configs/nope.yaml: file not found; pass a "
                                        "promstack.yaml or pyproject.toml"]
    assert done.stdout == ""
