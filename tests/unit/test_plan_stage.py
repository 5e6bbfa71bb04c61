"""The plan stage on plain data: test files -> cases (plan/cases.py), prompt files -> rendered
messages (plan/prompts.py), and the one request builder and cache key (plan/requests.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promstack.config.settings import load_settings
from pytest_promstack.model.errors import CaseError, TemplateError
from pytest_promstack.model.specs import AssertionSyntaxError, parse_shorthand
from pytest_promstack.plan.cases import Loader
from pytest_promstack.plan.prompts import from_mapping, load_prompt
from pytest_promstack.plan.requests import build, cache_key
from pytest_promstack.score.registry import builtin_registry

MSGS = [{"role": "user", "content": "환불하고 싶어요"}]


# ---- the cache key ------------------------------------------------------------------------


def test_cache_key_is_stable_and_ignores_timeouts_and_keys():
    base = cache_key("openai/m", MSGS, {"temperature": 0, "max_tokens": 10})
    assert base == cache_key("openai/m", MSGS, {"max_tokens": 10, "temperature": 0})
    assert base == cache_key("openai/m", MSGS, {"temperature": 0, "max_tokens": 10, "timeout": 5, "api_key": "k"})
    assert len(base) == 64


@pytest.mark.parametrize("change", [
    {"model": "openai/other"},
    {"messages": [{"role": "user", "content": "환불할래요"}]},
    {"params": {"temperature": 0.7, "max_tokens": 10}},
    {"params": {"temperature": 0, "max_tokens": 10, "seed": 1}},
    {"params": {"temperature": 0, "max_tokens": 10, "stop": ["\n"]}},
    {"params": {"temperature": 0, "max_tokens": 10, "response_format": {"type": "json_object"}}},
    {"api_base": "http://127.0.0.1:1/v1"},
])
def test_cache_key_changes_with_anything_that_changes_the_answer(change):
    args = {"model": "openai/m", "messages": MSGS, "params": {"temperature": 0, "max_tokens": 10}, "api_base": None}
    assert cache_key(**args) != cache_key(**{**args, **change})


def test_cache_key_of_a_repeat_or_a_python_targets_vars_differs_but_repeat_zero_is_the_plain_key():
    plain = cache_key("openai/m", MSGS, {})
    assert cache_key("openai/m", MSGS, {}, repeat=0, extra=None) == plain  # run 0 shares the cache with older runs
    assert len({plain, cache_key("openai/m", MSGS, {}, repeat=1), cache_key("openai/m", MSGS, {}, repeat=2),
                cache_key("openai/m", MSGS, {}, extra={"vars": {"q": 1}})}) == 4


# ---- requests.build ---------------------------------------------------------------------


CONFIG = """
models:
  - {name: m, model: openai/m, api_base: "http://127.0.0.1:9/v1", api_key_env: M_KEY, params: {max_tokens: 64}}
