"""Each bad input gives one line naming file, row or key and the fix; other files still run."""

from __future__ import annotations

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
                                 "in prompts/p.yaml; add a 'question' column*"])
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
