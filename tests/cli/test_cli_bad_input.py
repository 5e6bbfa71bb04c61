"""The promstack command on broken or hostile input: one line and exit 4, never a
traceback; registry data printed with its control characters escaped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_promstack.cli import main
from tests.support.project import config, one_error_line, write

PROMPT = "id: support\nmessages:\n  - {role: user, content: '{{ input }}'}\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose prompt is recorded (no model is called by the commands tested here)."""
    suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*.csv"]}}
    write(tmp_path, {"promstack.yaml": config("http://127.0.0.1:9/v1", suites=suites),
                     "prompts/support.yaml": PROMPT, "prompt_tests/a.csv": "input,__expected\n질문,contains:질문\n"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PROMSTACK_USER", "민지")
    assert main(["prompt", "list"]) == 0
    return tmp_path


def _results(tmp_path: Path, cases: object) -> Path:
    run = {"id": "r", "started": "", "finished": "", "git_commit": None, "settings": {}}
    doc = {"schema": "promstack-results/1", "run": run, "cases": cases, "summary": [], "quality": None,
           "calibration": [], "arena": None, "gates": [], "gate_warnings": [], "selection": [], "baseline": None,
           "prompts": []}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("cases", "problem"), [
    ([1, 2], "cases[0]: 1 is not of type 'object'"),
    ([{"outcome": 3}], "cases[0]: 'suite' is a required property"),
])
def test_report_of_a_results_json_breaking_the_schema_exits_4_naming_file_and_place(tmp_path, capsys, cases, problem):
    path = _results(tmp_path, cases)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 4
    line = one_error_line(capsys)
    assert line.startswith(f"promstack report: {path}: {problem}; ")
    assert "write it again with --promstack-json" in line
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("branch", ["../../x", "a/b", "a\\b", ".."])
def test_merge_refuses_a_branch_name_that_is_a_path(repo, capsys, branch):
    assert main(["prompt", "merge", "support", branch]) == 4
    assert "a branch is a name, not a path" in one_error_line(capsys)
    assert (repo / "prompts/support.yaml").read_text(encoding="utf-8") == PROMPT


def test_prompt_commands_on_an_index_of_wrong_types_exit_4_naming_the_key(repo, capsys):
    index = repo / ".promstack/prompts/index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    data["prompts"]["support"]["versions"][0]["number"] = "one"
    index.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert main(["prompt", "log", "support"]) == 4
    assert one_error_line(capsys) == ("promstack prompt: .promstack/prompts/index.json: prompts.support.versions[0].number: "
                                 "a string, expected an integer; restore it from git (git checkout -- .promstack/prompts)")


def test_registry_data_is_printed_with_control_characters_escaped(repo, capsys):
    index = repo / ".promstack/prompts/index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    v1 = data["prompts"]["support"]["versions"][0]
    v1["author"] = "\x1b[2J\x1b[H민지"
    v1["message"] = "ALL TESTS PASSED\r\u202e"
    data["prompts"]["support"]["labels"] = {"prod\x1b[0m": 1}
    index.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    snapshot = repo / ".promstack/prompts/support" / v1["file"]
    snapshot.write_text(PROMPT + "# \u202etitle\u2066\n", encoding="utf-8")  # YAML allows these; the hash holds
    capsys.readouterr()
    for args in (["log", "support"], ["list"], ["show", "support", "--version", "1"]):
        assert main(["prompt", *args]) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in ("\x1b", "\r", "\u202e", "\x07"))
    assert r"\x1b[2J\x1b[H민지" in out
    assert r"ALL TESTS PASSED\r\u202e" in out
    assert r"prod\x1b[0m=v1" in out
    assert r"# \u202etitle\u2066" in out
    assert "{{ input }}" in out  # the file's own text otherwise as it is
