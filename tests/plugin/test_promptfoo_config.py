"""A promptfoo config is a suite: ``--promstack-config promptfooconfig.yaml`` or a ``promptfoo:``
entry in promstack.yaml runs its providers, prompts and tests (inline and ``file://``) against
the loopback server, with its defaultTest; what we cannot run is one line naming the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROMPTFOO = """
description: 환불 안내
prompts:
  - '질문: {{ question }}'
  - file://prompts/polite.txt
providers:
  - id: openai:chat:gpt-4o-mini
    config: {temperature: 0, max_tokens: 64}
defaultTest:
  assert:
    - type: icontains
      value: 'echo:'
tests:
  - description: 환불
    vars: {question: 환불 되나요}
    assert:
      - type: contains
        value: '{{ question }}'
  - file://tests/*.csv
"""


@pytest.fixture
def promptfoo_project(project, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", project.server.url)  # promptfoo and litellm both read it
    project.write({"promptfooconfig.yaml": PROMPTFOO,
                   "prompts/polite.txt": "정중하게 답하세요: {{ question }}",
                   "tests/more.csv": "question,__expected\n교환 되나요,contains:교환\n배송은요,contains:없는말\n"})
    return project


def test_a_promptfoo_config_runs_as_a_suite_unchanged(promptfoo_project):
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    # 3 tests x 2 prompts on one provider; the 배송 row fails its own contains on both prompts
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*promptfooconfig.yaml::환불[[]prompt1-openai:chat:gpt-4o-mini[]] PASSED*",
        "*promptfooconfig.yaml::환불[[]polite-openai:chat:gpt-4o-mini[]] PASSED*",
        "*tests/more.csv::row-3[[]polite-openai:chat:gpt-4o-mini[]] FAILED*",
    ])
    assert promptfoo_project.server.count == 6
    sent = [r["messages"][-1]["content"] for r in promptfoo_project.server.requests]
    assert "질문: 환불 되나요" in sent
    assert "정중하게 답하세요: 교환 되나요" in sent
    assert {r["model"] for r in promptfoo_project.server.requests} == {"gpt-4o-mini"}


def test_a_promptfoo_entry_in_promstack_yaml_adds_its_suite(promptfoo_project):
    promptfoo_project.write({"evals/promptfooconfig.yaml": PROMPTFOO.replace("file://tests/*.csv",
                                                                             "file://../tests/*.csv")
                             .replace("file://prompts/polite.txt", "file://../prompts/polite.txt")},
                            promptfoo="evals/promptfooconfig.yaml", suites={"regression": {"tests": ["nothing/*"]}})
    (promptfoo_project.path / "nothing").mkdir()
    (promptfoo_project.path / "nothing/a.csv").write_text("input\nx\n", encoding="utf-8")
    result = promptfoo_project.run("--promstack-suite", "evals", "-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=2)


def test_what_a_promptfoo_config_asks_and_we_do_not_run_is_one_line_per_key(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "providers:\n  - id: openai:chat:gpt-4o-mini", "scenarios: []\nproviders:\n  - id: exec:./run.sh\n"
        "  - id: openai:chat:gpt-4o-mini")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*promptfooconfig.yaml: scenarios: not supported here; write each scenario's vars into the tests*",
        "*promptfooconfig.yaml: providers[[]0[]]: provider 'exec:./run.sh' is not a model litellm can call (a command*",
    ])


def test_import_writes_the_promstack_yaml_that_runs_the_same_cases(promptfoo_project, capsys):
    from pytest_promstack.cli import main

    (promptfoo_project.path / "promstack.yaml").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(promptfoo_project.path)
        assert main(["import", "promptfoo"]) == 0
        assert main(["import", "promptfoo"]) == 4  # never overwrites
    out, err = capsys.readouterr()
    assert out.splitlines()[:2] == ["promstack: wrote promstack.yaml", "promstack: wrote promptfoo_tests.yaml"]
    assert "promstack.yaml, promptfoo_tests.yaml exists already" in err
    written = (promptfoo_project.path / "promstack.yaml").read_text(encoding="utf-8")
    assert "model: openai/gpt-4o-mini" in written
    assert "tests:\n    - promptfoo_tests.yaml\n    - tests/*.csv" in written
    (promptfoo_project.path / "promptfooconfig.yaml").unlink()  # the team switched
    result = promptfoo_project.run("-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=2)


# ---- promptfoo's own example configs, unchanged (tests/data/promptfoo_examples) -------------

EXAMPLES = Path(__file__).parents[1] / "data" / "promptfoo_examples"


def example(project, monkeypatch, name: str):
    shutil.copytree(EXAMPLES / name, project.path, dirs_exist_ok=True)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", project.server.url)
    return project


def test_promptfoos_getting_started_example_runs_unchanged(project, monkeypatch):
    example(project, monkeypatch, "getting-started")
    project.server.replies.update({
        "Convert this English to French: Hello world": "Bonjour le monde",
        "Translate to French: Hello world": "Salut le monde",  # its contains fails, as it would in promptfoo
        "Convert this English to Spanish: Where is the library?": "¿Dónde está la biblioteca?",
        "Translate to Spanish: Where is the library?": "¿DÓNDE ESTÁ LA BIBLIOTECA?",
    })
    result = project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=2)  # 2 tests x 2 prompts x 2 providers
    result.stdout.fnmatch_lines(["*contains: 'Bonjour le monde' in 'Salut le monde'*"])
    assert {r["model"] for r in project.server.requests} == {"gpt-4.1", "o4-mini"}


def test_promptfoos_simple_csv_example_runs_unchanged(project, monkeypatch):
    """Its prompts.txt holds two prompts between ---, and the first reads JSON with | load."""
    example(project, monkeypatch, "simple-csv")
    result = project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    sent = [r["messages"][-1]["content"] for r in project.server.requests]
    assert len(sent) == 8  # 4 rows x 2 prompts
    assert any("- Tone: formal\n- Length: brief" in s for s in sent)
    assert any(s.startswith("You are a conversational language assistant. Follow the style configuration: "
                            '{"tone":"casual"') for s in sent)
    # the loopback server echoes: rows whose expected word is in the prompt pass
    result.assert_outcomes(passed=0, failed=8)
    result.stdout.fnmatch_lines(["*tests.csv::row-2[[]prompts-1-openai:gpt-3.5-turbo[]] FAILED*",
                                 "*icontains: 'bonjour' in 'echo: You are a skilled translator*"])


def test_promptfoos_json_output_example_names_what_it_asks_in_javascript(project, monkeypatch):
    example(project, monkeypatch, "json-output")
    result = project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    assert project.server.count == 0  # the cases that cannot be scored make no call
    result.stdout.fnmatch_lines([
        "*promptfooconfig.yaml:1: assert[[]1[]]: javascript assertions are not run here (\"JSON.parse(output).color "
        "=== 'yellow' && JSON.parse(output).\"); write the check as python:*",
    ])


def test_default_test_options_threshold_and_metadata_reach_every_case(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "defaultTest:\n  assert:", "defaultTest:\n  threshold: 0.5\n  metadata: {team: cs}\n"
        "  options: {prefix: '[앞] ', transform: output.upper()}\n  assert:")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly",
                                   "-m", "team")  # metadata is a marker of every case
    # with threshold 0.5 the 배송 rows (one of two assertions passing) pass too; the transform
    # upper-cases the output before every check, so 'echo:' is matched case-insensitively only
    result.assert_outcomes(passed=6)
    sent = [r["messages"][-1]["content"] for r in promptfoo_project.server.requests]
    assert all(s.startswith("[앞] ") for s in sent)


def test_a_labelled_file_prompt_keeps_its_label_as_its_id(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "  - file://prompts/polite.txt", "  - {id: file://prompts/polite.txt, label: 정중}")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*promptfooconfig.yaml::환불[[]정중-openai:chat:gpt-4o-mini[]] PASSED*"])
