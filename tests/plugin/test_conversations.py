"""Multi-turn cases: turns: in YAML, __conversation rows in CSV, promptfoo's _conversation,
conversationId and storeOutputAs; each turn's reply joins the history, each turn has its own
assertions and the case's judge the whole transcript; one item per conversation, a failing turn
named; a rerun replays every turn from the cache."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.fake_openai import Reply
from tests.support.project import config

PROMPT = """id: support
messages:
  - role: system
    content: 너는 쇼핑몰 상담원이다.
  - role: user
    content: '{{ input }}'
"""

TURNS = """
- description: 환불 상담
  turns:
    - input: 환불하고 싶어요
      assert: [icontains:주문번호]
    - input: 주문번호는 A-1001 이에요
      assert: [icontains:환불 규정]
    - input: '{{ turns[0].output }} 라고 하셨죠? 상담원 연결해 주세요'
      assert: [icontains:연결]
  assert:
    - type: python
      value: sum('주문번호를 알려' in t['output'] for t in vars['turns']) == 1
"""


def respond(body):
    """A scripted support agent: it reads the whole history, so a reply depends on the turns before."""
    msgs = body["messages"]
    last = msgs[-1]["content"]
    users = [m["content"] for m in msgs if m["role"] == "user"]
    if "연결" in last:
        return Reply(text=f"상담원에게 연결합니다 (지금까지 {len(users)}번 말씀하셨어요)")
    if "A-1001" in last:
        return Reply(text="확인했습니다. 환불 규정: 7일 이내 전액 환불입니다")
    if "환불" in last:
        return Reply(text="주문번호를 알려 주세요")
    return Reply(text="무엇을 도와드릴까요")


def write(project, cases, name="support.yaml", transport="auto", prompt=PROMPT):
    doc = yaml.safe_load(config(project.server.url, transport=transport,
                                suites={"support": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*"]}}))
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True),
                   "prompts/support.yaml": prompt, f"prompt_tests/{name}": cases})


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_conversation_sends_each_turn_with_the_history_and_replays_from_the_cache(project, transport):
    project.server.respond = respond
    write(project, TURNS, transport=transport)
    result = project.run("-v", "-p", "no:randomly", "--promstack-json=out.json", "--promstack-report=report.html")
    result.assert_outcomes(passed=1)
    assert project.server.count == 3
    result.stdout.fnmatch_lines(["promstack: steps mine: 1 case, 3 model calls, 0 tool calls; 1 conversation of 3 "
                                 "turns*"])
    page = (project.path / "report.html").read_text("utf-8")
    assert "상담원에게 연결합니다" in page
    third = project.server.requests[2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[2]["content"] == "주문번호를 알려 주세요"
    assert third[-1]["content"] == "주문번호를 알려 주세요 라고 하셨죠? 상담원 연결해 주세요"  # turns[0].output
    doc = json.loads((project.path / "out.json").read_text("utf-8"))
    case = doc["cases"][0]
    assert [t["index"] for t in case["turns"]] == [1, 2, 3]
    assert [t["passed"] for t in case["turns"]] == [True, True, True]
    assert case["turns"][2]["output"].startswith("상담원에게 연결합니다 (지금까지 3번")
    assert case["model_calls"] == 3
    assert case["repeats"] == 1
    assert case["assertions"][0]["type"] == "python"
    assert case["assertions"][0]["passed"]
    assert [m["role"] for m in case["messages"]][-1] == "assistant"

    project.server.reset()
    project.run("-p", "no:randomly").assert_outcomes(passed=1)
    assert project.server.count == 0  # every turn from the cache


def test_a_failing_turn_is_named_and_the_conversation_check_reads_the_transcript(project):
    project.server.respond = respond
    cases = TURNS.replace("icontains:환불 규정", "icontains:교환 규정").replace(
        "sum('주문번호를 알려' in t['output'] for t in vars['turns']) == 1", "output.count('주문번호를 알려') == 1")
    write(project, cases)
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*prompt_tests/support.yaml:1 [[]mine[]] turn 2: 1 of 1 assertions failed*",
                                 "*✗ icontains*교환 규정*"])
    project.run("-p", "no:randomly", "--promstack-json=out.json")
    case = json.loads((project.path / "out.json").read_text("utf-8"))["cases"][0]
    assert [t["passed"] for t in case["turns"]] == [True, False, True]
    # the transcript holds the user's words too: the user quoted the question once, so it is there twice
    assert case["assertions"][0]["passed"] is False


CSV = """__conversation,input,__expected
refund-1,환불하고 싶어요,icontains:주문번호
other,안녕하세요,icontains:도와
refund-1,주문번호는 A-1001 이에요,icontains:환불 규정
refund-1,상담원 연결,icontains:3번
"""


def test_csv_rows_sharing_a_conversation_id_run_in_order_as_one_item(project):
    project.server.respond = respond
    write(project, CSV, "support.csv")
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*refund-1*PASSED*", "*other*PASSED*"])
    assert project.server.count == 4


def test_a_failing_csv_turn_names_its_row(project):
    project.server.respond = respond
    write(project, CSV.replace("icontains:3번", "icontains:5번"), "support.csv")
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*turn 3 (prompt_tests/support.csv:5): 1 of 1 assertions failed*"])


PROMPTFOO_PROMPT = """id: thread
messages:
  - role: system
    content: 'history: {% for c in _conversation %}[{{ c.input }} => {{ c.output }}]{% endfor %}'
  - role: user
    content: '{{ question }}'
