"""Each bad input gives one line naming file, row or key and the fix; other files still run."""

from __future__ import annotations

import json

import pytest

from tests.support.fake_openai import Reply

GOOD = "input,__expected\nok,contains:ok\n"


def test_malformed_row_fails_with_file_and_row_and_the_rest_runs(project):
    project.write({"prompt_tests/a.csv": 'input,__expected\nok,contains:ok\n"a,b",x,y\nfine,contains:fine\n',
                   "prompt_tests/b.csv": GOOD})
    result = project.run()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.csv:3: has 3 fields but the header has 2; quote cells*"])


def test_unterminated_quote_names_the_row(project):
    project.write({"prompt_tests/a.csv": 'input,__expected\nok,contains:ok\n"broken,contains:x\n',
                   "prompt_tests/b.csv": GOOD})
    result = project.run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.csv:3: malformed CSV: *check the quotes*"])


def test_unknown_assertion_names_row_and_nearest_type(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nok,contians:ok\nok2,icontains:OK2\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["prompt_tests/a.csv:2: __expected: unknown assertion 'contians' (did you mean 'contains'?)"])


def test_unknown_assertion_in_yaml_structured_form(project):
    project.write({"prompt_tests/a.yaml": """
        - vars: {input: hi}
          assert:
            - {type: regexx, value: '^echo'}
        - vars: {input: hi}
          assert:
            - {type: regex, value: '^echo'}
    """})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.yaml:1: assert[0]: unknown assertion 'regexx' (did you mean 'regex'?)"])


def test_missing_template_variable_errors_without_a_call(project):
    project.write({"prompts/p.yaml": "id: p\ntemplate: '{{ question }} / {{ input }}'\n",
                   "prompt_tests/a.csv": "input,question,__expected\nx,q,contains:q\n",
                   "prompt_tests/b.csv": "input,__expected\nx,contains:x\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*.csv"]}})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["prompt_tests/b.csv:2 [[]mine[]]: template variable 'question' is undefined "
                                 "in prompts/p.yaml; give it a value: the column or key 'question' in the test file*"])
    assert project.server.count == 1


def test_bad_config_lists_every_problem_with_key(project):
    project.write({"promstack.yaml": """
        models: [openai/x]
        concurency: 4
        concurrency: 0
        suites:
          regression:
            tests: ["nothing/*.csv"]
            models: [nope]
            asert: []
    """})
    result = project.run()
    assert result.ret == 4
    for line in ("*promstack: invalid configuration*",
                 "promstack.yaml: concurency: unknown key (did you mean 'concurrency'?); remove it or check its spelling*",
                 "promstack.yaml: concurrency: Input should be greater than or equal to 1",
                 "promstack.yaml: suites.regression.asert: unknown key*"):
        result.stderr.fnmatch_lines([line])
    project.write({"promstack.yaml": """
        models: [openai/x]
        judges: {j: {model: nosuch, criteria: ["좋은가?"]}}
        suites:
          regression:
            tests: ["nothing/*.csv"]
            models: [nope]
    """})
    result = project.run()
    result.stderr.fnmatch_lines([
        "promstack.yaml: suites.regression.tests: no file matches 'nothing/*.csv'",
        "promstack.yaml: suites.regression.models: unknown model 'nope'; add it under models:",
        "promstack.yaml: judges.j.model: unknown model 'nosuch'; add it under models:, or give a litellm "
        "'provider/model' name",
    ])
    result.stderr.no_fnmatch_line("*Traceback*")


def test_bad_suite_assertion_is_a_config_error(project):
    project.write({"prompt_tests/a.csv": GOOD},
                  suites={"s": {"tests": ["prompt_tests/*"], "assert": [{"type": "not-icontain", "value": "x"}]}})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*suites.s.assert[[]0[]]: unknown assertion 'icontain' (did you mean 'icontains'?)"])


def test_unreadable_encoding_is_one_error_item_and_others_run(project):
    project.write({"prompt_tests/bad.csv": b"input,__expected\n\xff\xfe\x00\x81\x00,contains:x\n",
                   "prompt_tests/good.csv": GOOD})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["prompt_tests/bad.csv: is neither UTF-8 nor CP949/EUC-KR; save it as UTF-8*"])


def test_invalid_json_file_names_line(project):
    project.write({"prompt_tests/a.json": '[{"input": "x",\n  "__expected": }]', "prompt_tests/b.csv": GOOD})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.json:2: not valid JSON: Expecting value*"])


def test_unknown_special_column_suggests_the_right_one(project):
    project.write({"prompt_tests/a.csv": "input,__expceted\nx,contains:x\n", "prompt_tests/b.csv": GOOD})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.csv:1: unknown special column '__expceted' (did you mean '__expected'?)"])


