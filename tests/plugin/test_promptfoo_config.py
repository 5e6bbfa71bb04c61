"""A promptfoo config is a suite: ``--promstack-config promptfooconfig.yaml`` or a ``promptfoo:``
entry in promstack.yaml runs its providers, prompts and tests (inline and ``file://``) against
the loopback server, with its defaultTest; what we cannot run is one line naming the key."""

from __future__ import annotations

import json
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
        "providers:\n  - id: openai:chat:gpt-4o-mini", "extensions: [file://hooks.js]\nproviders:\n  - id: exec:./run.sh\n"
        "  - id: openai:chat:gpt-4o-mini")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*promptfooconfig.yaml: extensions: not supported here; hooks are pytest's here: write them in a conftest.py*",
        "*promptfooconfig.yaml: providers[[]0[]]: provider 'exec:./run.sh' is not a model litellm can call (a command*",
    ])


def test_an_assistant_a_generator_and_command_line_options_are_one_line_each(promptfoo_project):
    promptfoo_project.write({"gen.py": "def make():\n    return []\n", "promptfooconfig.yaml": PROMPTFOO.replace(
        "providers:\n  - id: openai:chat:gpt-4o-mini", "commandLineOptions: {maxConcurrency: 2}\nproviders:\n"
        "  - id: openai:assistant:asst_123\n  - id: openai:chat:gpt-4o-mini").replace(
        "  - file://tests/*.csv\n", "  - file://gen.py:make\n")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines_random([
        "*promptfooconfig.yaml: commandLineOptions: not supported here; give them on the command line*",
        "*promptfooconfig.yaml: providers[[]0[]]: provider 'openai:assistant:asst_123' is an OpenAI assistant (the "
        "Assistants API), not a chat model*",
        "*promptfooconfig.yaml: tests[[]1[]]: 'file://gen.py:make': test generators (python or javascript) and Google "
        "Sheets are not read here; write the tests to a CSV*",
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
                                   "-m", "team", "--promstack-json=out.json")  # metadata is a marker of every case
    # with threshold 0.5 the 배송 rows (one of two assertions passing) pass too; the transform
    # upper-cases the output before every check, so 'echo:' is matched case-insensitively only
    result.assert_outcomes(passed=6)
    sent = [r["messages"][-1]["content"] for r in promptfoo_project.server.requests]
    assert all(s.startswith("[앞] ") for s in sent)
    doc = json.loads((promptfoo_project.path / "out.json").read_text(encoding="utf-8"))
    assert [c["metadata"] for c in doc["cases"]] == [{"team": "cs"}] * 6  # and in the results, to filter on


def test_a_labelled_file_prompt_keeps_its_label_as_its_id(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "  - file://prompts/polite.txt", "  - {id: file://prompts/polite.txt, label: 정중}")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*promptfooconfig.yaml::환불[[]정중-openai:chat:gpt-4o-mini[]] PASSED*"])


# ---- scenarios, defaultTest from a file, assert-set in defaultTest, the grading provider ------

SCENARIOS = """
prompts:
  - '{{ language }}: {{ input }}'
providers:
  - openai:chat:gpt-4o-mini
defaultTest:
  assert:
    - type: icontains
      value: 'echo:'
tests:
  - description: 단독
    vars: {language: 한국어, input: 안녕}
    assert:
      - type: contains
        value: '한국어: 안녕'
scenarios:
  - config:
      - vars: {language: 영어, polite: 'no'}
      - description: 불어
        vars: {language: 불어}
        metadata: {team: fr}
        assert:
          - type: contains
            value: '불어:'
    tests:
      - description: 인사
        vars: {input: 안녕}
        assert:
          - type: contains
            value: '{{ language }}: 안녕'
      - vars: {input: 잘가, language: 독어}
        assert:
          - type: contains
            value: '독어: 잘가'
  - file://scenarios/*.yaml
"""


@pytest.fixture
def scenario_project(promptfoo_project):
    promptfoo_project.write({
        "promptfooconfig.yaml": SCENARIOS,
        "scenarios/refund.yaml": "description: 환불\nconfig:\n  - vars: {language: 일어}\ntests:\n"
                                 "  - file://scenario_tests/refund.yaml\n",
        "scenario_tests/refund.yaml": "- description: 환불 문의\n  vars: {input: 환불}\n  assert:\n"
                                       "    - type: contains\n      value: '일어: 환불'\n",
    })
    return promptfoo_project


def test_scenarios_expand_each_config_entry_with_each_test_as_promptfoo_merges_them(scenario_project):
    result = scenario_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines([
        "*promptfooconfig.yaml::단독[[]openai:chat:gpt-4o-mini[]] PASSED*",
        "*promptfooconfig.yaml::인사 (language=영어, polite=no)[[]openai:chat:gpt-4o-mini[]] PASSED*",
        # the second test sets language itself: the entries differ in what is left (polite), or by name
        "*promptfooconfig.yaml::scenario-1 (polite=no, test-2)[[]openai:chat:gpt-4o-mini[]] PASSED*",
        "*promptfooconfig.yaml::인사 (불어)[[]openai:chat:gpt-4o-mini[]] PASSED*",
        # the entry's assertion ('불어:') comes with the test's, and the test's language wins: it fails
        "*promptfooconfig.yaml::불어 (test-2)[[]openai:chat:gpt-4o-mini[]] FAILED*",
        "*promptfooconfig.yaml::환불 문의[[]openai:chat:gpt-4o-mini[]] PASSED*",
    ])
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*contains: '불어:' in 'echo: 독어: 잘가'*"])
    sent = sorted(r["messages"][-1]["content"] for r in scenario_project.server.requests)
    assert sent == ["독어: 잘가", "불어: 안녕", "영어: 안녕", "일어: 환불", "한국어: 안녕"]  # 독어 twice: one call, cached


def test_a_scenario_entry_metadata_reaches_its_tests_as_markers(scenario_project):
    result = scenario_project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly", "-m", "team")
    result.assert_outcomes(passed=1, failed=1)  # only the 불어 entry's two tests carry team


def test_a_broken_scenario_fails_its_row_naming_the_scenario_and_key(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": SCENARIOS.replace(
        "      - description: 불어\n", "      - description: 불어\n        options: {prefix: 'x'}\n").replace(
        "  - file://scenarios/*.yaml", "  - config: [{vars: {a: 1}}]\n    test: []\n  - file://nowhere/*.yaml")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly")
    result.stdout.fnmatch_lines_random([
        "*promptfooconfig.yaml:4: scenarios[[]0[]].config[[]1[]]: options: promptfoo ignores a config entry's options*",
        "*promptfooconfig.yaml:6: scenarios[[]1[]]: unknown key 'test' in a scenario (did you mean 'tests'?)*",
        "*promptfooconfig.yaml:7: scenarios[[]2[]]: no file matches 'file://nowhere/[*].yaml'*",
    ])
    result.assert_outcomes(passed=3, failed=4)  # 단독 and the first entry's two tests pass
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_scenario_assertion_problem_names_the_entry_or_test_it_is_in(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": SCENARIOS.replace(
        "            value: '독어: 잘가'", "            value: '독어: 잘가'\n          - type: contians\n"
        "            value: x")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly")
    result.stdout.fnmatch_lines([
        "*promptfooconfig.yaml:5: scenarios[[]0[]].tests[[]1[]].assert[[]1[]]: unknown assertion 'contians' "
        "(did you mean 'contains'?)*",
    ])


DEFAULT = """
assert:
  - type: assert-set
    threshold: 0.5
    assert:
      - type: contains
        value: 환불
      - type: contains
        value: 없는말
  - type: icontains
    value: 'ECHO:'
vars: {question: 기본 질문}
"""


def test_default_test_from_a_file_with_an_assert_set_applies_to_every_test(promptfoo_project):
    promptfoo_project.write({
        "promptfooconfig.yaml": PROMPTFOO.replace(
            "defaultTest:\n  assert:\n    - type: icontains\n      value: 'echo:'\n", "defaultTest: file://evals/default.yaml\n"),
        "evals/default.yaml": DEFAULT})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    # the set passes at 0.5 on the 환불 case only (one of its two); the other cases fail it
    result.stdout.fnmatch_lines(["*promptfooconfig.yaml::환불[[]prompt1-openai:chat:gpt-4o-mini[]] PASSED*"])
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(["*assert-set: 0 of 2 passed*"])


def test_default_test_from_a_file_outside_the_project_is_refused(promptfoo_project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "default.yaml"
    elsewhere.write_text(DEFAULT, encoding="utf-8")
    (promptfoo_project.path / ".git").mkdir()
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "defaultTest:\n  assert:\n    - type: icontains\n      value: 'echo:'\n", f"defaultTest: file://{elsewhere}\n")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*promptfooconfig.yaml: defaultTest: * outside the project*"])


def test_the_grading_provider_of_default_test_is_the_default_judge(promptfoo_project):
    from tests.plugin.test_judges import verdict
    from tests.support.fake_openai import Reply

    graded = []

    def respond(body):
        if body["model"] != "gpt-4o":
            return None
        graded.append(body)
        return Reply(text=verdict(5 if "echo: 질문: 환불" in str(body) else 1))

    promptfoo_project.server.respond = respond
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "defaultTest:\n", "defaultTest:\n  options:\n    provider: {id: openai:gpt-4o, config: {temperature: 0}}\n")
        .replace("  - file://tests/*.csv\n", "")
        .replace("        value: '{{ question }}'", "        value: '{{ question }}'\n      - type: llm-rubric\n"
                 "        value: 환불 절차를 안내한다")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)  # the polite prompt's echo is judged 1
    assert [b["temperature"] for b in graded] == [0, 0]
    assert "환불 절차를 안내한다" in graded[0]["messages"][0]["content"]


def test_an_unmappable_grading_provider_is_one_line_naming_the_key(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "defaultTest:\n", "defaultTest:\n  options: {provider: 'exec:./grade.sh'}\n")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*promptfooconfig.yaml: defaultTest.options.provider: provider 'exec:./grade.sh' "
                                 "is not a model litellm can call*"])


