"""promptfoo's trajectory assertions run on a one-shot reply's own tool calls: a test file's
trajectory:tool-sequence passes on the calls in order and fails naming the numbered calls; a
bad value fails its row in one line before any model call."""

from __future__ import annotations

import json

import yaml

from tests.support.fake_openai import Reply
from tests.support.project import config

TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
         for name in ("search_flights", "book_flight")]

CASES = """
- description: 예약 순서대로
  vars: {city: 대구}
  assert:
    - type: trajectory:tool-sequence
      value: [search_flights, book_flight]
    - type: trajectory:tool-args-match
      value: {name: book_flight, args: {to: "{{ city }}"}}
    - {type: trajectory:step-count, value: {type: llm, max: 1}}
- description: 예약 먼저는 안 됨
  vars: {city: 대구}
  assert:
    - type: trajectory:tool-sequence
      value: {mode: exact, steps: [book_flight, search_flights]}
    - type: not-trajectory:tool-used
      value: [cancel_order, book_flight]
"""


def respond(body):
    """The model searches, then books, in one reply."""
    return Reply(tool_calls=[("search_flights", {"to": "대구"}), ("book_flight", {"to": "대구", "seat": "14C"})])


def write(project, cases):
    doc = yaml.safe_load(config(project.server.url, suites={
        "trips": {"prompt": "prompts/trip.yaml", "tests": ["prompt_tests/*"]}}))
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True),
                   "prompts/tools.json": json.dumps(TOOLS),
                   "prompts/trip.yaml": "id: trip\ntemplate: '{{ city }} 가는 비행기 예약해줘'\ntools: file://tools.json\n",
                   "prompt_tests/trips.yaml": cases})


def test_a_tool_sequence_is_checked_on_a_one_shot_replys_two_tool_calls(project):
    project.server.respond = respond
    write(project, CASES)
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*예약 순서대로*PASSED*", "*예약 먼저는 안 됨*FAILED*",
        "*✗ trajectory:tool-sequence: expected exactly book_flight, search_flights; "
        "tools: 1. search_flights, 2. book_flight*",
        "*✗ not-trajectory:tool-used: used book_flight; tools: 1. search_flights, 2. book_flight*",
    ])
    assert project.server.count == 1  # both rows send the same request: one call, two verdicts


def test_a_bad_trajectory_value_fails_its_row_in_one_line_before_any_call(project):
    project.server.respond = respond
    write(project, "- vars: {city: 대구}\n  assert:\n    - {type: trajectory:step-count, value: {type: span, "
                   "max: 3}}\n")
    result = project.run("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*prompt_tests/trips.yaml*trajectory:step-count: type 'span' is a span of "
                                 "promptfoo's traces, which are not recorded here; here type: tool counts the "
                                 "answer's tool calls and type: llm its model calls*"])
    assert "Traceback" not in result.stdout.str()
    assert project.server.count == 0