def test_bad_threshold_and_broken_prompt_file(project):
    project.write({"prompts/p.yaml": "id: p\ntemplat: oops\n",
                   "prompt_tests/a.csv": "input,__expected,__threshold\nx,contains:x,2\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["prompt_tests/a.csv:2: __threshold: 2 is outside 0..1"])
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*prompts/p.yaml: unknown key(s) templat; a prompt has*"])


def test_no_config_is_a_usage_error(pytester):
    result = pytester.runpytest("--promstack")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no promstack.yaml or [[]tool.promstack[]]*create one*"])


def test_unknown_suite_option(project):
    project.write({"prompt_tests/a.csv": GOOD})
    result = project.run("--promstack-suite=nightly")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--promstack-suite nightly: no such suite (configured: regression)"])


def test_bad_option_value(project):
    project.write({"prompt_tests/a.csv": GOOD})
    result = project.run("--promstack-cache=sometimes")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--promstack-cache*must be one of use, off, refresh*"])


def test_broken_yaml_config_is_a_usage_error_with_the_position(project):
    project.write({"promstack.yaml": "suites:\n  s: {tests: [a.csv\n"})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["promstack.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>'; check "
                                 "the indentation, colons and quotes there"])
    result.stderr.no_fnmatch_line("*INTERNALERROR*")


def test_duplicate_key_in_the_config_names_line_and_key(project):
    project.write({"prompt_tests/a.csv": GOOD, "promstack.yaml": "suites:\n  s: {tests: [prompt_tests/a.csv]}\n"
                   "concurrency: 2\nsuites: the later key would silently win\n"})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["promstack.yaml:4: duplicate key 'suites' (first at line 1); keep one*"])


def test_duplicate_keys_in_test_files_and_prompts_are_one_error_each(project):
    project.write({
        "prompts/p.yaml": "id: p\ntemplate: '{{ input }}'\nparams: {temperature: 0, temperature: 1}\n",
        "prompt_tests/a.yaml": "- input: x\n  __expected: contains:x\n  input: y\n",
        "prompt_tests/b.json": '[{"input": "x", "__expected": "contains:x"},\n {"input": "y",\n  "input": "z"}]',
        "prompt_tests/c.jsonl": '{"input": "x", "__expected": "contains:x", "__expected": "contains:y"}\n',
        "prompt_tests/d.csv": GOOD,
    }, suites={"s": {"tests": ["prompt_tests/*"]},
               "p": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/d.csv"]}})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1, errors=3)
    result.stdout.fnmatch_lines_random([
        "prompt_tests/a.yaml:3: duplicate key 'input' (first at line 1)*",
        "prompt_tests/b.json:3: duplicate key 'input'*",
        "prompt_tests/c.jsonl:1: duplicate key '__expected'*",
        "*prompts/p.yaml:3: duplicate key 'temperature'*",
    ])


def test_duplicate_key_in_the_prompt_registry_is_named(project):
    project.write({"prompt_tests/a.csv": GOOD, "prompts/p.yaml": "id: p\ntemplate: '{{ input }}'\n",
                   ".promstack/prompts/index.json": '{"schema": "promstack-prompts/1",\n "prompts": {},\n "prompts": {}}\n'},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/a.csv"]}})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*prompt registry: .promstack/prompts/index.json:3: duplicate key 'prompts'*"])


# -- terminal-safe output: a hostile server or file never drives the terminal -----------------

CLEAR = "\x1b[2J\x1b[H ALL TESTS PASSED"


def test_hostile_server_error_message_reaches_pytest_output_escaped(project):
    project.server.respond = lambda body: Reply(status=500, text=CLEAR)
    project.write({"prompt_tests/a.csv": GOOD}, max_retries=0)
    result = project.run("-rA")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "\x1b" not in out
    result.stdout.fnmatch_lines([r"*model call failed:*\x1b[[]2J\x1b[[]H ALL TESTS PASSED*"])


def test_control_characters_in_case_names_and_outputs_are_escaped_and_korean_ids_stay(project):
    project.server.replies = {"빨강": "\x1b[31m빨강\r\u202e"}
    project.write({"prompt_tests/a.csv": "input,__expected,__description\n"
                                         "빨강,contains:파랑,\x1b[31m색깔\u202e 환불\n"
                                         "환불,contains:환불,환불 절차\n"})
    result = project.run("-v", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert not any(ch in out for ch in ("\x1b", "\r", "\u202e"))
    result.stdout.fnmatch_lines([r"*prompt_tests/a.csv::\x1b[[]31m색깔\u202e 환불[[]mine[]] FAILED*",
                                 "*prompt_tests/a.csv::환불 절차[[]mine[]] PASSED*",
                                 r"*output: '\x1b[[]31m빨강\r\u202e'*"])
    doc_case = "prompt_tests/a.csv::환불 절차[mine]"
    assert doc_case in out


def test_metadata_named_like_a_pytest_mark_does_not_act_as_one(project):
    project.write({"prompt_tests/a.csv": "input,__expected,__metadata:xfail,__metadata:skip,__metadata:area\n"
                                         "hello,contains:nope,yes,yes,billing\n"
                                         "other,contains:other,,,shipping\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)  # not xfailed, not skipped
    project.run("-m", "area", "-k", "billing").assert_outcomes(failed=1, deselected=1)  # other metadata: -m, -k
    project.run("-k", "xfail").assert_outcomes(failed=1, deselected=1)


@pytest.mark.parametrize(("index", "problem"), [
    ('{"schema": "promstack-prompts/1", "prompts": []}', "prompts: a list, expected an object*"),
    ('{"schema": "promstack-prompts/1", "prompts": {"p": {"source": "prompts/p.yaml", "versions": '
     '[{"hash": "x", "file": "1.yaml"}]}}}', "prompts.p.versions[[]0[]].number: missing*"),
])
def test_prompt_registry_index_of_wrong_types_is_a_warning_naming_the_key(project, index, problem):
    project.write({"prompt_tests/a.csv": GOOD, "prompts/p.yaml": "id: p\ntemplate: '{{ input }}'\n",
                   ".promstack/prompts/index.json": index},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/a.csv"]}})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"promstack: warning: prompt registry: .promstack/prompts/index.json: {problem}"
                                 "restore it from git*"])


@pytest.mark.parametrize(("cases", "problem"), [
    ("[1, 2]", "cases[[]0[]]: 1 is not of type 'object'"),
    ('[{"outcome": 3}]', "cases[[]0[]]*"),
])
def test_baseline_of_wrong_types_is_a_warning_and_the_run_is_not_compared(project, cases, problem):
    project.write({"prompt_tests/a.csv": GOOD})
    project.run("--promstack-save-baseline=base.json").assert_outcomes(passed=1)
    doc = json.loads((project.path / "base.json").read_text(encoding="utf-8"))
    doc["cases"] = json.loads(cases)
    (project.path / "base.json").write_text(json.dumps(doc), encoding="utf-8")
    result = project.run("--promstack-baseline=base.json", "--promstack-fail-on-regression")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"promstack: warning: base.json: {problem}*; this run is not compared"])
    result.stdout.no_fnmatch_line("promstack: baseline base.json*")


def test_human_score_off_the_judge_scale_is_left_out_of_calibration_with_one_line(project):
    from tests.plugin.test_judges import judge_config, scripted, verdict

    project.server.respond = scripted({"a": verdict(5, 5, 5), "b": verdict(4, 4, 4), "c": verdict(2, 2, 2)})
    project.write({**judge_config(project, pass_score=1),
                   "prompt_tests/a.csv": "input,__expected,__human_score\na,judge:support_quality,5\n"
                                         "b,judge:support_quality,9\nc,judge:support_quality,2\n"})
    result = project.run()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "promstack: calibration support_quality: n=2, exact 100%, within one 100%, *",
        "promstack: warning: calibration support_quality: prompt_tests/a.csv::row-3[[]mine[]]: __human_score 9* is "
        "outside the judge's scale 1-5; left out of the calibration figures*"])


