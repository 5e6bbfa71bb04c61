"""`promstack test`: `--config PATH` picks the config as `--promstack-config` does (it used to
be rejected as an unrecognized argument), and pytest's own options still pass through."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.run import Ran, run_promstack, run_pytest


def promstack_test(*args: str, cwd: Path) -> Ran:
    return run_promstack("test", *args, "-p", "no:cacheprovider", cwd=cwd)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The init starter with its config under a name the default lookup does not find."""
    run_promstack("init", cwd=tmp_path).check()
    (tmp_path / "configs").mkdir()
    text = (tmp_path / "promstack.yaml").read_text(encoding="utf-8")
    (tmp_path / "configs/offline.yaml").write_text(text.replace('["prompt_tests/*.csv"]', '["../prompt_tests/*.csv"]')
                                                   .replace("cassettes: cassettes", "cassettes: ../cassettes")
                                                   .replace("prompt: prompts/", "prompt: ../prompts/"),
                                                   encoding="utf-8")
    (tmp_path / "promstack.yaml").unlink()
    return tmp_path


def test_test_command_reads_the_config_named_by_config(project):
    without = promstack_test(cwd=project)
    assert without.returncode == 4
    assert "no promstack.yaml or [tool.promstack]" in without.stdout + without.stderr
    done = promstack_test("--config", "configs/offline.yaml", cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "5 passed" in done.stdout.splitlines()[-1]
    assert "promstack: calls 5/5 done, 5 from cache" in done.stdout
    assert "warning" not in done.stdout.splitlines()[-1]  # none about the package imported before pytest started


def test_test_command_config_works_with_suite_and_pytest_options(project):
    done = promstack_test("--co", "-q", "--config=configs/offline.yaml", "--suite", "facts", "-k", "capital",
                          cwd=project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "3/5 tests collected (2 deselected)" in done.stdout


def test_test_command_with_a_missing_config_names_it_in_one_line(project):
    done = promstack_test("--config", "configs/nope.yaml", cwd=project)
    assert done.returncode == 4
    assert done.stderr.splitlines() == ["promstack test: --config configs/nope.yaml: file not found; pass a "
                                        "promstack.yaml or pyproject.toml"]
    assert done.stdout == ""


def test_a_config_in_another_folder_runs_that_project(tmp_path):
    """--promstack-config is relative to where pytest starts; `promstack test --config` collects
    that project's folder; and a run that finds the suites' files outside what pytest collects
    says where they are instead of a silent 'no tests ran'."""
    other, here = tmp_path / "d1", tmp_path / "v1"
    (other / "prompt_tests").mkdir(parents=True)
    here.mkdir()
    (other / "promstack.yaml").write_text('models: [{name: app, model: "python:bot:reply"}]\n'
                                          'suites: {s: {tests: ["prompt_tests/*.csv"]}}\n', encoding="utf-8")
    (other / "bot.py").write_text('def reply(messages, vars):\n    return {"text": "안녕 " + vars["input"], "cost_usd": 0}\n',
                                  encoding="utf-8")
    (other / "prompt_tests/a.csv").write_text("input,__expected\n환불,contains:환불\n", encoding="utf-8")
    (here / "test_unrelated.py").write_text("def test_not_ours():\n    raise AssertionError\n", encoding="utf-8")
    cli = promstack_test("--config", "../d1/promstack.yaml", cwd=here)
    assert cli.returncode == 0, cli.stdout[-2000:]
    assert "1 passed" in cli.stdout.splitlines()[-1]  # d1's case; not v1's unrelated test
    plain = run_pytest("--promstack-config", "../d1/promstack.yaml", cwd=here)
    assert (f"promstack: warning: the suites' test files are under {other / 'prompt_tests'}, outside what pytest "
            "collects") in plain.stdout
    assert "run pytest there, or name it: pytest --promstack ../d1/prompt_tests" in plain.stdout
