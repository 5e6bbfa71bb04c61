"""A python: target that is an agent: it runs its own tools and returns its trajectory
(``steps``, ``model_calls``, OpenAI ``tool_calls``); the tool checks and python checks read it,
the record shows it, and the cache and the cassettes keep it, so a rerun never calls it again."""

from __future__ import annotations

import json
import shutil

import pytest

AGENT = """
import pathlib

ORDERS = {"A-1001": {"status": "배송 완료", "paid": 39000}}


def run(messages, vars):
    with pathlib.Path(__file__).with_name("agent_calls.log").open("a", encoding="utf-8") as f:
        f.write(vars["input"] + "\\n")
    order = vars["input"].split()[-1]
    found = ORDERS.get(order)
    steps = [{"name": "lookup_order", "arguments": {"order_id": order}, "result": found or {"error": "없는 주문"},
              "step": 1}]
    if found is None:
        return {"text": f"주문 {order}을 찾을 수 없어요", "steps": steps, "cost_usd": 0.0}
    steps.append({"name": "request_refund", "arguments": '{"order_id": "%s", "amount": 39000}' % order,
                  "result": "R-77"})
    return {"text": f"환불 접수했습니다 (R-77)", "steps": steps, "model_calls": 3, "cost_usd": 0.0}


def asks(messages, vars):
    return {"text": "", "steps": [], "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": {"order_id": "B-1"}}}]}


BAD = {
    "nameless": {"text": "x", "steps": [{"arguments": {}}]},
    "typo": {"text": "x", "steps": [{"name": "lookup_order", "args": {}}]},
    "stepzero": {"text": "x", "steps": [{"name": "lookup_order", "step": 0}]},
    "notlist": {"text": "x", "steps": "lookup_order"},
    "calls": {"text": "x", "model_calls": -1},
    "object": {"text": "x", "steps": [{"name": "lookup_order", "result": object()}]},
    "toolcalls": {"text": "x", "tool_calls": [{"type": "function"}]},
}


def bad(messages, vars):
    return BAD[vars["input"]]
"""

CASES = """
- description: 환불
  vars: {input: 환불해 주세요 A-1001}
  assert:
    - tool-called:lookup_order,request_refund
    - type: tool-args-match
      value: {name: request_refund, args: {order_id: A-1001}}
    - type: python
      value: "[s['name'] for s in context['trajectory']] == ['lookup_order', 'request_refund'] and context['steps'] == 3"
    - icontains:R-77
- description: 없는 주문
  vars: {input: 환불해 주세요 Z-9}
  assert:
    - type: tool-args-match
      value: {name: lookup_order, args: {order_id: Z-9}}
    - not-tool-called:request_refund
    - type: python
      value: "context['trajectory'][0]['result'] == {'error': '없는 주문'} and context['steps'] == 2"
    - icontains:찾을 수 없어요
"""


def write(project, cases=CASES, target="run"):
    project.write({
        "promstack.yaml": f"""
            models: [{{name: agent, model: "python:shop_agent:{target}"}}]
            suites: {{orders: {{tests: [prompt_tests/a.yaml]}}}}
        """,
        "shop_agent.py": AGENT,
        "prompt_tests/a.yaml": cases,
    })


def test_an_agent_target_s_steps_are_checked_recorded_and_replayed_without_calling_it(project):
    write(project)
    result = project.run("-p", "no:randomly", "--promstack-json=out.json")
    result.assert_outcomes(passed=2)
    cases = {c["case_id"].split("::")[1]: c for c in json.loads((project.path / "out.json").read_text("utf-8"))["cases"]}
    refund = cases["환불[agent]"]
    assert [(s["turn"], s["step"], s["name"], s["result"]) for s in refund["steps"]] == [
        (1, 1, "lookup_order", {"status": "배송 완료", "paid": 39000}), (1, 2, "request_refund", "R-77")]
    assert refund["steps"][1]["arguments"] == {"order_id": "A-1001", "amount": 39000}  # JSON text parsed
    assert refund["model_calls"] == 3
    assert cases["없는 주문[agent]"]["model_calls"] == 1  # none reported: one call, as for any target
    log = project.path / "agent_calls.log"
    assert len(log.read_text("utf-8").splitlines()) == 2

    log.unlink()
    project.run("-p", "no:randomly").assert_outcomes(passed=2)
    assert not log.exists()  # from the cache, steps and all


