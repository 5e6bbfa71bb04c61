"""Agent loops: with tool_results (canned) or tool_impl (python), the model's tool calls run, their
results go back, the model is called again, up to max_steps; every step is cached, so a rerun
replays the whole trajectory with zero requests and without running a tool; the record holds the
numbered steps."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.fake_openai import Reply
from tests.support.project import config

TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "request_refund", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]

PROMPT = f"""id: agent
template: '{{{{ input }}}}'
tools: {json.dumps(TOOLS, ensure_ascii=False)}
"""

TOOL_IMPL = """
import json, pathlib

def run(name, arguments):
    log = pathlib.Path(__file__).with_name("tool_calls.log")
    with log.open("a", encoding="utf-8") as f:
        f.write(name + "\\n")
    if name == "get_order":
        if arguments["order_id"] == "X":
            raise LookupError("no such order")
        return {"order_id": arguments["order_id"], "status": "배송 완료", "paid": 39000}
    return "환불 접수 번호 R-77"
"""


def respond(body):
    """Looks the order up, then asks for the refund, then answers with what the tools said."""
    msgs = body["messages"]
    tools = [m for m in msgs if m["role"] == "tool"]
    if not tools:
        order = msgs[-1]["content"].split()[-1]
        return Reply(tool_calls=[("get_order", {"order_id": order})])
    if len(tools) == 1:
        order = json.loads(msgs[-2]["tool_calls"][0]["function"]["arguments"])["order_id"]
        if "error" in tools[0]["content"]:
            return Reply(text=f"주문을 찾을 수 없어요: {tools[0]['content']}")
        return Reply(tool_calls=[("request_refund", {"order_id": order})])
    return Reply(text=f"환불 처리했습니다. {tools[-1]['content']}")


CASES = """
- description: 환불 (실제 도구)
  vars: {input: 주문 환불해 주세요 A-1001}
  tool_impl: shop_tools:run
  assert:
    - tool-called:get_order
    - icontains:R-77
    - type: python
      value: "[s['name'] for s in context['trajectory']] == ['get_order', 'request_refund']"
    - {type: trajectory:tool-sequence, value: {steps: [get_order, request_refund], mode: exact}}
    - {type: trajectory:step-count, value: {type: llm, min: 3, max: 3}}
    - {type: trajectory:tool-args-match, value: {name: request_refund, args: {order_id: A-1001}}}
- description: 없는 주문
  vars: {input: 주문 환불해 주세요 X}
  tool_impl: shop_tools:run
  assert: [icontains:찾을 수 없어요]
- description: 환불 (준비된 결과)
  vars: {input: 주문 환불해 주세요 B-2002}
  tool_results:
    - {name: get_order, arguments: {order_id: B-2002}, result: {status: 배송 중}}
    - {name: request_refund, result: 접수 R-99}
  assert: [icontains:R-99]
"""


def write(project, cases=CASES, transport="auto"):
    doc = yaml.safe_load(config(project.server.url, transport=transport,
                                suites={"agent": {"prompt": "prompts/agent.yaml", "tests": ["prompt_tests/*"]}}))
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True), "prompts/agent.yaml": PROMPT,
                   "shop_tools.py": TOOL_IMPL, "prompt_tests/agent.yaml": cases})


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_the_loop_runs_the_tools_and_a_rerun_replays_it_without_a_request_or_a_tool(project, transport):
    project.server.respond = respond
    write(project, transport=transport)
    result = project.run("-v", "-p", "no:randomly", "--promstack-json=out.json", "--junitxml=junit.xml")
    result.assert_outcomes(passed=3)
    assert project.server.count == 3 + 2 + 3
    import xml.etree.ElementTree as ET

    case = next(c for c in ET.parse(project.path / "junit.xml").iter("testcase") if "실제" in c.get("name"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (props["model_calls"], props["tool_calls"]) == ("3", "2")
    log = project.path / "tool_calls.log"
    assert log.read_text("utf-8").split() == ["get_order", "get_order", "request_refund"] or sorted(
        log.read_text("utf-8").split()) == ["get_order", "get_order", "request_refund"]
    last = next(r for r in project.server.requests if len([m for m in r["messages"] if m["role"] == "tool"]) == 2
                and "A-1001" in r["messages"][0]["content"])
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert last["messages"][2]["tool_call_id"] == last["messages"][1]["tool_calls"][0]["id"]
    assert json.loads(last["messages"][2]["content"])["status"] == "배송 완료"
    doc = json.loads((project.path / "out.json").read_text("utf-8"))
    real = next(c for c in doc["cases"] if "실제" in c["case_id"])
    assert [(s["step"], s["name"], s["result"]) for s in real["steps"]] == [
        (1, "get_order", {"order_id": "A-1001", "status": "배송 완료", "paid": 39000}),
        (2, "request_refund", "환불 접수 번호 R-77")]
    assert real["model_calls"] == 3
    assert real["output"].startswith("환불 처리했습니다")
    missing = next(c for c in doc["cases"] if "없는" in c["case_id"])
    assert "LookupError: no such order" in missing["steps"][0]["result"]["error"]

    project.server.reset()
    log.unlink()
    project.run("-p", "no:randomly").assert_outcomes(passed=3)
    assert project.server.count == 0
    assert not log.exists()  # the tools' results came from the cache too


def test_max_steps_ends_a_loop_that_keeps_calling_tools(project):
    project.server.respond = lambda body: Reply(tool_calls=[("get_order", {"order_id": "A"})])
    write(project, """
- vars: {input: 주문 A}
  tool_results: {get_order: {status: ok}}
  max_steps: 3
  assert:
    - type: python
      value: len(context['trajectory']) == 3
    - tool-called:get_order
