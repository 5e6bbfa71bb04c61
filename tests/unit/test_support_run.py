"""The shared subprocess helper gives every run a user's clean environment."""

from __future__ import annotations

import json
import os

from tests.support.run import VENV_BIN, run_python, run_shell


def test_subprocess_runs_get_no_key_no_ci_no_variable_of_this_run_and_the_venv_first_on_path(monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "SOME_VENDOR_API_KEY", "PROMSTACK_TEST_KEY", "PYTEST_XDIST_WORKER", "CI"):
        monkeypatch.setenv(name, "leak")
    done = run_python("import json, os; print(json.dumps(dict(os.environ)))", cwd=tmp_path,
                      env={"PROMSTACK_TEST_KEY": "k"}).check()
    env = json.loads(done.stdout)
    assert "leak" not in env.values()
    assert env["PROMSTACK_TEST_KEY"] == "k"  # what a test passes is kept
    assert env["PATH"].split(":")[0] == str(VENV_BIN)
    assert env["HOME"] != os.environ["HOME"]
    assert not os.path.exists(os.path.join(env["HOME"], ".gitconfig"))  # no user config to read
    assert run_shell("command -v promstack", cwd=tmp_path).check().stdout.strip() == str(VENV_BIN / "promstack")


def test_the_result_parses_pytests_summary_and_matches_lines(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    assert 0\n", encoding="utf-8")
    done = run_shell("pytest -q -p no:cacheprovider -p no:randomly test_x.py", cwd=tmp_path)
    assert done.returncode == 1
    done.assert_outcomes(passed=1, failed=1)
    done.fnmatch_lines(["*1 failed, 1 passed*"])
    done.no_fnmatch_line("*Traceback*")
