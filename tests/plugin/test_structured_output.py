"""Structured output: a prompt file's response_format reaches the model (and its version and
cache key), is-json checks the schema the model was asked for, and json-path checks fields."""

from __future__ import annotations

import importlib.util
import json

import pytest

SCHEMA = {"type": "object", "required": ["label", "items"],
          "properties": {"label": {"type": "string", "enum": ["billing", "환불", "배송"]},
                         "items": {"type": "array", "items": {"type": "object",
                                                              "properties": {"price": {"type": "number"}}}}}}
PROMPT = """
id: classify
template: "{{ input }}"
response_format:
  type: json_schema
  json_schema: {name: ticket, schema: file://schemas/ticket.json, strict: true}
"""
GOOD = {"label": "환불", "items": [{"price": 30}, {"price": 99.5}], "customer": {"name": "김철수"}}
BAD = {"label": "교환", "items": [{"price": 30}, {"price": 120}], "customer": {"name": None}}


def _project(project, replies, tests, transport="auto"):
    project.server.replies.update({k: json.dumps(v, ensure_ascii=False) for k, v in replies.items()})
    return project.write({"prompts/classify.yaml": PROMPT,
                          "prompts/schemas/ticket.json": json.dumps(SCHEMA, ensure_ascii=False),
                          **tests},
                         suites={"s": {"prompt": "prompts/classify.yaml", "tests": ["prompt_tests/*"]}},
                         transport=transport)


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_response_format_reaches_the_model_and_is_json_checks_the_requested_schema(project, transport):
    _project(project, {"좋은 답": GOOD, "나쁜 답": BAD}, {"prompt_tests/a.csv": (
        "input,__expected,__description\n"
        "좋은 답,is-json,통과\n"
        "나쁜 답,is-json,스키마 위반\n"
        '나쁜 답,"is-json:{""type"": ""object""}",값이 이김\n')}, transport)
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*스키마 위반*FAILED*",
                                 "*✗ is-json: schema: label: '교환' is not one of *"
                                 "(the request's response_format schema 'ticket')*"])
    sent = project.server.requests[0]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "ticket", "schema": SCHEMA, "strict": True}}
    assert project.server.count == 2  # two distinct inputs; the third case is a cache hit
    project.run().assert_outcomes(passed=2, failed=1)
    assert project.server.count == 2


def test_response_format_is_part_of_the_prompt_version(project):
    _project(project, {"x": GOOD}, {"prompt_tests/a.csv": "input,__expected\nx,is-json\n"})
    project.run("--promstack-json=one.json").assert_outcomes(passed=1)
    schema = {**SCHEMA, "required": ["label"]}
    project.write({"prompts/schemas/ticket.json": json.dumps(schema)})
    project.run("--promstack-json=two.json").assert_outcomes(passed=1)
    versions = [json.loads((project.path / f).read_text(encoding="utf-8"))["cases"][0]["prompt_version"]
                for f in ("one.json", "two.json")]
    assert versions[0] != versions[1]
    assert project.server.count == 2  # a new schema is a new request, not the cached answer