def test_a_grading_provider_per_test_is_refused_naming_the_default_one(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace(
        "    vars: {question: 환불 되나요}\n", "    vars: {question: 환불 되나요}\n    options: {provider: openai:gpt-4o}\n")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*promptfooconfig.yaml:1: options.provider: a grading provider per test is not "
                                 "supported here; grade with the default judge (defaultTest.options.provider*"])


def test_the_fixture_check_takes_an_assert_set_and_names_a_bad_member(project):
    project.write({"prompt_tests/a.csv": "input\nx\n", "test_app.py": """
        SET = {"type": "assert-set", "threshold": 0.5,
               "assert": [{"type": "contains", "value": "환불"}, {"type": "contains", "value": "없는말"}]}

        def test_set_passes_at_its_threshold(promstack):
            r = promstack.run([{"role": "user", "content": "환불"}], model="mine")
            (score,) = promstack.check(r, SET)
            assert score.type == "assert-set" and score.score == 0.5

        def test_set_fails(promstack):
            r = promstack.run([{"role": "user", "content": "배송"}], model="mine")
            promstack.check(r, SET)

        def test_bad_member(promstack):
            r = promstack.run([{"role": "user", "content": "x"}], model="mine")
            promstack.check(r, {"type": "assert-set", "assert": [{"type": "contians", "value": "x"}]})
    """})
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_app.py")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "  ✗ assert-set: 0 of 2 passed, score 0.00 < threshold 0.5*",
        "promstack: check.assert[[]0[]]: unknown assertion 'contians' (did you mean 'contains'?)",
    ])