""")
    project.run("-p", "no:randomly").assert_outcomes(passed=1)
    assert project.server.count == 3


@pytest.mark.parametrize(("case", "line"), [
    ("tool_impl: shop_tools", "*agent.yaml:1: tool_impl: name a python function as module:function*"),
    ("max_steps: 0\n  tool_results: {get_order: ok}", "*agent.yaml:1: max_steps: write a whole number from 1 to 100*"),
    ("max_steps: 3", "*agent.yaml:1: max_steps: goes with tool_results: (canned results) or tool_impl:*"),
    ("tool_results: [{name: get_order}]", "*agent.yaml:1: tool_results[[]0[]]: write {name: get_order,*"),
])
def test_a_bad_agent_key_is_one_row_line_before_any_call(project, case, line):
    write(project, f"- vars: {{input: 주문 A}}\n  {case}\n  assert: [icontains:x]\n")
    result = project.run("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str()
    assert project.server.count == 0


def test_a_tool_impl_that_cannot_load_errors_its_case_in_one_line(project):
    project.server.respond = respond
    write(project, "- vars: {input: 주문 A}\n  tool_impl: no_such_module:run\n  assert: [icontains:x]\n")
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*agent.yaml:1 [[]mine[]]: tool_impl cannot load python:no_such_module:run:*"])


def test_no_python_refuses_a_tool_impl(project):
    project.server.respond = respond
    write(project)
    result = project.run("-p", "no:randomly", "--promstack-no-python")
    result.stdout.fnmatch_lines(["*tool_impl shop_tools:run is code from this repository; python is refused*"])
    result.assert_outcomes(passed=1, errors=2)
    assert project.server.count == 3  # the canned case still runs


def test_a_recorded_agent_run_replays_from_its_cassette_with_no_cache_no_call_and_no_tool(project):
    import shutil

    project.server.respond = respond
    write(project)
    project.run("-p", "no:randomly", "--promstack-record").assert_outcomes(passed=3)
    entries = [json.loads(line) for line in (project.path / "cassettes/agent.jsonl").read_text("utf-8").splitlines()]
    assert sum(e["request"].get("call") == "tool" for e in entries) == 3  # the python tool's runs
    assert sum(e["model"] == "openai/mine" for e in entries) == 8
    shutil.rmtree(project.path / ".promstack/cache")
    (project.path / "tool_calls.log").unlink()
    project.server.reset()
    project.run("-p", "no:randomly", "--promstack-cache", "replay").assert_outcomes(passed=3)
    assert project.server.count == 0
    assert not (project.path / "tool_calls.log").exists()


def test_the_estimate_counts_every_turn_and_step_a_chain_may_take_and_bounds_what_it_spends(project):
    project.server.respond = respond
    write(project, """
- vars: {input: 주문 환불해 주세요 B-2002}
  tool_results: {get_order: {status: 배송 중}, request_refund: 접수 R-99}
  max_steps: 4
  assert: [icontains:R-99]
- turns: [환불하고 싶어요, 주문 B-1 환불해 주세요]
  tool_results: {get_order: {status: 배송 중}, request_refund: 접수 R-1}
  max_steps: 3
  assert: [icontains:R-1]
""")
    doc = yaml.safe_load((project.path / "promstack.yaml").read_text("utf-8"))
    doc["models"][0]["params"] = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True)})
    result = project.run("--promstack-estimate")
    assert result.ret == 0
    assert project.server.count == 0
    result.stdout.fnmatch_lines(["mine * 10 * 0 *"])  # 4 steps, then 2 turns x 3 steps
    bound = float(next(x for x in result.stdout.lines if x.startswith("promstack estimate: at most")).split()[4])
    project.run("--promstack-json", "out.json")
    cases = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["cases"]
    assert project.server.count == 3 + 3 + 1  # the second turn answers from the tools' results already in it
    assert 0 < sum(c["cost_usd"] for c in cases) <= bound


@pytest.mark.parametrize(("case", "line"), [
    ("tool_results: {get_order: ok}\n  tool_impl: shop_tools:run",
     "*agent.yaml:1: tool_results: and tool_impl: both run the tools; give one*"),
    ("tool_results: [{name: get_order, arguments: A-1001, result: 1}]",
     "*agent.yaml:1: tool_results[[]0[]].arguments: write the arguments to match as a mapping*"),
    ("tool_results: {get_order: .nan}", "*agent.yaml:1: tool_results[[]0[]].result: write text or JSON data*"),
])
def test_conflicting_or_unusable_agent_keys_are_one_row_line(project, case, line):
    write(project, f"- vars: {{input: 주문 A}}\n  {case}\n  assert: [icontains:x]\n")
    result = project.run("-p", "no:randomly")
    result.stdout.fnmatch_lines([line])
    assert project.server.count == 0


@pytest.mark.parametrize(("impl", "line"), [
    ("CALLS = 'run'\n", "*tool_impl cannot load python:bad_tools:CALLS: it is a str, not a function*"),
    ("def CALLS(name, arguments):\n    return {1, 2}\n",
     "*tool_impl python:bad_tools:CALLS returned a set for get_order, which is not text or JSON data*"),
    ("def CALLS(name, arguments):\n    return {'x': float('nan')}\n",
     "*tool_impl python:bad_tools:CALLS returned a dict for get_order, which is not text or JSON data*"),
])
def test_a_tool_impl_that_is_no_function_or_returns_what_json_cannot_hold_errors_its_case(project, impl, line):
    project.server.respond = respond
    write(project, "- vars: {input: 주문 A}\n  tool_impl: bad_tools:CALLS\n  assert: [icontains:x]\n")
    project.write({"bad_tools.py": impl})
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([line])
