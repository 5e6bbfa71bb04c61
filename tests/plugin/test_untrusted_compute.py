"""Work a pull request's files can ask for is bounded: a template that loops or allocates without
end, a schema pattern that backtracks, an output of a megabyte of braces, a hundred thousand
values to look for, a python: target that never returns or exits: each ends its own case in
one line naming the limit, and the rest of the run goes on (and ends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pytest_promstack.util.sandbox import MAX_SIZE

GOOD = "input,__expected\nok,contains:ok\n"
QUICK_S = 30  # unbounded, each input below never ends, takes minutes or takes a gigabyte
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ input }}"


def quick_run(project, *args):
    start = time.monotonic()
    result = project.run(*args)
    assert time.monotonic() - start < QUICK_S
    return result


def two_suites(project, template, rows="input\na\nb\nc\n"):
    project.write({"prompts/slow.yaml": f"id: slow\ntemplate: '{template}'\n",
                   "prompts/good.yaml": "id: good\ntemplate: '{{ input }}'\n",
                   "prompt_tests/slow.csv": rows, "prompt_tests/good.csv": GOOD},
                  suites={"slow": {"prompt": "prompts/slow.yaml", "tests": ["prompt_tests/slow.csv"]},
                          "good": {"prompt": "prompts/good.yaml", "tests": ["prompt_tests/good.csv"]}})


def test_nested_loops_in_a_prompt_template_stop_at_the_cpu_limit_and_the_run_goes_on(project):
    two_suites(project, NESTED)
    quick_run(project, "--collect-only")
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines([
        "*slow.csv:2 [[]mine[]]: prompts/slow.yaml: template stopped: it ran for more than 1 s of CPU time, the limit "
        "per render; simplify it (nested loops multiply their work)",
    ])
    result.stdout.fnmatch_lines(["*slow.csv:3 [[]mine[]]: prompts/slow.yaml: template stopped: it ran for more than "
                                 "1 s of CPU time*(on an earlier render; it is not run again)"])
    assert project.server.count == 1  # no call for the stopped cases


def test_a_template_that_would_make_a_gigabyte_string_is_one_error_naming_the_limit(project):
    two_suites(project, "{{ (\"x\" * 1000000000)|length }}", rows="input\na\n")
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*slow.csv:2 [[]mine[]]: prompts/slow.yaml: template stopped: str * 1000000000 would "
                                 f"make 1,000,000,000 characters, more than the limit of {MAX_SIZE:,}; templates may "
                                 "not build values that large"])


def test_a_judge_template_over_the_cpu_limit_errors_its_case_naming_the_setting(project):
    from tests.plugin.test_judges import judge_config

    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"]["support_quality"]["prompt"] = NESTED.replace("input", "answer")
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = quick_run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*judge support_quality gave no usable verdict: judge support_quality's prompt "
                                 "template stopped: it ran for more than 1 s of CPU time, the limit per render; "
                                 "simplify it (nested loops multiply their work); fix judges.support_quality.prompt"])


BACKTRACKS = {"type": "object", "properties": {"v": {"type": "string", "pattern": "^(a+)+$"}}}


def test_a_schema_pattern_that_backtracks_fails_after_the_time_limit(project):
    project.server.replies["json"] = json.dumps({"v": "a" * 50_000 + "!"})
    project.server.replies["short"] = json.dumps({"v": "aaa"})
    keyed = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    project.server.replies["keys"] = json.dumps({"a" * 50_000 + "!": 1})
    rows = [{"input": "json", "__expected": [{"type": "json-schema", "value": BACKTRACKS}]},
            {"input": "json", "__expected": [{"type": "is-json", "value": BACKTRACKS}]},
            {"input": "json", "__expected": [{"type": "contains-json", "value": BACKTRACKS}]},
            {"input": "keys", "__expected": [{"type": "json-schema", "value": keyed}]},
            {"input": "short", "__expected": [{"type": "json-schema", "value": BACKTRACKS}]}]
    project.write({"prompt_tests/a.json": json.dumps(rows)})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=4)
    for kind in ("json-schema", "is-json", "contains-json"):
        result.stdout.fnmatch_lines([f"*{kind}: the schema's pattern /^(a+)+$/ took longer than 1 s on 50,001 "
                                     "characters and was stopped; simplify the pattern (nested repeats like (a+)+ "
                                     "backtrack)*"])


def test_contains_json_on_a_megabyte_of_brackets_ends_quickly(project):
    project.server.replies["braces"] = "{" * 1_000_000
    project.server.replies["brackets"] = "[" * 1_000_000
    project.server.replies["late"] = "{" * 100_000 + '{"id": 7}'
    project.write({"prompt_tests/a.csv": 'input,__expected\nbraces,contains-json\nbrackets,contains-json\n'
                                         'late,"contains-json:{""required"": [""id""]}"\n'})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*contains-json: no JSON in '{{{{*",
                                 "*contains-json: gave up looking for JSON after * places that start like JSON but "
                                 "are not, in 1,000,000 characters of output (the scan is kept linear)*"])


def test_xml_and_html_checks_on_a_megabyte_of_tags_end_quickly(project):
    project.server.replies["unclosed"] = "<a>" * 200_000 + "</b>" * 200_000
    project.server.replies["opens"] = "<a " * 300_000
    project.server.replies["late"] = "<a>" * 100_000 + "<order><id>7</id></order>"
    project.write({"prompt_tests/a.csv": "input,__expected,__expected2\n"
                                         "unclosed,contains-xml,not-contains-html\n"
                                         "opens,contains-xml,contains-html\n"
                                         "late,contains-xml:order.id,is-xml\n"})
    result = quick_run(project, "-p", "no:randomly")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*✗ contains-xml: no XML content found in the output", "*✗ not-contains-html: signs of HTML: *",
        "*✗ contains-xml: no XML content found in the output", "*✓ contains-html: signs of HTML: HTML tag name",
        "*✓ contains-xml: found XML <order>", "*✗ is-xml: not well-formed XML: *"])


def test_contains_any_with_100k_values_is_quick_and_its_reason_line_is_short(project):
    values = ",".join(f"v{i}" for i in range(100_000))
    project.server.replies["many"] = " ".join(f"v{i}" for i in range(0, 100_000, 7))
    project.write({"prompt_tests/a.csv": f'input,__expected\nx,"icontains-any:{values}"\nmany,"contains-all:{values}"\n'
                                         f'many,"contains-any:{values}"\n'})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*icontains-any: none of [[]'v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9'[]] and 99,990 more "
        "in 'echo: x'*",
        "*contains-all: missing [[]'v10000', 'v10001', 'v10002', 'v10004', 'v10005', 'v10006', 'v10007', 'v10008', "
        "'v10009', 'v10011'[]] and 77,133 more in 'v0 v7 v14 *",  # v1 is in v14
    ])
    assert max(len(line) for line in result.stdout.lines) < 2000


def test_skip_and_xfail_reasons_from_a_file_show_their_escapes(project):
    rows = [{"input": "x", "__marks": "skip: \u001b[2Jreason"},
            {"input": "y", "__marks": "xfail: \u001b[31mred", "__expected": "contains:yes"}]
    project.write({"prompt_tests/a.json": json.dumps(rows)})
    result = project.run("-rA")
    result.assert_outcomes(skipped=1, xfailed=1)
    assert "\x1b" not in result.stdout.str()
    result.stdout.fnmatch_lines_random(["SKIPPED*\\x1b[[]2Jreason*", "XFAIL*\\x1b[[]31mred*"])


TARGETS = """
    import asyncio, time

    def act(q):
        if q == "exit":
            raise SystemExit(3)
        if q == "interrupt":
            raise KeyboardInterrupt
        if q == "hang":
            time.sleep(10**6)
        return "hi"

    def reply(messages, vars):
        return act(vars["input"])

    async def areply(messages, vars):
        await asyncio.sleep(0)
        return act(vars["input"])
