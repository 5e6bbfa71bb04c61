"""Test file formats, encodings, and the two places configuration can live."""

from __future__ import annotations

import pytest

from tests.support.run import run_python, run_shell


def test_json_jsonl_yaml_and_promptfoo_shapes_load(both_modes):
    for project in both_modes:
        project.write({
            "prompt_tests/list.json": '[{"input": "하나", "__expected": "contains:하나"}]',
            "prompt_tests/object.json": '{"tests": [{"input": "둘", "__expected": ["contains:둘", "starts-with:echo"]}]}',
            "prompt_tests/lines.jsonl": '{"input": "셋", "__expected": "contains:셋"}\n\n{"input": "넷", "__expected": "contains:넷"}\n',
            "prompt_tests/cases.yaml": """
                - input: 다섯
                  __expected: contains:다섯
                  __description: 다섯 번째
                - vars: {input: 여섯}
                  assert: [{type: icontains, value: 여섯}]
                  description: promptfoo 형식
                  metadata: {topic: refund}
            """,
        })
        result = project.run("-rA")  # the short summary reads the same with and without xdist
        result.assert_outcomes(passed=6)
        result.stdout.fnmatch_lines(["PASSED prompt_tests/cases.yaml::promptfoo 형식[[]mine[]]"])
        result.stdout.fnmatch_lines(["PASSED prompt_tests/lines.jsonl::row-3[[]mine[]]"])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949", "euc-kr"])
def test_csv_encodings_are_detected(project, encoding):
    text = "input,__expected,__description\n환불하고 싶어요,contains:환불,환불 문의\n"
    project.write({"prompt_tests/a.csv": text.encode(encoding)})
    result = project.run("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*a.csv::환불 문의[[]mine[]] PASSED*"])
    assert project.server.requests[0]["messages"][-1]["content"] == "환불하고 싶어요"


def test_encoding_setting_overrides_detection(project):
    project.write({"prompt_tests/a.csv": "input,__expected\n환불,contains:환불\n".encode("utf-16")},
                  encoding="utf-16")
    project.run().assert_outcomes(passed=1)


def test_quoted_json_inside_csv_cells(project):
    project.write({"prompt_tests/a.csv": 'input,__providerOutput,__expected\n'
                                         'x,"{""답"": ""환불"", ""n"": 2}","contains-json:{""required"": [""답""]}"\n'})
    project.run().assert_outcomes(passed=1)


def test_metadata_list_and_description_become_keywords(project):
    project.write({"prompt_tests/a.csv": "input,__expected,__metadata:tags[]\nx,contains:x,\"urgent, vip\"\ny,contains:y,\n"})
    project.run("-k", "vip").assert_outcomes(passed=1, deselected=1)


def test_config_from_pyproject(project):
    project.write({
        "pyproject.toml": f"""
            [tool.promstack]
            concurrency = 2
            [[tool.promstack.models]]
            name = "mine"
            model = "openai/mine"
            api_base = "{project.server.url}"
            api_key_env = "PROMSTACK_TEST_KEY"
            [tool.promstack.suites.regression]
            tests = ["cases/*.csv"]
        """,
        "promstack.yaml": "",
        "cases/a.csv": "input,__expected\nx,contains:x\n",
    })
    (project.path / "promstack.yaml").unlink()
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*concurrency 2"])


def test_explicit_config_path(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    (project.path / "promstack.yaml").rename(project.path / "other.yaml")
    project.run("--promstack-config=other.yaml").assert_outcomes(passed=1)
    result = project.run("--promstack-config=missing.yaml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*missing.yaml: file not found; check --promstack-config"])


def test_csv_files_are_not_collected_without_the_flag(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert project.server.count == 0


def test_help_documents_each_option_with_default(pytester):
    result = pytester.runpytest("--help")
    lines = result.stdout.lines
    start = lines.index("prompt regression tests (pytest-promstack):")
    section = "\n".join(lines[start:lines.index("", start)])
    flags = ("--promstack ", "--promstack-config", "--promstack-suite", "--promstack-model",
             "--promstack-concurrency", "--promstack-cache", "--promstack-record", "--promstack-cache-url",
             "--promstack-log", "--promstack-json", "--promstack-report", "--promstack-baseline",
             "--promstack-fail-on-regression", "--promstack-regression-margin", "--promstack-save-baseline",
             "--promstack-gate", "--promstack-estimate", "--promstack-registry", "--promstack-prompt-version",
             "--promstack-prompt-branches", "--promstack-no-python", "--promstack-probe", "--promstack-probe-var",
             "--promstack-probe-family", "--promstack-shard", "--promstack-repeat")
    blocks = [b for b in section.split("\n  --")[1:]]
    assert len(blocks) == len(flags)
    assert all("Default:" in b for b in blocks)


def test_plugin_without_flag_imports_nothing_heavy(tmp_path):
    out = run_python("""
        import sys, pytest
        import pytest_promstack.plugin
        pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider"])
        heavy = [m for m in ("litellm", "pandas", "diskcache", "jinja2", "pydantic", "tabulate")
                 if m in sys.modules]
        print("HEAVY", heavy)
    """, cwd=tmp_path)
    line = [x for x in out.stdout.splitlines() if x.startswith("HEAVY")]
    assert line == ["HEAVY []"], out.stdout + out.stderr


def test_console_script_prints_version_and_help(tmp_path):
    out = run_shell("promstack --version", cwd=tmp_path).check()
    assert out.stdout.startswith("promstack ")
    out = run_shell("promstack --help", cwd=tmp_path).check()
    assert "test" in out.stdout
