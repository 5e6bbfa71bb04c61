"""A prompt file declares its tools (inline or file://, with tool_choice); they reach the model
over both transports and make a new prompt version; tool-called, not-tool-called and
tool-args-match check the calls in CSV and YAML, and the promstack fixture's reply carries the
calls for promstack.check."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.fake_openai import Reply
from tests.support.project import config

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "오늘 날씨",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["{{ unit }}"]},
                                                    "options": {"type": "object"}},
                   "required": ["city"]}}},
    {"type": "function", "function": {"name": "book_flight", "parameters": {"type": "object"}}}]

PROMPT = """id: weather
template: '{{ city }} 날씨를 알려줘'
tools: file://tools.json
tool_choice: auto
"""

CASES = """
- description: 서울 맞는 인자
  vars: {city: 서울, unit: celsius}
  assert:
    - tool-called:get_weather
    - type: not-tool-called
      value: book_flight
    - type: tool-args-match
      value: {name: get_weather, args: {city: "{{ city }}", options: {days: 1}}}
    - type: tool-args-match
      value: {name: get_weather, schema: {type: object, properties: {city: {type: string}}, required: [city]}}
- description: 부산 틀린 인자
  vars: {city: 부산, unit: celsius}
  assert:
    - type: tool-args-match
      value: {name: get_weather, args: {city: "{{ city }}", options: {days: 1}}}
- description: 부산 스키마
  vars: {city: 부산, unit: celsius}
  assert:
    - type: tool-args-match
      value: {name: get_weather, schema: {type: object, properties: {city: {type: string}}}}
- description: 대구 둘 다
  vars: {city: 대구, unit: celsius}
  assert:
    - type: tool-called
      value: [get_weather, book_flight]
- description: 대구 빠진 도구
  vars: {city: 대구, unit: celsius}
  assert:
    - tool-called:get_weather,cancel_order
- description: 광주 말로만
  vars: {city: 광주, unit: celsius}
  assert:
    - not-tool-called