defaults: {temperature: 0, max_tokens: 32}
timeout: 7
"""


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "promstack.yaml").write_text(CONFIG, encoding="utf-8")
    return load_settings(tmp_path, {})


def test_a_request_takes_the_defaults_then_the_models_params_then_the_calls_own(settings):
    req = build(settings, "m", MSGS, {"suite": "s"}, params={"seed": 3})
    assert req.model == "m"
    assert req.litellm_model == "openai/m"
    assert req.params == {"temperature": 0, "max_tokens": 64, "seed": 3}  # the model's 64 over the defaults' 32
    assert (req.api_base, req.api_key_env, req.timeout) == ("http://127.0.0.1:9/v1", "M_KEY", 7.0)
    assert req.messages == tuple(MSGS)
    assert req.meta == {"suite": "s"}
    assert req.key == cache_key("openai/m", MSGS, {"temperature": 0, "max_tokens": 64, "seed": 3},
                                "http://127.0.0.1:9/v1")


def test_the_same_call_from_any_entry_point_is_one_cache_entry_whatever_its_meta(settings):
    from_file = build(settings, "m", MSGS, {"suite": "s", "case_id": "a.csv::row-2[m]"})
    from_fixture = build(settings, "m", MSGS, {"suite": "fixture", "case_id": "test_x.py::test_y"})
    assert from_file.key == from_fixture.key


def test_an_unconfigured_model_name_is_used_as_the_litellm_model_with_no_endpoint(settings):
    req = build(settings, "openai/gpt-x", MSGS, {})
    assert (req.model, req.litellm_model, req.api_base, req.api_key_env) == ("openai/gpt-x", "openai/gpt-x", None, None)
    assert req.params == {"temperature": 0, "max_tokens": 32}


def test_a_judge_request_has_no_run_defaults_and_sends_drop_params_outside_its_key(settings):
    req = build(settings, "m", MSGS, {"suite": "s"}, params={"temperature": 0}, defaults=False, judge=True)
    assert req.params == {"max_tokens": 64, "temperature": 0, "drop_params": True}
    assert req.meta == {"suite": "s", "kind": "judge"}
    assert req.key == cache_key("openai/m", MSGS, {"max_tokens": 64, "temperature": 0}, "http://127.0.0.1:9/v1")


def test_each_repeat_of_a_case_is_its_own_request(settings):
    keys = [build(settings, "m", MSGS, {}, repeat=i).key for i in range(3)]
    assert len(set(keys)) == 3
    assert keys[0] == build(settings, "m", MSGS, {}).key


def test_a_python_targets_vars_join_its_key_and_meta_but_not_a_model_calls(settings):
    one = build(settings, "python:app:answer", MSGS, {}, variables={"q": "환불"})
    two = build(settings, "python:app:answer", MSGS, {}, variables={"q": "배송"})
    assert one.key != two.key  # same messages, other vars: another answer
    assert one.meta == {"vars": {"q": "환불"}}
    model = build(settings, "m", MSGS, {}, variables={"q": "환불"})
    assert model.key == build(settings, "m", MSGS, {}, variables={"q": "배송"}).key  # a model sees only messages
    assert "vars" not in model.meta


# ---- prompts ------------------------------------------------------------------------------


def test_prompt_version_changes_with_content_not_with_id():
    a = from_mapping({"id": "a", "template": "{{ input }}"}, "x", "a")
    b = from_mapping({"id": "b", "template": "{{ input }}"}, "x", "b")
    c = from_mapping({"id": "a", "template": "{{ input }}!"}, "x", "a")
    assert a.version == b.version != c.version
    assert len(a.version) == 8
    assert a.version != from_mapping({"id": "a", "template": "{{ input }}", "params": {"temperature": 1}}, "x",
                                     "a").version


def test_prompt_render_strict_undefined_names_variable():
    p = from_mapping({"id": "p", "messages": [{"role": "system", "content": "상담원"},
                                              {"role": "user", "content": "{{ input }} {{ user.name }}"}]},
                     "prompts/p.yaml", "p")
    with pytest.raises(TemplateError, match=r"'input' is undefined in prompts/p\.yaml"):
        p.render({})
    with pytest.raises(TemplateError, match="'name' is undefined"):
        p.render({"input": "x", "user": {}})
    assert p.render({"input": "환불", "user": {"name": "김"}}, prefix="[", suffix="]")[-1]["content"] == "[환불 김]"


def test_prefix_and_suffix_go_on_the_last_user_message_only():
    p = from_mapping({"messages": [{"role": "user", "content": "첫 {{ a }}"}, {"role": "assistant", "content": "네"},
                                   {"role": "user", "content": "둘 {{ b }}"}, {"role": "assistant", "content": "끝"}]},
                     "p.yaml", "p")
    out = p.render({"a": 1, "b": 2}, prefix="<", suffix=">")
    assert [m["content"] for m in out] == ["첫 1", "네", "<둘 2>", "끝"]


def test_prompt_file_shape_errors():
    with pytest.raises(CaseError, match="exactly one of template: or messages:"):
        from_mapping({"id": "p"}, "p.yaml", "p")
    with pytest.raises(CaseError, match=r"messages\[0\]: needs role: and content:"):
        from_mapping({"messages": [{"content": "x"}]}, "p.yaml", "p")
    with pytest.raises(CaseError, match=r"p\.yaml: unknown key\(s\) templte"):
        from_mapping({"templte": "x"}, "p.yaml", "p")


def test_a_text_prompt_file_is_one_user_message_named_by_its_file_and_a_branch_file_by_its_branch(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/refund.txt").write_text("질문: {{ input }}", encoding="utf-8")
    (tmp_path / "prompts/refund@terse.yaml").write_text("id: refund\ntemplate: '짧게: {{ input }}'\n",
                                                        encoding="utf-8")
    plain = load_prompt(tmp_path / "prompts/refund.txt", tmp_path)
    assert (plain.id, plain.source, plain.messages) == ("refund", "prompts/refund.txt",
                                                        ({"role": "user", "content": "질문: {{ input }}"},))
    branch = load_prompt(tmp_path / "prompts/refund@terse.yaml", tmp_path)
    assert branch.id == "refund@terse"
    assert branch.render({"input": "환불"}) == [{"role": "user", "content": "짧게: 환불"}]


# ---- the cases loader ---------------------------------------------------------------------


def _loader(tmp_path: Path) -> Loader:
    reg = builtin_registry()
    return Loader(tmp_path, reg.assertions.__contains__, reg.suggest)


def test_loader_reads_conventions(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("input,__expected,__expected2,__description,__metadata:topic,__metadata:tags[],__threshold,__marks\n"
                 "환불,icontains:환불,levenshtein(3):환불,설명,refund,\"a, b\",0.5,slow; xfail: 이유\n",
                 encoding="utf-8")
    (case,) = _loader(tmp_path).load(f)
    assert case.vars == {"input": "환불"}
    assert [a.type for a in case.asserts] == ["icontains", "levenshtein"]
    assert case.asserts[1].threshold == 3
    assert case.description == "설명"
    assert case.row == 2
    assert case.metadata == {"topic": "refund", "tags": ["a", "b"]}
    assert case.threshold == 0.5
    assert case.marks == ("slow", "xfail: 이유")
    assert case.file == "a.csv"
    assert case.where == "a.csv:2"


def test_loader_row_numbers_follow_file_lines_with_multiline_cells(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('input,__expected\n"two\nlines",contains:two\nthird,contains:third\n', encoding="utf-8")
    cases = _loader(tmp_path).load(f)
    assert [c.row for c in cases] == [2, 4]


def test_loader_numbers_json_and_yaml_cases_from_one(tmp_path):
    (tmp_path / "a.yaml").write_text("- vars: {input: 환불}\n  assert: [{type: contains, value: 환불}]\n"
                                     "- vars: {input: 배송}\n", encoding="utf-8")
    cases = _loader(tmp_path).load(tmp_path / "a.yaml")
    assert [(c.row, c.vars) for c in cases] == [(1, {"input": "환불"}), (2, {"input": "배송"})]
    assert [(a.type, a.value) for a in cases[0].asserts] == [("contains", "환불")]


def test_a_row_with_an_unknown_assertion_is_a_case_carrying_its_one_line_error(tmp_path):
    (tmp_path / "a.csv").write_text("input,__expected\n환불,contians:환불\nok,contains:ok\n", encoding="utf-8")
    bad, good = _loader(tmp_path).load(tmp_path / "a.csv")
    assert bad.row == 2
    assert "contians" in bad.error
    assert "did you mean 'contains'?" in bad.error
    assert "\n" not in bad.error
    assert good.error is None


def test_unreadable_file_raises_case_error(tmp_path):
    with pytest.raises(CaseError, match="unknown test file type"):
        _loader(tmp_path).load(tmp_path / "a.txt")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(CaseError, match="is empty"):
        _loader(tmp_path).load(tmp_path / "e.csv")


# ---- the assertion shorthand the loader reads ---------------------------------------------


@pytest.mark.parametrize(("text", "type_", "value"), [
    ("contains:a:b", "contains", "a:b"),
    ("Paris", "equals", "Paris"),
    ("환불: 가능", "equals", "환불: 가능"),
    ("is-json", "is-json", None),
    ("not-regex:^x", "not-regex", "^x"),
    ('contains-any:"a, b",{{ c }}', "contains-any", ["a, b", "{{ c }}"]),  # split before {{ c }} renders
    ("contains-all:[\"a\", \"b\"]", "contains-all", '["a", "b"]'),  # a JSON list is read when checked
])
def test_shorthand_parsing(text, type_, value):
    spec = parse_shorthand(text, builtin_registry().assertions.__contains__)
    assert (spec.type, spec.value) == (type_, value)


def test_shorthand_unknown_type_raises():
    with pytest.raises(AssertionSyntaxError):
        parse_shorthand("contians:x", builtin_registry().assertions.__contains__)


# ---- values from files (file://) ----------------------------------------------------------


def test_file_values_are_read_relative_to_the_test_file_as_text_json_or_yaml(tmp_path):
    (tmp_path / "t/answers").mkdir(parents=True)
    (tmp_path / "t/answers/refund.txt").write_text("환불 절차", encoding="utf-8")
    (tmp_path / "t/answers/order.json").write_text('{"required": ["id"]}', encoding="utf-8")
    (tmp_path / "t/answers/words.yaml").write_text("- 환불\n- 교환\n", encoding="utf-8")
    (tmp_path / "t/a.yaml").write_text(
        "- vars: {input: 환불}\n"
        "  assert:\n"
        "    - {type: contains, value: file://answers/refund.txt}\n"
        "    - {type: is-json, value: file://answers/order.json}\n"
        "    - {type: contains-any, value: file://answers/words.yaml}\n"
        "    - {type: contains-all, value: [file://answers/refund.txt, 안내]}\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "t/a.yaml")
    assert case.error is None
    assert [a.value for a in case.asserts] == ["환불 절차", {"required": ["id"]}, ["환불", "교환"], ["환불 절차", "안내"]]


def test_a_file_value_outside_the_project_or_missing_is_one_line_naming_the_row(tmp_path):
    project = tmp_path / "p"
    (project / ".git").mkdir(parents=True)  # the project is its git work tree
    (tmp_path / "secret.txt").write_text("x", encoding="utf-8")
    (project / "a.csv").write_text("input,__expected\n"
                                   "a,contains:file://../secret.txt\n"
                                   "b,contains:file://nowhere.txt\n"
                                   "c,contains:file://check.py\n", encoding="utf-8")
    (project / "check.py").write_text("x = 1\n", encoding="utf-8")
    outside, missing, code = _loader(project).load(project / "a.csv")
    assert outside.error.startswith("a.csv:2: __expected: file://../secret.txt: ")
    assert "outside the project" in outside.error
    assert missing.error == ("a.csv:3: __expected: file://nowhere.txt: no such file (nowhere.txt); the path is "
                             "relative to the file that names it (or to the config's folder, as promptfoo reads it)")
    assert "not computed by code" in code.error
    assert "python: file://check.py:fn" in code.error


def test_a_python_file_check_runs_the_named_function_or_get_assert(tmp_path):
    from pytest_promstack.model.types import Response
    from pytest_promstack.score.case import score_reply

    (tmp_path / "checks").mkdir()
    (tmp_path / "checks/grade.py").write_text(
        "def get_assert(output, context):\n    return {'pass': '환불' in output, 'score': 0.9, 'reason': 'r'}\n"
        "class Check:\n    @staticmethod\n    def run(output, context):\n        return len(output) / 10\n",
        encoding="utf-8")
    (tmp_path / "a.csv").write_text("input,__expected,__expected2\n"
                                    "q,file://checks/grade.py,file://checks/grade.py:Check.run\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "a.csv")
    assert case.error is None
    path = (tmp_path / "checks/grade.py").resolve()
    assert [a.value for a in case.asserts] == [f"file://{path}:get_assert", f"file://{path}:Check.run"]
    passed, _, scores = score_reply(builtin_registry(), case.asserts, Response(text="환불 가능합니다"), {}, {}, None,
                                        "each")
    assert [s.score for s in scores] == [0.9, 0.8]  # 8 characters / 10: a score passes above 0 without a threshold
    assert passed


def test_javascript_is_refused_with_the_python_way_to_write_it(tmp_path):
    (tmp_path / "a.csv").write_text("input,__expected\nq,javascript:output.includes('x')\nq,file://check.js\n",
                                    encoding="utf-8")
    js, js_file = _loader(tmp_path).load(tmp_path / "a.csv")
    for case in (js, js_file):
        assert "javascript assertions are not run here" in case.error
        assert "python: 'refund' in output.lower()" in case.error


# ---- values with {{ var }} -----------------------------------------------------------------


def test_template_values_render_with_the_case_variables_when_planned(tmp_path):
    from tests.unit.test_planner import planner_for

    planner = planner_for(tmp_path, 'input,expected,__expected,__expected2\n'
                                    '환불,환불 안내,"contains-any:{{ expected }},없음",levenshtein(2):{{ expected }}\n'
                                    '배송,x,contains:{{ missing }},\n')
    ok, broken = planner.plan_file(tmp_path / "t/a.csv")
    assert ok.error is None
    assert [a.value for a in ok.asserts] == [["환불 안내", "없음"], "환불 안내", "<=200"]
    assert ok.case.asserts[0].value == ["{{ expected }}", "없음"]  # the case as read is kept
    assert broken.requests == ()  # no model call for a case that cannot be scored
    assert "template variable 'missing' is undefined in t/a.csv:3 __expected" in broken.error


# ---- promptfoo's test shape ---------------------------------------------------------------


def test_every_promptfoo_test_key_loads_and_none_is_dropped(tmp_path):
    (tmp_path / "doc.txt").write_text("환불 규정 전문", encoding="utf-8")
    (tmp_path / "t.yaml").write_text("""