"""

PROMPTFOO_TESTS = """
- vars: {question: 환불하고 싶어요}
  options: {storeOutputAs: first}
  assert: [icontains:주문번호]
- vars: {question: '주문번호는 A-1001 이에요 ({{ first }})'}
  assert: [icontains:환불 규정]
- vars: {question: 안녕하세요}
  metadata: {conversationId: other}
  assert: [icontains:도와]
"""


def test_promptfoo_conversation_and_store_output_as_thread_the_tests(project):
    project.server.respond = respond
    write(project, PROMPTFOO_TESTS, prompt=PROMPTFOO_PROMPT)
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    second = next(r for r in project.server.requests if "A-1001" in r["messages"][-1]["content"])
    assert second["messages"][0]["content"] == "history: [환불하고 싶어요 => 주문번호를 알려 주세요]"
    assert second["messages"][-1]["content"] == "주문번호는 A-1001 이에요 (주문번호를 알려 주세요)"
    assert [m["role"] for m in second["messages"]] == ["system", "user"]  # the prompt wrote the history


@pytest.mark.parametrize(("cases", "line"), [
    ("- turns: 안녕", "*support.yaml:1: turns: list the user's turns*"),
    ("- turns: [{input: hi, assert: icontains:x}]", "*support.yaml:1: turns[[]0[]].assert: must be a list*"),
    ("- turns: [{input: hi, assert: [nosuch:x]}]", "*support.yaml:1: turns[[]0[]].assert[[]0[]]: unknown assertion*"),
    ("- turns: [{input: hi, storeOutputAs: 'a b'}]", "*turns[[]0[]].storeOutputAs: name a variable*"),
])
def test_a_bad_turn_is_one_row_line_before_any_call(project, cases, line):
    write(project, cases)
    result = project.run("-p", "no:randomly")
    assert result.ret != 0
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str()
    assert project.server.count == 0


SIMULATED = """
- description: 시뮬레이션 환불
  scenario:
    instructions: 주문 A-1001 을 환불받고 싶다. 상담원이 물으면 주문번호를 알려준다.
    persona: 바쁜 고객
    goal: 환불 규정을 안내받는다
    model: simulator
  max_turns: 5
  assert:
    - goal-achieved
    - knowledge-retention
    - type: python
      value: len(vars['turns']) == 2
