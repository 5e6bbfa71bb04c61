"""promptfoo's trajectory:* assertions on our own record of an answer's steps (the tool calls in
order, and the model calls), scored through score_reply as a case is; their values are checked
when the file is read; not- means what promptfoo's does; reasons end with the numbered tools.
Also: contains-json and json-schema fall back to the request's response_format schema."""

from __future__ import annotations

import json

import pytest

from pytest_promstack.model.specs import AssertionSyntaxError, from_structured, parse_shorthand, value_problem
from pytest_promstack.model.types import AssertionSpec, Response
from pytest_promstack.score.case import score_reply
from pytest_promstack.score.registry import builtin_registry

REGISTRY = builtin_registry()

# promptfoo's test trajectory (test/assertions/trajectory.test.ts), as our steps: an agent that
# looked up an order, searched the inventory in its second model call, then wrote the reply
AGENT = (
    {"step": 1, "name": "search_orders", "arguments": {"order_id": "123", "include_history": False},
     "result": {"status": "shipped"}},
    {"step": 2, "name": "search_inventory", "arguments": {"query": "quantum computing", "limit": 3}, "result": []},
    {"step": 3, "name": "compose_reply", "arguments": {"tone": "friendly", "citations": ["doc_1", "doc_2"]},
     "result": None},
)


def score(kind, value, trajectory=AGENT, steps=3, response=None, params=None):
    """(passed, score, reason) of one assertion, negated by a not- prefix, as a case scores it."""
    spec = AssertionSpec(kind, value)
    problem = value_problem(spec)
    assert problem is None, problem
    passed, value, (s,) = score_reply(REGISTRY, [spec], response or Response(text="주문이 발송되었습니다"), {}, {},
                                      None, "each", params=params, trajectory=trajectory, steps=steps)
    return passed, value, s.reason


def test_tool_used_passes_when_every_named_tool_was_called_and_names_the_trajectory():
    assert score("trajectory:tool-used", "search_orders") == (
        True, 1.0, "trajectory:tool-used: used search_orders; "
                   "tools: 1. search_orders, 2. search_inventory, 3. compose_reply in 3 model calls")
    passed, value, reason = score("trajectory:tool-used", ["search_orders", "cancel_order"])
    assert (passed, value) == (False, 0.0)
    assert reason.startswith("trajectory:tool-used: did not use cancel_order; tools: 1. search_orders")


def test_tool_used_matches_globs_in_any_case_and_counts_calls_against_min_and_max():
    assert score("trajectory:tool-used", "SEARCH_*")[0]
    assert score("trajectory:tool-used", {"pattern": "search*", "min": 2, "max": 2})[:2] == (True, 1.0)
    passed, _, reason = score("trajectory:tool-used", {"name": "search_orders", "min": 2})
    assert not passed
    assert reason.startswith("trajectory:tool-used: 1 calls of search_orders, expected at least 2; tools: 1.")


def test_not_tool_used_with_a_list_fails_when_any_of_them_was_used_as_in_promptfoo():
    passed, value, reason = score("not-trajectory:tool-used", ["missing_tool", "compose_reply"])
    assert (passed, value) == (False, 0.0)
    assert reason.startswith("not-trajectory:tool-used: used compose_reply; tools:")
    assert score("not-trajectory:tool-used", ["missing_tool", "delete_order"])[:2] == (True, 1.0)
    assert score("not-trajectory:tool-used", {"name": "missing_tool", "min": 1})[0]
    assert not score("not-trajectory:tool-used", {"pattern": "search*", "max": 3})[0]


def test_tool_sequence_in_order_allows_calls_between_and_names_the_first_step_not_found():
    assert score("trajectory:tool-sequence", ["search_orders", "compose_reply"])[:2] == (True, 1.0)
    assert score("trajectory:tool-sequence", {"steps": [{"name": "search_*"}, "compose_reply"]})[0]
    passed, _, reason = score("trajectory:tool-sequence", ["compose_reply", "search_orders"])
    assert not passed
    assert reason == ("trajectory:tool-sequence: expected compose_reply, search_orders in order: no search_orders "
                      "after compose_reply; tools: 1. search_orders, 2. search_inventory, 3. compose_reply in 3 model "
                      "calls")


def test_tool_sequence_exact_needs_exactly_those_calls_and_any_order_each_of_them_once():
    exact = {"mode": "exact", "steps": ["search_orders", "compose_reply"]}
    assert not score("trajectory:tool-sequence", exact)[0]
    assert score("trajectory:tool-sequence", exact, trajectory=(AGENT[0], AGENT[2]))[0]
    anyway = {"mode": "any_order", "steps": ["compose_reply", "search_orders"]}
    assert score("trajectory:tool-sequence", anyway)[0]
    # each call serves one step: search_* takes search_inventory so that search_orders has its own
    assert score("trajectory:tool-sequence", {"mode": "any_order", "steps": ["search_*", "search_orders"]})[0]
    passed, _, reason = score("trajectory:tool-sequence", {"mode": "any_order", "steps": ["search_*"] * 3})
    assert not passed
    assert reason.startswith("trajectory:tool-sequence: no call left for search_*; tools:")


