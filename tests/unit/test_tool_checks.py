"""tool-called and tool-args-match read the calls in every shape the output takes and name
the first mismatch; their negations mean what they say."""

from __future__ import annotations

import json

from pytest_promstack.model.types import AssertionSpec, Response
from pytest_promstack.score.assertions import Context, evaluate
from pytest_promstack.score.tool_checks import calls, mismatch, tool_args_match, tool_called


def output(*called, text=""):
    resp = Response(text=text, tool_calls=tuple(
        {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a, ensure_ascii=False)}}
        for i, (n, a) in enumerate(called)))
    return resp.output


def test_calls_are_read_from_a_list_from_text_beside_them_and_from_a_legacy_function_call():
    assert calls(output(("f", {"도시": "서울"}))) == [("f", {"도시": "서울"})]
    assert calls(output(("f", {}), text="잠시만요")) == [("f", {})]
    assert calls(Response(function_call={"name": "g", "arguments": '{"a": 1}'}).output) == [("g", {"a": 1})]
    assert calls('[{"name": "h", "arguments": {"x": 2}}]') == [("h", {"x": 2})]  # an app's own JSON, args a mapping
    assert calls("광주는 맑아요") == []
    assert calls('{"answer": 1}') == []


def test_arguments_that_are_not_json_stay_text_and_fail_a_schema_in_one_line():
    out = json.dumps([{"type": "function", "function": {"name": "f", "arguments": "city=서울"}}])
    result = tool_args_match(out, {"name": "f", "schema": {"type": "object"}}, Context())
    assert not result.passed
    assert result.reason == 'f: its arguments are not JSON: "city=서울"; called f("city=서울")'


def test_a_subset_match_checks_nested_mappings_lists_and_never_takes_true_for_one():
    actual = {"city": "서울", "options": {"days": 1, "hourly": True}, "tags": ["a", {"b": 1, "c": 2}]}
    assert mismatch(actual, {"city": "서울", "options": {"days": 1}}, "args") is None
    assert mismatch(actual, {"tags": ["a", {"b": 1}]}, "args") is None
    assert mismatch(actual, {"options": {"hourly": 1}}, "args") == "args.options.hourly is true, expected 1"
    assert mismatch(actual, {"options": {"weeks": 1}}, "args") == "args.options.weeks is missing (expected 1)"
    assert mismatch(actual, {"tags": ["a"]}, "args") == 'args.tags is ["a", {"b": 1, "c": 2}], expected ["a"]'
    assert mismatch(actual, {"city": {"name": "서울"}}, "args") == 'args.city is "서울", expected an object'
    assert mismatch({"n": 1.0}, {"n": 1}, "args") is None


def test_one_matching_call_of_several_passes_and_a_failure_names_the_first_mismatch():
    out = output(("get_weather", {"city": "부산"}), ("get_weather", {"city": "서울"}))
    assert tool_args_match(out, {"name": "get_weather", "args": {"city": "서울"}}, Context()).passed
    failed = tool_args_match(out, {"name": "get_weather", "args": {"city": "대구"}}, Context())
    assert failed.reason == 'get_weather: args.city is "부산", expected "대구"; called get_weather(city="부산")'
    absent = tool_args_match(out, {"name": "book_flight", "args": {}}, Context())
    assert absent.reason == 'did not call book_flight; called get_weather(city="부산"), get_weather(city="서울")'


def test_not_tool_called_passes_only_without_calls_and_per_name_only_without_that_tool():
    def score(kind, value, out):
        return evaluate(AssertionSpec(kind, value), tool_called, out, Context())

    called = output(("get_weather", {"city": "서울"}))
    assert not score("not-tool-called", None, called).passed
    assert score("not-tool-called", None, "맑아요").passed
    assert score("not-tool-called", "book_flight", called).passed
    failed = score("not-tool-called", "get_weather", called)
    assert (failed.passed, failed.reason) == (False, 'not-tool-called: called get_weather(city="서울")')
    partial = score("tool-called", ["get_weather", "book_flight"], called)
    assert (partial.passed, partial.score) == (False, 0.5)