"""


def simulated(body):
    """The app (respond) or, for the model that plays the user, a script: ask for a refund, give
    the order number, stop once the policy is stated; the judge gives 5s, unless the transcript
    never states the policy."""
    if body["model"] == "judge":
        ok = "환불 규정" in body["messages"][-1]["content"]
        return Reply(text=json.dumps({"scores": [{"criterion": "c", "score": 5 if ok else 1, "reason": "r"}]}))
    if body["model"] == "simulator":
        assert body["messages"][0]["content"].startswith("You are role-playing a user")
        assert "바쁜 고객" in body["messages"][0]["content"]
        replies = [m["content"] for m in body["messages"] if m["role"] == "user"][1:]
        if not replies:
            return Reply(text="환불하고 싶어요")
        if "환불 규정" in replies[-1]:
            return Reply(text="###STOP###")
        return Reply(text="주문번호는 A-1001 이에요")
    return respond(body)


def simulated_config(project, cases):
    doc = yaml.safe_load(config(project.server.url, models=["mine", "simulator", "judge"],
                                suites={"support": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*"],
                                                    "models": ["mine"]}}))
    doc["judges"] = {"quality": {"model": "judge", "criteria": ["c"], "scale": [1, 5], "pass_score": 4}}
    doc["default_judge"] = "quality"
    project.write({"promstack.yaml": yaml.safe_dump(doc, allow_unicode=True), "prompts/support.yaml": PROMPT,
                   "prompt_tests/sim.yaml": cases})


def test_a_simulated_user_plays_the_scenario_until_it_stops_and_the_conversation_judges_read_the_transcript(project):
    project.server.respond = simulated
    simulated_config(project, SIMULATED)
    result = project.run("-v", "-p", "no:randomly", "--promstack-json=out.json")
    result.assert_outcomes(passed=1)
    models = [r["model"] for r in project.server.requests]
    assert models.count("mine") == 2
    assert models.count("simulator") == 3
    assert models.count("judge") == 2
    judged = next(r for r in project.server.requests if r["model"] == "judge")["messages"][-1]["content"]
    assert "User: 환불하고 싶어요" in judged
    assert "Assistant: 확인했습니다. 환불 규정" in judged
    case = json.loads((project.path / "out.json").read_text("utf-8"))["cases"][0]
    assert [t["input"] for t in case["turns"]] == ["환불하고 싶어요", "주문번호는 A-1001 이에요"]
    assert case["model_calls"] == 2
    assert case["judge_calls"] == 2 + 3

    project.server.reset()
    project.run("-p", "no:randomly").assert_outcomes(passed=1)
    assert project.server.count == 0


def test_a_simulated_user_without_a_model_is_one_line(project):
    write(project, "- scenario: 환불받고 싶다\n  assert: [icontains:x]\n")  # no judge, no model named
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*support.yaml:1 [[]mine[]]: scenario: name the model that plays the user*"])
    assert project.server.count == 0


def test_under_xdist_conversations_and_rows_of_one_run_on_their_worker_with_the_same_results(project):
    project.server.respond = respond
    write(project, CSV, "support.csv")
    project.write({"prompt_tests/turns.yaml": TURNS.replace("환불하고 싶어요", "환불을 원해요")})  # no request shared
    result = project.run("-p", "no:randomly", "-n", "2", "--promstack-json=out.json")
    result.assert_outcomes(passed=3)
    assert project.server.count == 4 + 3
    doc = json.loads((project.path / "out.json").read_text("utf-8"))
    turns = {c["case_id"].split("::")[1]: [t["passed"] for t in c["turns"]] for c in doc["cases"]}
    assert turns == {"refund-1[mine]": [True, True, True], "other[mine]": [True], "환불 상담[mine]": [True, True, True]}
    project.server.reset()
    project.run("-p", "no:randomly", "-n", "2").assert_outcomes(passed=3)
    assert project.server.count == 0


def test_a_bad_row_of_a_conversation_fails_that_conversation_with_its_line(project):
    project.server.respond = respond
    write(project, CSV.replace("refund-1,주문번호는 A-1001 이에요,icontains:환불 규정",
                               "refund-1,주문번호는 A-1001 이에요,nosuch:x"), "support.csv")
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*refund-1*FAILED*", "*other*PASSED*", "*support.csv:4: __expected: unknown assertion*"])
    assert project.server.count == 1  # only "other" ran


def test_a_conversation_named_by_description_keeps_its_name_and_turns_beside_scenario_are_refused(project):
    project.server.respond = respond
    write(project, "- description: 이름 있는 대화\n  turns: [{input: 환불하고 싶어요, assert: [icontains:주문번호]}]\n"
                   "- description: 둘 다\n  turns: [안녕]\n  scenario: 환불받고 싶다\n")
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*이름 있는 대화*PASSED*", "*support.yaml:2: turns: and scenario: both give the user's turns*"])


def test_in_replay_mode_a_turn_missing_from_the_cassette_fails_the_conversation_saying_so(project):
    import shutil

    project.server.respond = respond
    write(project, TURNS)
    project.run("-p", "no:randomly", "--promstack-record").assert_outcomes(passed=1)
    shutil.rmtree(project.path / ".promstack/cache")
    project.write({"prompt_tests/support.yaml": TURNS.replace("상담원 연결해 주세요", "지금 상담원 연결해 주세요")})
    result = project.run("-p", "no:randomly", "--promstack-cache", "replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*support.yaml:1 [[]mine[]]: cache miss in replay mode*"])


def test_a_turn_without_the_prompts_variable_is_named_in_its_line(project):
    write(project, "- turns: [{question: 안녕}]\n  assert: [icontains:x]\n")
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*support.yaml:1 [[]mine[]]: turn 1: template variable 'input' is undefined*"])