def test_a_promptfoo_entrys_grading_provider_is_the_projects_default_judge(promptfoo_project):
    promptfoo_project.write({"evals/promptfooconfig.yaml": PROMPTFOO.replace(
        "defaultTest:\n", "defaultTest:\n  options: {provider: openai:gpt-4o}\n")
        .replace("  - file://tests/*.csv\n", "").replace("file://prompts/polite.txt", "file://../prompts/polite.txt"),
        "prompt_tests/a.csv": "input\nx\n"}, promptfoo="evals/promptfooconfig.yaml")
    from pytest_promstack.config.settings import load_settings

    settings = load_settings(promptfoo_project.path, {})
    assert settings.default_judge == "default"
    assert settings.judges["default"].model == "openai:gpt-4o"
    assert settings.models["openai:gpt-4o"].model == "openai/gpt-4o"
    assert settings.suites["evals"].models == ("openai:chat:gpt-4o-mini",)  # the grader is no target


def test_import_keeps_the_scenarios_and_the_grading_provider(scenario_project, capsys):
    from pytest_promstack.cli import main

    (scenario_project.path / "promstack.yaml").unlink()
    config = (scenario_project.path / "promptfooconfig.yaml").read_text(encoding="utf-8")
    (scenario_project.path / "promptfooconfig.yaml").write_text(
        config.replace("defaultTest:\n", "defaultTest:\n  options: {provider: openai:gpt-4o}\n"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(scenario_project.path)
        assert main(["import", "promptfoo"]) == 0
    capsys.readouterr()
    assert "default_judge: openai:gpt-4o" in (scenario_project.path / "promstack.yaml").read_text(encoding="utf-8")
    (scenario_project.path / "promptfooconfig.yaml").unlink()
    result = scenario_project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=1)  # the same cases as from the promptfoo config
    result.stdout.fnmatch_lines(["*promptfoo_tests.yaml::인사 (불어)[[]openai:chat:gpt-4o-mini[]] PASSED*"])


@pytest.mark.parametrize(("provider", "model"), [
    (None, "text-embedding-3-large"),  # promptfoo's default embedding provider
    ("{embedding: {id: 'openai:embedding:text-embedding-3-small'}, text: openai:gpt-4o}", "text-embedding-3-small"),
    ("openai:embeddings:text-embedding-3-small", "text-embedding-3-small"),
])
def test_similar_in_a_promptfoo_config_embeds_with_its_grading_provider(promptfoo_project, provider, model):
    config = PROMPTFOO.replace("  - file://tests/*.csv\n", "").replace(
        "        value: '{{ question }}'", "        value: '{{ question }}'\n      - type: similar\n"
        "        value: 'echo: 질문: {{ question }}'\n        threshold: 0.99")
    if provider is not None:
        config = config.replace("defaultTest:\n", f"defaultTest:\n  options:\n    provider: {provider}\n")
    promptfoo_project.write({"promptfooconfig.yaml": config})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)  # the polite prompt's echo is further from the expected text
    result.stdout.fnmatch_lines(["*polite*FAILED*"])
    embedded = [b for b in promptfoo_project.server.requests if "input" in b]
    assert {b["model"] for b in embedded} == {model}


