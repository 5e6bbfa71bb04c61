"""The plan stage on plain data: files and settings in, planned cases and requests out, no
pytest and no model call."""

from __future__ import annotations

from pytest_promstack.config.settings import load_settings
from pytest_promstack.plan.planner import Planner
from pytest_promstack.score.registry import builtin_registry

CONFIG = """
models: [{name: m, model: openai/m, api_base: "http://127.0.0.1:9/v1"}]
defaults: {temperature: 0, max_tokens: 32}
repeat: 2
suites:
  s: {prompt: prompts/p.yaml, tests: [t/*.csv], assert: ["length:<=200"]}
"""


def planner_for(tmp_path, rows: str) -> Planner:
    (tmp_path / "promstack.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/p.yaml").write_text("id: p\ntemplate: '질문: {{ input }}'\n", encoding="utf-8")
    (tmp_path / "t").mkdir()
    (tmp_path / "t/a.csv").write_text(rows, encoding="utf-8")
    registry = builtin_registry()
    return Planner(load_settings(tmp_path, {}), registry.assertions.__contains__, registry.suggest)


def test_each_row_becomes_a_planned_case_with_one_request_per_repeat(tmp_path):
    planner = planner_for(tmp_path, "input,__expected\n환불,contains:환불\n배송,contains:배송\n")
    plans = planner.plan_file(tmp_path / "t/a.csv")
    assert [p.case_id for p in plans] == ["t/a.csv::row-2[m]", "t/a.csv::row-3[m]"]
    first = plans[0]
    assert [a.type for a in first.asserts] == ["contains", "length"]  # the row's, then the suite's
    assert [r.messages[-1]["content"] for r in first.requests] == ["질문: 환불", "질문: 환불"]
    assert [r.meta["repeat"] for r in first.requests] == [0, 1]
    assert len({r.key for r in first.requests}) == 2  # each repeat its own cache entry
    assert first.requests[0].params == {"temperature": 0, "max_tokens": 32}
    assert planner.all_ids() == {p.case_id for p in plans}


def test_a_template_error_is_the_error_of_its_case_and_makes_no_request(tmp_path):
    planner = planner_for(tmp_path, "question,__expected\n환불,contains:환불\n")  # no `input` column
    [plan] = planner.plan_file(tmp_path / "t/a.csv")
    assert plan.requests == ()
    assert "input" in plan.error


def test_each_arena_contender_sends_its_own_tools_rendered_for_the_case(tmp_path):
    import json

    planner_for(tmp_path, "input\n서울\n")
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"enum": ["{{ input }}"]}}}}}]
    (tmp_path / "tools.json").write_text(json.dumps(tools, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "promstack.yaml").write_text("""
models:
  - {name: a, model: openai/a, api_base: "http://127.0.0.1:9/v1", params: {tools: file://tools.json}}
  - {name: b, model: openai/b, api_base: "http://127.0.0.1:9/v1"}
  - {name: j, model: openai/j, api_base: "http://127.0.0.1:9/v1"}
judges: {q: {model: j, criteria: [c]}}
arena: {models: [a, b], judge: q, tests: [t/*.csv]}
""", encoding="utf-8")
    registry = builtin_registry()
    planner = Planner(load_settings(tmp_path, {}), registry.assertions.__contains__, registry.suggest)
    (plan,) = planner.plan_file(tmp_path / "t/a.csv")
    with_tools, without = plan.requests
    assert with_tools.params["tools"][0]["function"]["parameters"]["properties"]["city"] == {"enum": ["서울"]}
    assert "tools" not in without.params
