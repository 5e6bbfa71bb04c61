"""A model given tools answers with tool calls over real HTTP, through both transports; the
calls are checked by is-valid-openai-tools-call and tool-call-f1, kept in the cache and in
cassettes, and shown in the reports."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.support.fake_openai import Reply
from tests.support.project import config

# the unit's allowed value is a {{ var }}: rendered per case before the request is sent
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "오늘 날씨",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["{{ unit }}"]}},
                   "required": ["city", "unit"]}}}]

CASES = """
- description: 맞는 호출
  vars: {city: 서울, unit: celsius}
  assert: &checks
    - type: is-valid-openai-tools-call
    - type: tool-call-f1
      value: [get_weather]
- description: 틀린 인자
  vars: {city: 부산, unit: celsius}
  assert: *checks
- description: 다른 도구
  vars: {city: 대구, unit: celsius}
  assert: *checks
- description: 말로만 답함
  vars: {city: 광주, unit: celsius}
  assert: *checks
"""


def respond(body):
    """Seoul: a good call; Busan: the city as a number; Daegu: a tool nobody declared; Gwangju: text."""
    prompt = body["messages"][-1]["content"]
    if "서울" in prompt:
        return Reply(tool_calls=[("get_weather", {"city": "서울", "unit": "celsius"})])
    if "부산" in prompt:
        return Reply(tool_calls=[("get_weather", {"city": 42, "unit": "celsius"})])
    if "대구" in prompt:
        return Reply(text="항공편을 찾아볼게요", tool_calls=[("book_flight", {"to": "대구"})])
    return Reply(text="광주는 맑아요")


def write(project, transport):
    doc = yaml.safe_load(config(project.server.url, transport=transport,
                                suites={"weather": {"prompt": "prompts/weather.yaml", "tests": ["prompt_tests/*"]}}))
    doc["models"][0]["params"] = {"tools": "file://tools.json", "tool_choice": "auto"}
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True),
                   "tools.json": json.dumps(TOOLS, ensure_ascii=False),
                   "prompts/weather.yaml": "id: weather\ntemplate: '{{ city }} 날씨를 알려줘'\n",
                   "prompt_tests/weather.yaml": CASES})


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_model_given_tools_answers_with_calls_that_the_tool_checks_pass_and_fail(project, transport):
    project.server.respond = respond
    write(project, transport)
    result = project.run("-v", "-p", "no:randomly", "--promstack-json=out.json")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*맞는 호출*PASSED*", "*틀린 인자*FAILED*", "*다른 도구*FAILED*", "*말로만 답함*FAILED*",
        "*✗ is-valid-openai-tools-call: Call to \"get_weather\" does not match schema: schema: city: 42 is not of "
        "type 'string'*",
        "*✗ is-valid-openai-tools-call: Called \"book_flight\", but there is no function with that name*",
        "*✗ tool-call-f1: Tool Call F1 score 0.000 is below threshold 1. Expected: [[]get_weather], Called: "
        "[[]book_flight]*",
        "*✗ is-valid-openai-tools-call: OpenAI did not return a valid-looking tools response: \"광주는 맑아요\"*",
    ])
    sent = project.server.requests[0]
    assert sent["tools"][0]["function"]["parameters"]["properties"]["unit"] == {"enum": ["celsius"]}  # rendered
    assert sent["tool_choice"] == "auto"
    agent = project.server.headers[0].get("User-Agent", "")
    assert ("OpenAI" in agent) == (transport == "litellm"), agent  # the transport under test made the calls
    records = {c["case_id"].split("::")[1]: c for c in json.loads((project.path / "out.json").read_text("utf-8"))["cases"]}
    seoul = json.loads(records["맞는 호출[mine]"]["output"])  # the report shows the calls, not an empty text
    assert seoul == [{"id": "call_0", "type": "function",
                      "function": {"name": "get_weather", "arguments": '{"city": "서울", "unit": "celsius"}'}}]
    assert json.loads(records["다른 도구[mine]"]["output"])["content"] == "항공편을 찾아볼게요"

    project.server.reset()  # answered from the cache: the same verdicts, no call
    project.run("-p", "no:randomly").assert_outcomes(passed=1, failed=3)
    assert project.server.count == 0


def test_recorded_tool_calls_replay_from_the_cassette_without_the_server(project):
    project.server.respond = respond
    write(project, "auto")
    project.run("--promstack-record").assert_outcomes(passed=1, failed=3)
    entries = [json.loads(line) for line in (project.path / "cassettes/weather.jsonl").read_text("utf-8").splitlines()]
    calls = {e["request"]["messages"][-1]["content"]: e.get("tool_calls") for e in entries}
    assert calls["광주 날씨를 알려줘"] is None
    assert calls["서울 날씨를 알려줘"][0]["function"]["name"] == "get_weather"
    shutil.rmtree(project.path / ".promstack")  # a fresh clone: only the committed cassette
    project.server.reset()
    result = project.run("--promstack-cache=replay", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*맞는 호출*PASSED*"])
    assert project.server.count == 0


def test_a_cassette_entry_with_malformed_tool_calls_fails_its_case_in_one_line(project):
    project.server.respond = respond
    write(project, "auto")
    project.run("--promstack-record")
    path = project.path / "cassettes/weather.jsonl"
    entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    seoul = next(e for e in entries if e.get("tool_calls") and "서울" in json.dumps(e, ensure_ascii=False))
    seoul["tool_calls"][0]["function"]["arguments"] = {"city": "서울"}  # an object, not the JSON text
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    shutil.rmtree(project.path / ".promstack")
    result = project.run("--promstack-cache=replay", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*cassettes/weather.jsonl:*: tool_calls[[]0] is not a call {id, type: function, "
                                 "function: {name, arguments}}: its arguments are not JSON text; record the case "
                                 "again with --promstack-record (or fix the line)*"])


def test_a_tools_file_that_is_missing_fails_its_cases_before_any_call(project):
    write(project, "auto")
    (project.path / "tools.json").unlink()
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*tools: file://tools.json: no such file (tools.json); the path is relative to*"])
    assert project.server.count == 0


PROMPTFOO = """
prompts: ['{{ city }} 날씨를 알려줘']
providers:
  - id: openai:chat:mine
    config: {apiBaseUrl: URL, tools: file://tools.yaml, tool_choice: auto}
tests:
  - vars: {city: 서울, unit: celsius}
    assert:
      - type: is-valid-openai-tools-call
      - type: tool-call-f1
        value: get_weather
  - vars: {city: 부산, unit: celsius}
    assert:
      - type: is-valid-openai-tools-call
"""


def test_a_promptfoo_config_in_a_folder_gives_its_provider_tools_from_a_file_beside_it(project, monkeypatch):
    """providers[].config.tools: file://tools.yaml is read relative to the promptfoo config,
    also when a promstack.yaml elsewhere names that config."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    project.server.respond = respond
    project.write({"promstack.yaml": "promptfoo: evals/weather/promptfooconfig.yaml\n",
                   "evals/weather/promptfooconfig.yaml": PROMPTFOO.replace("URL", project.server.url),
                   "evals/weather/tools.yaml": yaml.safe_dump(TOOLS, allow_unicode=True)})
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*is-valid-openai-tools-call: Call to \"get_weather\" does not match schema*"])
    assert project.server.requests[0]["tools"][0]["function"]["parameters"]["properties"]["unit"] == {
        "enum": ["celsius"]}