def test_retry_after_longer_than_retry_max_wait_ends_the_retries_and_says_so(project):
    project.server.respond = lambda body: Reply(status=429, text="slow down", headers={"Retry-After": "3600"})
    project.write({"prompt_tests/a.csv": GOOD})
    result = project.run()
    result.assert_outcomes(errors=1)
    assert project.server.count == 1  # no retry a second later: the server asked for an hour
    result.stdout.fnmatch_lines(["*the server asked to wait 3600 s (Retry-After), more than retry_max_wait 30 s*"])


def test_a_gbk_file_is_not_read_as_korean_mojibake_and_cp949_is_named_in_the_header(project):
    project.write({"prompt_tests/zh.csv": "input,__expected\n我想退款，请帮我处理订单,contains:退款\n".encode("gbk"),
                   "prompt_tests/ko.csv": "input,__expected\n환불하고 싶어요,contains:환불\n".encode("cp949")})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "promstack: * from *; prompt_tests/ko.csv read as CP949",
        "prompt_tests/zh.csv: is not UTF-8, and as CP949/EUC-KR only * of its * non-ASCII characters are Hangul: it "
        "is probably in another encoding; save it as UTF-8, or name its encoding in promstack.yaml (encoding: gbk*",
    ])


def test_an_unreadable_file_is_one_error_case_whose_file_is_relative_like_every_case(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n",
                   "prompt_tests/b.json": "[{\"input\": \"x\",]"})
    project.run("--promstack-json=r.json").assert_outcomes(passed=1, errors=1)
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert sorted(c["file"] for c in doc["cases"]) == ["prompt_tests/a.csv", "prompt_tests/b.json"]


@pytest.mark.parametrize(("cell", "problem"), [
    ("length:abc", "length: 'abc' is not a limit; write length:<=200, length:>=10 or length:10..200"),
    ("latency:soon", "latency: 'soon' is not a limit; write latency:5000 (ms)"),
    ("regex:(unclosed", "regex: '(unclosed' is not a valid regular expression (*); fix the pattern"),
    ("contains:", "contains needs a value, which an empty one would match in any output: write contains:환불"),
])
def test_a_bad_assertion_value_errors_its_row_when_the_file_is_read_and_nothing_is_called(project, cell, problem):
    project.write({"prompt_tests/a.csv": f"input,__expected\nx,{cell}\ny,contains:y\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*a.csv:2*: __expected: {problem}"])
    assert project.server.count == 1  # the bad row never called the model