- description: 환불
  vars: {question: 환불, doc: file://doc.txt}
  options: {prefix: '앞 ', suffix: ' 뒤', transform: output.upper()}
  metadata: {topic: refund}
  threshold: 0.5
  provider: openai:chat:gpt-4o-mini
  providerOutput: {answer: 환불}
  assert:
    - {type: contains, value: 환불, metric: accuracy, transform: output.strip(), weight: 2}
- assert: [{type: equals, value: x}]
""", encoding="utf-8")
    full, bare = _loader(tmp_path).load(tmp_path / "t.yaml")
    assert full.error is None
    assert full.vars == {"question": "환불", "doc": "환불 규정 전문"}
    assert (full.prefix, full.suffix, full.description, full.threshold) == ("앞 ", " 뒤", "환불", 0.5)  # as written
    assert full.metadata == {"topic": "refund"}
    assert full.provider == "openai:chat:gpt-4o-mini"
    assert full.provider_output == '{"answer":"환불"}'  # as promptfoo's JSON.stringify writes it
    (check,) = full.asserts
    assert (check.metric, check.weight, check.transform) == ("accuracy", 2.0, ("output.strip()",))
    assert full.transform == "output.upper()"  # the planner puts it before each assertion's own
    assert bare.error is None  # a test without vars:
    assert [a.type for a in bare.asserts] == ["equals"]


@pytest.mark.parametrize(("record", "error"), [
    ("{vars: {a: 1}, asert: []}", "t.yaml:1: unknown key 'asert' in a promptfoo test (did you mean 'assert'?)"),
    ("{vars: {a: 1}, assertScoringFunction: file://s.js:combine}", "t.yaml:1: assertScoringFunction: a JavaScript "
     "function is not run here; write it in python: file://scoring.py:combine"),
    ("{vars: {a: 1}, options: {rubricPrompt: x}}", "t.yaml:1: options.rubricPrompt: not supported here"),
    ("{vars: [1], assert: []}", "t.yaml:1: vars: must be a mapping of names to values, got list"),
    ("{vars: {}, assert: [{type: llm-rubric, value: x, provider: openai:gpt-4o}]}",
     "t.yaml:1: assert[0]: assertion key 'provider' is not supported here; the judge is set for the project"),
    ("{vars: {}, assert: [{type: javascript, value: 'output.length < 9'}]}",
     "t.yaml:1: assert[0]: javascript assertions are not run here ('output.length < 9'); write the check as python:"),
])
def test_a_promptfoo_key_we_do_not_run_is_one_line_naming_file_test_and_key(tmp_path, record, error):
    (tmp_path / "t.yaml").write_text(f"- {record}\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "t.yaml")
    assert case.error.startswith(error), case.error


def test_a_csv_metric_column_names_the_metric_of_every_assertion_of_its_row(tmp_path):
    (tmp_path / "a.csv").write_text("input,__expected1,__expected2,__metric\n환불,contains:환불,is-json,정확도\n",
                                    encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "a.csv")
    assert case.error is None
    assert case.vars == {"input": "환불"}
    assert [a.metric for a in case.asserts] == ["정확도", "정확도"]


def test_transforms_apply_in_order_before_the_check_and_a_failing_one_fails_its_assertion():
    from pytest_promstack.model.types import AssertionSpec, Response
    from pytest_promstack.score.case import score_reply

    registry = builtin_registry()
    upper = AssertionSpec("equals", "REFUND", transform=("json.loads(output)['answer']", "output.upper()"))
    broken = AssertionSpec("contains", "x", transform=("output['missing']",))
    _, _, (ok, bad) = score_reply(registry, [upper, broken], Response(text='{"answer": "refund"}'), {}, {}, None,
                                  "each")
    assert ok.passed
    assert not bad.passed
    assert bad.reason.startswith("contains: transform \"output['missing']\": TypeError")


def test_promptfoo_provider_ids_map_to_litellm_names():
    from pytest_promstack.config.promptfoo import ProviderProblem, litellm_model

    assert litellm_model("openai:gpt-4o-mini") == "openai/gpt-4o-mini"
    assert litellm_model("openai:chat:gpt-4o") == "openai/gpt-4o"
    assert litellm_model("anthropic:messages:claude-3-5-haiku-latest") == "anthropic/claude-3-5-haiku-latest"
    assert litellm_model("ollama:chat:llama3") == "ollama_chat/llama3"
    assert litellm_model("vertex:gemini-1.5-pro") == "vertex_ai/gemini-1.5-pro"
    assert litellm_model("openai/gpt-4o") == "openai/gpt-4o"
    with pytest.raises(ProviderProblem, match=r"'exec:\./run\.sh' is not a model litellm can call \(a command"):
        litellm_model("exec:./run.sh")
    for other in ("echo", "http", "https://api.example.com/chat", "browser", "sequence"):
        with pytest.raises(ProviderProblem, match="is not a model litellm can call"):
            litellm_model(other)
    with pytest.raises(ProviderProblem, match=r"'foo:bar' has no litellm equivalent here"):
        litellm_model("foo:bar")


def test_a_list_of_texts_as_a_variable_is_one_case_per_text_as_in_promptfoo(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.txt").write_text("환불 규정", encoding="utf-8")
    (tmp_path / "docs/b.txt").write_text("배송 규정", encoding="utf-8")
    (tmp_path / "t.yaml").write_text("""
- description: 번역
  vars: {language: [French, German], tone: [formal, casual], n: [1, 2], doc: file://docs/*.txt}
  assert: [{type: contains, value: x}]
- vars: {items: []}
""", encoding="utf-8")
    cases = _loader(tmp_path).load(tmp_path / "t.yaml")
    assert len(cases) == 9  # 2 languages x 2 tones x 2 files; a list of numbers is one value; then row 2
    first = cases[0]
    assert first.vars == {"language": "French", "tone": "formal", "n": [1, 2], "doc": "환불 규정"}
    assert first.description == "번역 (language=French, tone=formal, doc=a.txt)"
    assert {c.row for c in cases[:8]} == {1}
    assert len({c.description for c in cases[:8]}) == 8
    assert cases[8].vars == {"items": []}


def test_a_test_whose_lists_make_too_many_cases_is_one_line(tmp_path):
    values = ", ".join(f"v{i}" for i in range(40))
    (tmp_path / "t.yaml").write_text(f"- vars: {{a: [{values}], b: [{values}]}}\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "t.yaml")
    assert case.error == ("t.yaml:1: vars: the lists make more than 1,000 combinations of variables; split the test")


def test_a_promptfoo_type_we_do_not_run_says_what_to_write_instead(tmp_path):
    (tmp_path / "a.csv").write_text("input,__expected\nq,webhook:https://example.com/check\n"
                                    "q,trajectory:goal-success:the flight is booked\nq,similar(0.8):환불 안내\n", encoding="utf-8")
    webhook, trajectory, similar = _loader(tmp_path).load(tmp_path / "a.csv")
    spec = similar.asserts[0]
    assert similar.error is None
    assert (spec.type, spec.value, spec.threshold) == ("similar", "환불 안내", 0.8)
    assert webhook.error == ("a.csv:2: __expected: webhook: a webhook check sends the output to a URL, and a test "
                             "file never makes the run call a URL; write the check as python: (or file://check.py:fn)")
    assert trajectory.error == ("a.csv:3: __expected: trajectory:goal-success: a judge's verdict on whether the agent "
                                "reached its goal; write it as goal-achieved (judged over a conversation's transcript, "
                                "its tool calls included) or as an llm-rubric over the answer (llm-rubric: the flight "
                                "to 대구 was booked)")


@pytest.mark.parametrize("key", ["threshold: high", "weight: heavy", "threshold: [1]"])
def test_an_assertion_number_that_is_not_one_is_the_rows_error_and_the_file_still_loads(tmp_path, key):
    (tmp_path / "t.yaml").write_text(f"- vars: {{a: 1}}\n  assert: [{{type: contains, value: x, {key}}}]\n"
                                     "- vars: {a: 2}\n  assert: [{type: contains, value: x}]\n", encoding="utf-8")
    bad, good = _loader(tmp_path).load(tmp_path / "t.yaml")
    name = key.split(":")[0]
    assert bad.error.startswith(f"t.yaml:1: assert[0]: {name}: ")
    assert "is not a number; write e.g." in bad.error
    assert good.error is None


def test_prefix_and_suffix_keep_their_spaces_and_render_variables():
    prompt = from_mapping({"id": "p", "template": "Q: {{ q }}"}, "p.yaml", "p")
    assert prompt.render({"q": "환불", "who": "고객"}, "PRE {{ who }} ", " POST") == [
        {"role": "user", "content": "PRE 고객 Q: 환불 POST"}]


def test_file_variables_are_text_as_promptfoo_puts_them_in_prompts(tmp_path):
    (tmp_path / "doc.txt").write_text("환불 규정\n\n", encoding="utf-8")
    (tmp_path / "style.json").write_text('{"tone": "친절"}', encoding="utf-8")
    (tmp_path / "a.csv").write_text("input,doc,style\nq,file://doc.txt,file://style.json\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "a.csv")
    assert case.vars == {"input": "q", "doc": "환불 규정", "style": '{"tone":"친절"}'}  # | load reads the JSON


def test_a_suites_file_variable_is_read_relative_to_the_config(tmp_path):
    from pytest_promstack.config.settings import load_settings
    from pytest_promstack.plan.planner import Planner
    from tests.unit.test_planner import CONFIG, planner_for

    planner_for(tmp_path, "input,__expected\n환불,contains:환불\n")  # writes the project's files
    (tmp_path / "sys.txt").write_text("시스템 안내", encoding="utf-8")
    config = CONFIG.replace('assert: ["length:<=200"]}', 'assert: ["length:<=200"], vars: {sys: file://sys.txt}}')
    (tmp_path / "promstack.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "prompts/p.yaml").write_text("id: p\ntemplate: '{{ sys }}: {{ input }}'\n", encoding="utf-8")
    registry = builtin_registry()
    planner = Planner(load_settings(tmp_path, {}), registry.assertions.__contains__, registry.suggest)
    (plan,) = planner.plan_file(tmp_path / "t/a.csv")
    assert plan.requests[0].messages[-1]["content"] == "시스템 안내: 환불"


@pytest.mark.parametrize(("transform", "why"), [
    ("JSON.parse(output).answer", "looks like JavaScript"),
    ("output.toUpperCase()", "looks like JavaScript"),
    ("output[", "is not python"),
    ("file://t.js", "is a JavaScript file"),
])
def test_a_javascript_transform_is_refused_when_read_with_the_python_way(tmp_path, transform, why):
    (tmp_path / "t.yaml").write_text(f"- vars: {{a: 1}}\n  options: {{transform: '{transform}'}}\n"
                                     "  assert: [{type: contains, value: x}]\n", encoding="utf-8")
    (case,) = _loader(tmp_path).load(tmp_path / "t.yaml")
    assert why in case.error
    assert "json.loads(output)['answer'] for JSON.parse(output).answer" in case.error


def test_a_transform_of_several_lines_may_return():
    from pytest_promstack.plan.values import transform_code

    code = "text = output.strip()\nreturn text.upper()"
    assert transform_code(code, Path("."), Path(".")) == code


def test_prose_that_starts_like_a_type_is_told_how_to_compare_with_it(tmp_path):
    (tmp_path / "a.csv").write_text("input,__expected\nq,note: 환불은 7일 안에\nq,contians:x\n", encoding="utf-8")
    prose, typo = _loader(tmp_path).load(tmp_path / "a.csv")
    assert prose.error.endswith("; to compare with this text itself, write equals:note: 환불은 7일 안에")
    assert typo.error == "a.csv:3: __expected: unknown assertion 'contians' (did you mean 'contains'?)"


def test_a_registry_snapshot_of_a_prompt_holds_the_schema_its_response_format_reads(tmp_path):
    import json

    import yaml

    from pytest_promstack.plan.prompts import frozen_bytes

    schema = {"type": "object", "required": ["주문번호"], "properties": {"주문번호": {"type": "string"}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    prompt = tmp_path / "order.yaml"
    prompt.write_text("id: order\ntemplate: '주문: {{ input }}'\nresponse_format:\n  type: json_schema\n"
                      "  json_schema: {name: order, schema: file://schema.json}\n", encoding="utf-8")
    frozen = yaml.safe_load(frozen_bytes(prompt, tmp_path).decode("utf-8"))
    assert frozen["response_format"]["json_schema"]["schema"] == schema  # the version keeps what it asked for
    assert load_prompt(prompt, tmp_path).version == from_mapping(frozen, "order.yaml", "order").version