def test_a_server_answer_with_malformed_tool_calls_is_one_error_line_and_never_stored():
    from pytest_promstack.execute.providers.openai_compat import _response
    from pytest_promstack.execute.stored import decode, encode
    from pytest_promstack.model.types import Request, Response

    req = Request(model="m", litellm_model="openai/m", messages=(), params={}, key="k", api_base="http://x")
    usage = {"prompt_tokens": 3, "completion_tokens": 2}

    def answer(message):
        return _response({"choices": [{"message": message, "finish_reason": "tool_calls"}], "usage": usage}, req, 1.0)

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    ok = answer({"role": "assistant", "content": None, "tool_calls": [call]})
    assert ok.error is None
    assert ok.text == ""
    assert ok.tool_calls == ({"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},)
    assert Response.from_json(ok.to_json()) == ok  # the calls survive the cache's JSON, as a tuple
    assert decode(encode(ok)) == ok
    bad = answer({"role": "assistant", "content": None, "tool_calls": "f()"})
    assert bad.error == "APIError: the provider's answer is not a chat completion: tool_calls is str, not a list"
    nameless = answer({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]})
    assert "tool_calls[0] is not a call" in nameless.error
    assert "its name is not a text" in nameless.error
    row = json.loads(encode(ok))
    row["tool_calls"][0]["type"] = "custom"
    assert decode(json.dumps(row)) is None  # a forged cache row is a miss, never an answer