"""

CSV = """city,unit,__expected1,__expected2
서울,celsius,tool-called:get_weather,not-tool-called:book_flight
대구,celsius,not-tool-called:book_flight,tool-called
광주,celsius,tool-called,not-tool-called
"""


def respond(body):
    """Seoul: a good call; Busan: the city as a number and a day too many; Daegu: the weather
    and a flight; Gwangju: text."""
    prompt = body["messages"][-1]["content"]
    if "서울" in prompt:
        return Reply(tool_calls=[("get_weather", {"city": "서울", "unit": "celsius", "options": {"days": 1, "hourly": True}})])
    if "부산" in prompt:
        return Reply(tool_calls=[("get_weather", {"city": 42, "options": {"days": 2}})])
    if "대구" in prompt:
        return Reply(text="찾아볼게요", tool_calls=[("get_weather", {"city": "대구"}), ("book_flight", {"to": "대구"})])
    return Reply(text="광주는 맑아요")


def write(project, transport, cases=CASES, name="weather.yaml"):
    doc = yaml.safe_load(config(project.server.url, transport=transport,
                                suites={"weather": {"prompt": "prompts/weather.yaml", "tests": ["prompt_tests/*"]}}))
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True),
                   "prompts/tools.json": json.dumps(TOOLS, ensure_ascii=False),
                   "prompts/weather.yaml": PROMPT, f"prompt_tests/{name}": cases})


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_prompts_tools_reach_the_model_and_the_tool_assertions_name_what_was_called(project, transport):
    project.server.respond = respond
    write(project, transport)
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([
        "*서울 맞는 인자*PASSED*", "*부산 틀린 인자*FAILED*", "*부산 스키마*FAILED*", "*대구 둘 다*PASSED*",
        "*대구 빠진 도구*FAILED*", "*광주 말로만*PASSED*",
        "*✗ tool-args-match: get_weather: args.city is 42, expected \"부산\"; called get_weather(city=42, "
        "options={\"days\": 2})*",
        "*✗ tool-args-match: get_weather: arguments schema: city: 42 is not of type 'string'; called get_weather(*",
        "*✗ tool-called: did not call cancel_order; called get_weather(city=\"대구\"), book_flight(to=\"대구\")*",
    ])
    sent = project.server.requests[0]
    assert sent["tools"][0]["function"]["parameters"]["properties"]["unit"] == {"enum": ["celsius"]}  # rendered
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "book_flight"]
    assert sent["tool_choice"] == "auto"
    agent = project.server.headers[0].get("User-Agent", "")
    assert ("OpenAI" in agent) == (transport == "litellm"), agent

    project.server.reset()  # answered from the cache: the same verdicts, no call
    project.run("-p", "no:randomly").assert_outcomes(passed=3, failed=3)
    assert project.server.count == 0


def test_the_tool_assertions_work_in_csv_and_negate_per_tool(project):
    project.server.respond = respond
    write(project, "auto", CSV, "weather.csv")
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*✗ not-tool-called: called book_flight(to=\"대구\"), get_weather(city=\"대구\")*",  # the one named first
        "*✗ tool-called: called no tool (answered \"광주는 맑아요\")*",
    ])


def test_a_change_to_the_tools_file_is_a_new_prompt_version(tmp_path):
    from pytest_promstack.plan.prompts import load_prompt

    (tmp_path / "prompts").mkdir()
    (tmp_path / "pyproject.toml").write_text("", "utf-8")
    (tmp_path / "prompts/weather.yaml").write_text(PROMPT, "utf-8")
    (tmp_path / "prompts/tools.json").write_text(json.dumps(TOOLS, ensure_ascii=False), "utf-8")
    before = load_prompt(tmp_path / "prompts/weather.yaml", tmp_path)
    assert before.params["tools"] == TOOLS
    assert before.params["tool_choice"] == "auto"
    (tmp_path / "prompts/tools.json").write_text(json.dumps(TOOLS[:1], ensure_ascii=False), "utf-8")
    after = load_prompt(tmp_path / "prompts/weather.yaml", tmp_path)
    assert after.version != before.version


@pytest.mark.parametrize(("prompt", "line"), [
    ("tools: file://missing.json", "*prompts/weather.yaml: tools: file://missing.json: no such file*"),
    ("tools: file://../../outside.json", "*prompts/weather.yaml: tools: file://../../outside.json:*outside*"),
    ("tools: [{type: function, function: {description: x}}]",
     "*prompts/weather.yaml: tools[[]0].function: needs name: (the name the model calls it by)*"),
    ("tools: file://tools.json\ntool_choice: {type: function, function: {name: 날씨}}",
     "*prompts/weather.yaml: tool_choice: '날씨' is not one of the prompt's tools (get_weather, book_flight)*"),
    ("tools: file://tools.json\ntool_choice: always",
     "*prompts/weather.yaml: tool_choice: write auto, none, required or {type: function, function: {name: NAME}}*"),
])
def test_a_bad_tools_declaration_in_a_prompt_file_is_one_line_before_any_call(project, prompt, line):
    write(project, "auto")
    (project.path / "prompts/weather.yaml").write_text(f"id: weather\ntemplate: hi\n{prompt}\n", "utf-8")
    result = project.run("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str()
    assert project.server.count == 0


@pytest.mark.parametrize(("value", "line"), [
    ("{type: not-tool-called, value: [get_weather, book_flight]}", "*not-tool-called takes one name*"),
    ("{type: tool-args-match, value: {name: get_weather}}",
     "*tool-args-match: write the value as {name: TOOL, args: {key: value}} or {name: TOOL, schema:*"),
    ("{type: tool-args-match, value: {name: get_weather, args: 서울}}", "*tool-args-match: args: is str, a mapping*"),
])
def test_a_bad_tool_assertion_value_is_one_row_line_before_any_call(project, value, line):
    write(project, "auto", f"- vars: {{city: 서울, unit: c}}\n  assert:\n    - {value}\n")
    result = project.run("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*prompt_tests/weather.yaml*", line])
    assert project.server.count == 0


APP = """
def test_weather(promstack):
    r = promstack.run("weather", vars={"city": "서울", "unit": "celsius"}, model="mine")
    assert r.calls == [("get_weather", {"city": "서울", "unit": "celsius", "options": {"days": 1, "hourly": True}})]
    assert r.tool_calls[0]["function"]["name"] == "get_weather"
    assert r.params["tools"][0]["function"]["parameters"]["properties"]["unit"] == {"enum": ["celsius"]}
    assert r.params["tool_choice"] == "auto"
    promstack.check(r, "tool-called:get_weather", "not-tool-called:book_flight", "is-valid-openai-tools-call",
                    {"type": "tool-args-match", "value": {"name": "get_weather", "args": {"city": "서울"}}})

def test_text(promstack):
    r = promstack.run("weather", vars={"city": "광주", "unit": "celsius"}, model="mine")
    assert r.tool_calls is None and r.output == "광주는 맑아요"
    promstack.check(r, "tool-called:get_weather")
"""


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_the_fixture_reply_carries_the_calls_and_params_for_check(project, transport):
    project.server.respond = respond
    write(project, transport)
    project.write({"test_app.py": APP})
    result = project.pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "test_app.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*✗ tool-called: did not call get_weather; called no tool*"])