def test_json_object_response_format_and_is_json_without_a_schema(project):
    project.server.replies["x"] = '{"a": 1}'
    project.write({"prompts/p.yaml": "id: p\ntemplate: '{{ input }}'\nresponse_format: {type: json_object}\n",
                   "prompt_tests/a.csv": "input,__expected\nx,is-json\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run("-rA")
    result.assert_outcomes(passed=1)
    assert project.server.requests[0]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(("response_format", "line"), [
    ("{type: xml}", "prompts/p.yaml: response_format: must be {type: json_schema, *} or {type: json_object}"),
    ("{type: json_schema, json_schema: {schema: {}}}",
     "prompts/p.yaml: response_format.json_schema: needs name: (text) and schema: *"),
    ("{type: json_schema, json_schema: {name: t, schema: file://nope.json}}",
     "prompts/p.yaml: response_format.json_schema.schema: file://nope.json: no such file (nope.json)*"),
    ("{type: json_schema, json_schema: {name: t, schema: file://../../outside.json}}",
     "prompts/p.yaml: response_format.json_schema.schema: file://../../outside.json: *outside the project*"),
    ("{type: json_schema, json_schema: {name: t, schema: {type: objekt}}}",
     "prompts/p.yaml: response_format.json_schema.schema: not a valid JSON schema at type: *"),
    ("{type: json_object, strict: true}", "prompts/p.yaml: response_format: unknown key(s) strict; *"),
])
def test_a_malformed_response_format_is_one_line_naming_the_file_and_key(project, response_format, line):
    project.write({"prompts/p.yaml": f"id: p\ntemplate: '{{{{ input }}}}'\nresponse_format: {response_format}\n",
                   "prompt_tests/a.csv": "input,__expected\nx,is-json\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{line}"])
    assert project.server.count == 0


# (assertion, passes on GOOD, passes on BAD)
PATHS = [
    ('json-path:$.label == "환불"', True, False),
    ('json-path:$.label != "교환"', True, False),
    ("json-path:$.items[*].price < 100", True, False),
    ("json-path:$.items[*].price >= 30", True, True),
    ("json-path:$.customer.name", True, False),
    ('json-path:$.customer.name matches "^김"', True, False),
    ('json-path:$.label contains "불"', True, False),
    ("not-json-path:$.error", True, True),
]


def test_json_path_in_csv_and_yaml_on_korean_json(both_modes):
    rows = "input,__providerOutput,__expected,__description\n"
    for i, (check, good, bad) in enumerate(PATHS):
        for name, data, ok in (("good", GOOD, good), ("bad", BAD, bad)):
            cell = json.dumps(data, ensure_ascii=False).replace('"', '""')
            expected = check.replace('"', '""')
            rows += f'x,"{cell}","{expected}",{i}-{name}-{"pass" if ok else "fail"}\n'
    yaml_cases = f"""
- vars: {{input: x}}
  providerOutput: '{json.dumps(GOOD, ensure_ascii=False)}'
  assert:
    - {{type: json-path, value: '$.items[*].price <= 99.5'}}
    - {{type: json-path, value: '$.customer["name"] == "김철수"'}}
  description: yaml-pass
"""
    for project in both_modes:
        project.write({"prompt_tests/a.csv": rows, "prompt_tests/b.yaml": yaml_cases})
        result = project.run("-rA", "-p", "no:randomly")
        passes = sum(g for _, g, _ in PATHS) + sum(b for _, _, b in PATHS) + 1
        result.assert_outcomes(passed=passes, failed=2 * len(PATHS) + 1 - passes)
        summary = set(result.stdout.lines)
        for i, (_, good, bad) in enumerate(PATHS):  # each row as its description says
            for name, ok in (("good", good), ("bad", bad)):
                row = f"{i}-{name}-{'pass' if ok else 'fail'}"
                assert any(line.startswith(f"{'PASSED' if ok else 'FAILED'} prompt_tests/a.csv::{row}[")
                           for line in summary), row
        assert "✗ json-path: $.items[*].price < 100: 1 of 2 matches fail: $['items'][1]['price'] is 120" in str(
            result.stdout)
        assert project.server.count == 0


def test_json_path_needs_json_output_even_when_negated(project):
    project.write({"prompt_tests/a.csv": ("input,__providerOutput,__expected\n"
                                          'x,환불 안내입니다,"not-json-path:$.label == ""x"""\n')})
    result = project.run("-rA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*json-path: $.label == \"x\": the output is not JSON ('환불 안내입니다')*"])


def test_json_path_with_several_matches_names_each_that_fails(project):
    data = json.dumps({"items": [{"price": p} for p in (10, 200, 300, 400, 500)]})
    project.write({"prompt_tests/a.yaml": f"""
        - vars: {{input: x}}
          providerOutput: '{data}'
          assert: [{{type: json-path, value: '$.items[*].price < 100'}}]
        - vars: {{input: x}}
          providerOutput: '{data}'
          assert: [{{type: json-path, value: '$.missing'}}]
    """})
    result = project.run("-rA")
    result.assert_outcomes(failed=2)
    out = str(result.stdout)
    assert ("✗ json-path: $.items[*].price < 100: 4 of 5 matches fail: $['items'][1]['price'] is 200; "
            "$['items'][2]['price'] is 300; $['items'][3]['price'] is 400 and 1 more\n") in out
    assert "✗ json-path: $.missing: no match for $['missing'] in the output\n" in out


@pytest.mark.parametrize(("cell", "line"), [
    ("json-path:label", "json-path: 'label': needs a JSONPath starting with $; write json-path:$.label == *"),
    ("json-path:$.[", "json-path: '$.[': the path '$.[' is not valid JSONPath (*); write json-path:*"),
    ("json-path:$.label == billing", "json-path: '$.label == billing': 'billing' after == is not a JSON literal*"),
    ("json-path:$.n < true", "json-path: '$.n < true': < compares with a number or a string, not true;*"),
])
def test_a_malformed_json_path_fails_its_row_when_the_file_is_read_and_nothing_is_called(project, cell, line):
    project.write({"prompt_tests/a.csv": f"input,__expected\nx,contains:x\nx,\"{cell}\"\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"prompt_tests/a.csv:3: __expected: {line}"])
    assert project.server.count == 1


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason='needs pip install -e ".[local]"')
def test_the_local_model_answers_in_the_prompts_schema(pytester, monkeypatch):
    """The bundled model is held to response_format by a grammar: its answer parses and
    validates, so is-json (the requested schema) and json-path pass. A subprocess: see
    tests/plugin/test_local_model.py."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    schema = {"type": "object", "required": ["label"], "additionalProperties": False,
              "properties": {"label": {"enum": ["billing", "shipping"]}}}
    pytester.makefile(".yaml", promstack="models: [local/gemma-3-270m]\ndefaults: {temperature: 0, max_tokens: 48}\n"
                      "suites: {s: {prompt: prompts/p.yaml, tests: ['prompt_tests/*']}}\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts/schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (pytester.path / "prompts/p.yaml").write_text(
        "id: p\ntemplate: 'Classify as JSON with a label: {{ input }}'\n"
        "response_format: {type: json_schema, json_schema: {name: ticket, schema: file://schema.json}}\n",
        encoding="utf-8")
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__expected1,__expected2\n결제가 두 번 됐어요,is-json,\"json-path:$.label != null\"\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "--promstack-json=r.json")
    result.assert_outcomes(passed=1)
    (case,) = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["cases"]
    assert json.loads(case["output"])["label"] in ("billing", "shipping")
    assert "is-json: valid JSON, valid against the request's response_format schema 'ticket'" in json.dumps(
        case, ensure_ascii=False)


def test_an_inline_suite_prompt_takes_response_format_and_tools_as_a_prompt_file_does(project):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    project.server.replies["좋은 답"] = json.dumps(GOOD, ensure_ascii=False)
    project.write({"schemas/ticket.json": json.dumps(SCHEMA, ensure_ascii=False), "tools.json": json.dumps(tools),
                   "prompt_tests/a.csv": "input,__expected\n좋은 답,is-json\n"},
                  suites={"s": {"prompt": {"id": "inline", "template": "{{ input }}", "tools": "file://tools.json",
                                           "tool_choice": "auto",
                                           "response_format": {"type": "json_schema", "json_schema": {
                                               "name": "ticket", "schema": "file://schemas/ticket.json"}}},
                                "tests": ["prompt_tests/*"]}})
    project.run().assert_outcomes(passed=1)
    (sent,) = project.server.requests
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA  # read relative to promstack.yaml
    assert (sent["tools"], sent["tool_choice"]) == (tools, "auto")