def test_a_tool_check_on_an_agent_target_names_the_tools_it_ran(project):
    write(project, CASES.replace("tool-called:lookup_order,request_refund", "tool-called:cancel_order"))
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*✗ tool-called: did not call cancel_order; called lookup_order(order_id="A-1001"), '
                                 'request_refund(order_id="A-1001", amount=39000)*'])


def test_an_agent_target_s_own_tool_calls_count_as_asked_by_its_last_model_call(project):
    write(project, """
- vars: {input: 주문 B-1}
  assert:
    - type: tool-args-match
      value: {name: lookup_order, args: {order_id: B-1}}
    - type: python
      value: "context['trajectory'] == [{'step': 1, 'name': 'lookup_order', 'arguments': {'order_id': 'B-1'}, 'result': None}]"
""", target="asks")
    project.run("-p", "no:randomly").assert_outcomes(passed=1)


def test_recorded_cassettes_keep_the_steps_and_a_fresh_clone_replays_them(project):
    write(project)
    project.run("--promstack-record").assert_outcomes(passed=2)
    entries = [json.loads(line) for line in (project.path / "cassettes/orders.jsonl").read_text("utf-8").splitlines()]
    refund = next(e for e in entries if "A-1001" in e["case"] or e["response"].startswith("환불"))
    assert [s["name"] for s in refund["steps"]] == ["lookup_order", "request_refund"]
    assert refund["model_calls"] == 3
    shutil.rmtree(project.path / ".promstack")
    (project.path / "agent_calls.log").unlink()
    project.run("--promstack-cache=replay").assert_outcomes(passed=2)
    assert not (project.path / "agent_calls.log").exists()


def test_a_cassette_entry_with_bad_steps_names_its_line(project):
    write(project)
    project.run("--promstack-record").assert_outcomes(passed=2)
    path = project.path / "cassettes/orders.jsonl"
    entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    for e in entries:
        e["steps"] = [{"step": 1, "name": "", "arguments": {}, "result": None}]
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    shutil.rmtree(project.path / ".promstack")
    result = project.run("--promstack-cache=replay")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*cassettes/orders.jsonl:1: steps[[]0[]] has no tool name*record the case again*"])


@pytest.mark.parametrize(("name", "problem"), [
    ("nameless", "steps[[]0[]] has no tool name (a non-empty text 'name')"),
    ("typo", "steps[[]0[]] has 'args' (a step has name, arguments, result and step)"),
    ("stepzero", "steps[[]0[]] step 0 is not the model call that asked it (a whole number from 1)"),
    ("notlist", "steps is not a list of up to 1,024 tool runs"),
    ("calls", "model_calls -1 is not a whole number of model calls (1 or more)"),
    ("object", "steps[[]0[]] holds a value that is not JSON*"),
    ("toolcalls", "tool_calls[[]0[]] is not a call*"),
])
def test_an_agent_target_s_bad_trajectory_is_one_line_naming_what_to_return(project, name, problem):
    write(project, f"- vars: {{input: {name}}}\n  assert: [icontains:x]\n", target="bad")
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*a.yaml:1 [[]agent[]]: model call failed: python:shop_agent:bad returned {problem}"
                                 '; return the reply text, or a dict {"text": str, "steps": [[]{"name": str, *'])
    assert "Traceback" not in result.stdout.str()
    project.run("-p", "no:randomly").assert_outcomes(errors=1)  # nothing bad was cached


def test_in_a_conversation_each_turn_checks_the_tools_the_agent_ran_for_it(project):
    write(project, """
- turns:
    - input: 주문 Z-1
      assert: [tool-called:lookup_order, 'not-tool-called:request_refund', icontains:찾을 수 없어요]
    - input: 환불해 주세요 A-1001
      assert: [tool-called:request_refund]
  assert:
    - type: python
      value: "[(s['turn'], s['name']) for s in context['trajectory']] == [(1, 'lookup_order'), (2, 'lookup_order'), (2, 'request_refund')]"
""")
    result = project.run("-p", "no:randomly", "--promstack-json=out.json")
    result.assert_outcomes(passed=1)
    case = json.loads((project.path / "out.json").read_text("utf-8"))["cases"][0]
    assert [(s["turn"], s["name"]) for s in case["steps"]] == [
        (1, "lookup_order"), (2, "lookup_order"), (2, "request_refund")]