def test_file_paths_in_a_test_file_of_a_subfolder_resolve_from_the_config_folder_as_in_promptfoo(promptfoo_project):
    promptfoo_project.write({
        "promptfooconfig.yaml": PROMPTFOO.replace("  - file://tests/*.csv\n", "  - file://tests/sub.yaml\n"),
        "vars/q.txt": "교환 되나요\n", "expected/q.txt": "echo: 질문: 교환 되나요\n",
        "tests/near.txt": "배송은요",
        "tests/sub.yaml": "- vars: {question: file://vars/q.txt}\n"  # promptfoo's path: from the config's folder
                          "  assert: [{type: equals, value: file://expected/q.txt}]\n"
                          "- vars: {question: file://near.txt}\n"  # ours: from the file that names it
                          "  assert: [{type: contains, value: 배송은요}]\n",
    })
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*tests/sub.yaml::row-1[[]prompt1-*PASSED*", "*tests/sub.yaml::row-2[[]prompt1-*PASSED*"])


def test_a_tests_own_transform_replaces_the_default_one_as_promptfoo_merges_options(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace("  - file://tests/*.csv\n", "").replace(
        "defaultTest:\n", "defaultTest:\n  options: {transform: output.upper()}\n").replace(
        "    vars: {question: 환불 되나요}\n", "    vars: {question: 환불 되나요}\n    options: {transform: \"output + '!'\"}\n")
        .replace("        value: '{{ question }}'", "        value: '{{ question }}!'\n      - type: not-contains\n"
                 "        value: ECHO")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    # the defaultTest's icontains 'echo:' gets the test's transform too: the output is "echo: …!", never upper-cased
    result.assert_outcomes(passed=2)


def test_a_tests_providers_filter_runs_it_on_the_models_it_names(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": """
prompts: ['질문: {{ question }}']
providers:
  - {id: 'openai:chat:gpt-4o-mini', label: fast-model}
  - {id: 'openai:chat:gpt-4o', label: smart-model}
tests:
  - {vars: {question: 빠름}, providers: [fast-model], assert: [{type: contains, value: 빠름}]}
  - {vars: {question: 모두}, providers: ['openai:*'], assert: [{type: contains, value: 모두}]}
  - {vars: {question: 없음}, providers: [slow-model], assert: [{type: contains, value: 없음}]}
"""})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*row-1[[]fast-model[]] PASSED*", "*row-2[[]fast-model[]] PASSED*",
                                 "*row-2[[]smart-model[]] PASSED*",
                                 "*promptfooconfig.yaml:3 [[]*[]]: providers: slow-model matches none of this suite's models "
                                 "(fast-model, smart-model)*"])


def test_moderation_in_a_promptfoo_config_uses_its_moderation_grading_provider(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace("  - file://tests/*.csv\n", "").replace(
        "defaultTest:\n", "defaultTest:\n  options: {provider: 'openai:moderation:text-moderation-stable'}\n").replace(
        "    vars: {question: 환불 되나요}\n", "    vars: {question: 'kill 환불'}\n").replace(
        "        value: '{{ question }}'", "        value: '{{ question }}'\n      - type: moderation")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml", "-v", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*✗ moderation: flagged: violence*"])
    moderated = [b for b in promptfoo_project.server.requests if "input" in b]
    assert {b["model"] for b in moderated} == {"text-moderation-stable"}


def test_a_promptfoo_configs_problems_name_its_own_keys(promptfoo_project):
    promptfoo_project.write({"promptfooconfig.yaml": PROMPTFOO.replace("file://tests/*.csv", "file://tests/없음.csv")})
    result = promptfoo_project.run("--promstack-config", "promptfooconfig.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["promptfooconfig.yaml (promptfoo): tests: no file matches 'tests/없음.csv'*"])