"""


def run_subprocess(project, rows, models, timeout=3):
    project.write({"targets.py": TARGETS, "prompt_tests/a.csv": "input,__expected\n" + rows,
                   "promstack.yaml": json.dumps({
                       "models": [{"name": m, "model": f"python:targets:{m}"} for m in models],
                       "timeout": timeout, "suites": {"app": {"tests": ["prompt_tests/a.csv"]}}})})
    start = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "--promstack", "-p", "no:cacheprovider", "-p",
                              "no:randomly"], cwd=project.path, env=dict(os.environ), capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the pytest process did not exit within 60 s")
    return out, time.monotonic() - start


def test_a_python_target_that_never_returns_ends_its_case_at_the_deadline_and_the_process_exits(project):
    out, took = run_subprocess(project, "hang,contains:hi\nok,contains:hi\n", ["reply"])
    assert "1 passed, 1 error" in out.stdout, out.stdout
    assert "a.csv:2 [reply]: model call failed: deadline of 3 s passed" in out.stdout
    assert took < 30


def test_a_python_target_that_raises_system_exit_errors_its_case_in_one_line(project):
    out, _ = run_subprocess(project, "exit,contains:hi\ninterrupt,contains:hi\nok,contains:hi\n", ["reply", "areply"])
    assert "2 passed, 4 errors" in out.stdout, out.stdout
    for model in ("reply", "areply"):
        for row, raised in ((2, "SystemExit(3)"), (3, "KeyboardInterrupt()")):
            assert (f"a.csv:{row} [{model}]: model call failed: python:targets:{model} raised {raised}; a target "
                    "returns its reply, it may not exit or interrupt the run") in out.stdout
    assert "bug" not in out.stdout
    assert "Traceback" not in out.stdout + out.stderr



def test_sql_checks_on_a_megabyte_of_sql_end_quickly_naming_each_limit(project):
    statements = "SELECT a, b FROM t WHERE x = 1; " * 32_000  # 1,024,000 characters
    project.server.replies["many"] = statements
    project.server.replies["late"] = statements + "\n```sql\nSELECT 이름 FROM 사용자\n```"
    project.server.replies["wide"] = "SELECT " + "a, " * 21_000 + "b FROM t"  # just under the length limit
    project.server.replies["deep"] = "SELECT " + "(" * 60_000
    project.server.replies["nots"] = "SELECT " + "NOT " * 15_000 + "1"
    project.server.replies["name"] = "SELECT " + "a" * 3000 + " FROM t"
    rows = [{"input": "many", "__expected": ["is-sql"]}, {"input": "late", "__expected": ["contains-sql"]},
            {"input": "wide", "__expected": ["is-sql"]}, {"input": "deep", "__expected": ["is-sql"]},
            {"input": "nots", "__expected": ["is-sql"]},
            {"input": "name", "__expected": [{"type": "is-sql", "value": {"allowedColumns": [r"select::null::(\w|a)+!"]}}]}]
    project.write({"prompt_tests/a.json": json.dumps(rows, ensure_ascii=False)})
    result = quick_run(project, "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=4)
    conform = "SQL statement does not conform to the provided MySQL database syntax"
    result.stdout.fnmatch_lines([
        f"*✗ is-sql: {conform}: it is 1,024,000 characters long, and SQL over 64,000 is not parsed",
        f"*✗ is-sql: {conform}: parentheses are nested more than 32 deep (line 1)",
        f"*✗ is-sql: {conform}: it is nested too deeply to parse",
        "*✗ is-sql: checking the allowed tables and columns took over 1 s; simplify the patterns"])


def test_is_refusal_and_is_html_on_a_megabyte_end_quickly(project):
    from pytest_promstack.score.html_doc import MAX_TAGS

    project.server.replies["sympathy"] = "I'm sorry," + " I can't imagine how" * 50_000  # each "can't" looked at once
    project.server.replies["divs"] = "<div>" * 200_000  # nested a megabyte deep: a minute in an HTML parser
    project.server.replies["attrs"] = "<a " + " ".join(f"x{i}" for i in range(150_000)) + ">환불</a>"  # 40 s in one
    project.server.replies["prose"] = "환불 절차를 안내합니다. " * 70_000
    project.write({"prompt_tests/a.csv": "input,__expected\nsympathy,not-is-refusal\ndivs,is-html\ndivs,not-is-html\n"
                                         "attrs,is-html\nprose,is-html\nprose,not-is-refusal\n"})
    result = quick_run(project, "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        f"*✗ is-html: the output has more than {MAX_TAGS:,} tags, more than is-html parses*",
        f"*✗ not-is-html: the output has more than {MAX_TAGS:,} tags, more than is-html parses*",
        "*✗ is-html: text outside HTML tags ('환불 절차를 안내합니다. 환불 절차를*…'); the whole output must be HTML"])