def test_not_tool_sequence_passes_when_the_forbidden_order_did_not_happen():
    assert score("not-trajectory:tool-sequence", ["compose_reply", "search_orders"])[:2] == (True, 1.0)
    assert not score("not-trajectory:tool-sequence", ["search_orders", "compose_reply"])[0]


def test_tool_args_match_partial_holds_a_subset_and_exact_the_whole_payload():
    assert score("trajectory:tool-args-match", {"name": "search_orders", "args": {"order_id": "123"}})[0]
    assert score("trajectory:tool-args-match", {"pattern": "compose_*", "mode": "exact",
                                                "arguments": {"tone": "friendly", "citations": ["doc_1", "doc_2"]}})[0]
    passed, _, reason = score("trajectory:tool-args-match",
                              {"name": "search_orders", "mode": "exact", "args": {"order_id": "123"}})
    assert not passed
    assert reason.startswith('trajectory:tool-args-match: search_orders (exact): args.include_history is false, not '
                             'expected (exact); called search_orders(order_id="123", include_history=false); tools: 1.')


def test_tool_args_match_never_takes_a_boolean_for_a_number_and_names_a_missing_tool():
    passed, _, reason = score("trajectory:tool-args-match", {"name": "search_inventory", "args": {"limit": True}})
    assert not passed
    assert "args.limit is 3, expected true" in reason
    passed, _, reason = score("trajectory:tool-args-match", {"name": "cancel_order", "args": {}})
    assert (passed, reason.split("; ")[0]) == (False, "trajectory:tool-args-match: no call of cancel_order")
    assert score("not-trajectory:tool-args-match", {"name": "search_orders", "args": {"order_id": "999"}})[0]


def test_tool_args_match_leaves_out_ignored_keys_and_arguments_equal_to_their_defaults():
    call = ({"step": 1, "name": "orders", "arguments": {"status": "Q", "page": 1, "request_id": "a1"}, "result": None},)
    value = {"name": "orders", "mode": "exact", "args": {"status": "Q"}}
    assert not score("trajectory:tool-args-match", value, trajectory=call, steps=1)[0]
    assert score("trajectory:tool-args-match", {**value, "defaults": {"page": 1}, "ignore": "*_id"},
                 trajectory=call, steps=1)[0]
    assert not score("trajectory:tool-args-match", {**value, "defaults": {"page": 2}, "ignore": ["request_id"]},
                     trajectory=call, steps=1)[0]


def test_step_count_counts_tool_calls_by_default_and_model_calls_with_type_llm():
    assert score("trajectory:step-count", {"type": "tool", "min": 3, "max": 3})[0]
    assert score("trajectory:step-count", {"pattern": "search*", "max": 2})[0]
    passed, _, reason = score("trajectory:step-count", {"type": "llm", "max": 2})
    assert not passed
    assert reason.startswith("trajectory:step-count: 3 model calls, expected at most 2; tools: 1. search_orders")
    assert score("trajectory:step-count", {"type": ["tool", "llm"], "min": 6})[0]
    assert score("not-trajectory:step-count", {"type": "llm", "max": 2})[0]


def test_a_one_shot_answer_is_its_own_tool_calls_from_one_model_call():
    response = Response(tool_calls=tuple(
        {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a, ensure_ascii=False)}}
        for i, (n, a) in enumerate([("get_weather", {"city": "서울"}), ("book_flight", {"to": "대구"})])))
    passed, _, reason = score("trajectory:tool-sequence", ["get_weather", "book_flight"], trajectory=None, steps=1,
                              response=response)
    assert (passed, reason) == (True, "trajectory:tool-sequence: called get_weather, book_flight in order; "
                                      "tools: 1. get_weather, 2. book_flight")
    assert score("trajectory:tool-args-match", {"name": "book_flight", "args": {"to": "대구"}}, trajectory=None,
                 steps=1, response=response)[0]
    assert score("trajectory:tool-used", "get_weather", trajectory=None, steps=1)[2].endswith("tools: none")


def test_a_trajectory_longer_than_ten_calls_is_cut_in_the_reason():
    many = tuple({"step": i, "name": f"t{i}", "arguments": {}, "result": None} for i in range(1, 13))
    reason = score("trajectory:tool-used", "missing", trajectory=many, steps=12)[2]
    assert reason.endswith("9. t9, 10. t10 and 2 more in 12 model calls")


@pytest.mark.parametrize(("kind", "value", "line"), [
    ("trajectory:tool-used", 123, "trajectory:tool-used: write a tool name, a list of names, or {name: TOOL, min: 1, "
                                  "max: 3}, not 123"),
    ("trajectory:tool-used", {"min": 1}, "trajectory:tool-used: name: is missing (a tool name, or a glob such as "
                                         "search_*);"),
    ("trajectory:tool-used", {"name": "x", "min": 3, "max": 1}, "trajectory:tool-used: min (3) is more than max (1)"),
    ("trajectory:tool-used", {"name": "x", "min": "two"}, "trajectory:tool-used: min: 'two' is not a count;"),
    ("trajectory:tool-sequence", {"steps": []}, "trajectory:tool-sequence: write the tools in order"),
    ("trajectory:tool-sequence", {"steps": ["a"], "mode": "strict"},
     "trajectory:tool-sequence: mode 'strict' is not one of in_order, exact, any_order"),
    ("trajectory:tool-sequence", [{"type": "tool"}, "b"], "trajectory:tool-sequence: steps[0]: name: is missing"),
    ("trajectory:tool-args-match", {"name": "x"}, "trajectory:tool-args-match: give the expected arguments under "
                                                  "args:"),
    ("trajectory:tool-args-match", {"name": "x", "args": {}, "mode": "subset"},
     "trajectory:tool-args-match: mode 'subset' is not partial or exact"),
    ("trajectory:tool-args-match", {"name": "x", "args": {}, "ignore": [1]}, "trajectory:tool-args-match: ignore:"),
    ("trajectory:tool-args-match", {"name": "x", "args": {}, "schema": {}},
     "trajectory:tool-args-match: unknown key 'schema';"),
    ("trajectory:step-count", {"type": "command", "max": 3},
     "trajectory:step-count: type 'command' is a span of promptfoo's traces, which are not recorded here; here "
     "type: tool counts the answer's tool calls and type: llm its model calls"),
    ("trajectory:step-count", {"type": "tool"}, "trajectory:step-count: give min and/or max"),
    ("trajectory:step-count", {"type": "llm", "pattern": "chat*", "max": 1},
     "trajectory:step-count: model calls have no name here"),
])
def test_a_bad_value_is_one_line_naming_the_key_and_the_fix_when_the_file_is_read(kind, value, line):
    assert (value_problem(AssertionSpec(kind, value)) or "").startswith(line)


def test_goal_success_is_refused_pointing_to_llm_rubric_and_the_csv_form_parses_as_promptfoo():
    known = REGISTRY.assertions.__contains__
    with pytest.raises(AssertionSyntaxError, match=r"trajectory:goal-success: .* llm-rubric"):
        from_structured({"type": "trajectory:goal-success", "value": "book the flight"}, known)
    with pytest.raises(AssertionSyntaxError, match="llm-rubric"):
        parse_shorthand("trajectory:goal-success:book the flight", known)
    assert parse_shorthand("trajectory:tool-used:search", known) == AssertionSpec("trajectory:tool-used", "search")
    assert score("trajectory:tool-sequence", "search_orders, compose_reply")[0]  # a CSV cell's comma list


def test_a_value_that_renders_bad_fails_even_negated_with_the_readers_line():
    spec = AssertionSpec("not-trajectory:step-count", {"type": "llm", "max": "{{ n }}"})
    _, _, (s,) = score_reply(REGISTRY, [spec], Response(text="x"), {}, {}, None, "each", trajectory=AGENT, steps=3)
    assert (s.passed, s.reason) == (False, "not-trajectory:step-count: max: '{{ n }}' is not a count; write a whole "
                                           "number, e.g. max: 2")


TICKET = {"response_format": {"type": "json_schema", "json_schema": {"name": "ticket", "schema": {
    "type": "object", "required": ["label"], "properties": {"label": {"enum": ["billing", "환불"]}}}}}}


def test_contains_json_without_a_value_checks_the_schema_the_request_asked_for():
    good = Response(text='분류 결과: {"label": "환불"}')
    bad = Response(text='분류 결과: {"label": "교환"}')
    assert score("contains-json", None, response=good, params=TICKET)[2] == (
        "contains-json: found JSON valid against the request's response_format schema 'ticket'")
    passed, _, reason = score("contains-json", None, response=bad, params=TICKET)
    assert not passed
    assert reason.endswith("(the request's response_format schema 'ticket')")
    assert score("contains-json", None, response=bad)[0]  # no schema asked for: any JSON
    assert not score("contains-json", {"required": ["id"]}, response=good, params=TICKET)[0]  # a value wins


def test_json_schema_without_a_value_checks_the_requested_schema_or_says_it_needs_one():
    assert score("json-schema", None, response=Response(text='{"label": "billing"}'), params=TICKET)[0]
    assert not score("json-schema", None, response=Response(text='{"label": "x"}'), params=TICKET)[0]
    passed, _, reason = score("not-json-schema", None, response=Response(text='{"label": "x"}'))
    assert (passed, reason) == (False, "not-json-schema: needs a schema: give one as its value, or ask the model for "
                                       "one with the prompt's response_format {type: json_schema}")
