"""Every assertion type, passing and failing, in the CSV shorthand and the structured form."""

from __future__ import annotations

import csv
import io

import pytest

# (assertion, output that passes, output that fails)
CASES = [
    ("equals:환불 절차 안내", "환불 절차 안내", "환불 절차"),
    ("contains:환불", "환불해 드릴게요", "교환해 드릴게요"),
    ("icontains:REFUND", "refund is possible", "no way"),
    ("not-icontains:as an ai", "도와드릴게요", "As an AI, I cannot"),
    ("contains-any:환불,교환", "교환 가능합니다", "불가능합니다"),
    ("contains-all:환불,절차", "환불 절차는 다음과 같습니다", "환불만 가능"),
    ("icontains-any:PARIS,lyon", "paris", "rome"),
    ("icontains-all:a,B", "A b", "a c"),
    ("starts-with:안녕하세요", "안녕하세요, 고객님", "고객님 안녕하세요"),
    (r"regex:^\d+$", "12345", "12a45"),
    ("is-json", '{"ok": true}', "{ok: true}"),
    ('contains-json:{"type": "object", "required": ["환불"]}', '답: {"환불": "가능"} 입니다', '답: {"교환": 1}'),
    ('json-schema:{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}',
     '{"n": 3}', '{"n": "3"}'),
    ("length:2..10", "환불 안내", "환"),
    ("length:<=5", "짧다", "이 문장은 너무 깁니다"),
    ("levenshtein(2):Paris", "Pariss", "London"),
    ("python:len(output) < 5", "짧음", "아주 긴 대답입니다"),
    ("python:'환불' in output and output.endswith('요')", "환불해요", "환불합니다"),
    ("python:checks:polite", "감사합니다", "싫어"),
]


def _rows(cases, pick):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["input", "__providerOutput", "__expected", "__description"])
    for i, case in enumerate(cases):
        writer.writerow(["x", case[pick], case[0], f"c{i}"])
    return buf.getvalue()


@pytest.mark.parametrize(("pick", "outcome"), [(1, "passed"), (2, "failed")])
def test_each_type_passes_and_fails_on_korean_text(both_modes, pick, outcome):
    for project in both_modes:
        project.write({"prompt_tests/a.csv": _rows(CASES, pick),
                       "checks.py": "def polite(output, context):\n    return '감사' in output\n"})
        result = project.run("-p", "no:randomly", "-rA")
        result.assert_outcomes(**{outcome: len(CASES)})
        assert project.server.count == 0


def test_structured_form_weights_and_threshold(project):
    project.write({"prompt_tests/a.yaml": """
        - vars: {input: x}
          providerOutput: 환불 절차를 안내합니다
          threshold: 0.7
          assert:
            - {type: contains, value: 환불, weight: 3}
            - {type: contains, value: 교환, weight: 1}
          description: 가중치 통과
        - vars: {input: x}
          providerOutput: 교환만 됩니다
          threshold: 0.7
          assert:
            - {type: contains, value: 환불, weight: 3}
            - {type: contains, value: 교환, weight: 1}
          description: 가중치 실패
        - input: x
          __providerOutput: '{"a": 1}'
          __expected: [is-json, {type: length, value: {min: 3, max: 20}}]
    """})
    result = project.run("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*가중치 실패*FAILED*", "*score 0.25 < threshold 0.7*"])


def test_latency_and_cost_assertions_use_the_response(project):
    project.server.latency = 0.3
    project.write({"prompt_tests/a.csv": "input,__expected,__expected2\nfast,latency:5000,not-latency:100\n"
                                         "slow,latency:100,\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*✗ latency: * ms, limit 100 ms"])


def test_cost_assertion_fails_when_price_is_unknown(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,cost:1\n"})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cost is n/a (no price for this model)*"])


def test_conftest_adds_and_overrides_assertions_through_the_hook(project):
    project.write({
        "conftest.py": """
            def pytest_promstack_register_assertions(register):
                register("polite", lambda output, value, ctx: ("감사" in output, "no 감사"))
                register("contains", lambda output, value, ctx: (True, "overridden"))
        """,
        "prompt_tests/a.csv": "input,__providerOutput,__expected,__expected2\nx,감사합니다,polite,contains:zzz\n"
                              "y,싫어요,not-polite,\n",
    })
    project.run().assert_outcomes(passed=2)


def test_case_without_expectations_fails_saying_so(project):
    project.write({"prompt_tests/a.csv": "input\nx\n"})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the case has no expectations; add an __expected column*"])


def test_suite_assertions_apply_to_every_case(project):
    project.server.replies = {"b": "As an AI model, no"}
    project.write({"prompt_tests/a.csv": "input\na\nb\n"},
                  suites={"s": {"tests": ["prompt_tests/*"], "assert": [{"type": "not-icontains", "value": "as an ai"}]}})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)


def test_a_promptfoo_test_file_runs_with_its_files_templates_transforms_and_keys(project):
    """promptfoo's test shape end to end: file:// values and vars, {{ var }} in a value, a
    transform, options and a metric; a key we do not run fails its own item in one line."""
    project.write({
        "prompt_tests/schemas/order.json": '{"type": "object", "required": ["id"], '
                                           '"properties": {"id": {"type": "integer"}}}',
        "prompt_tests/answers/refund.txt": "환불",
        "prompt_tests/checks/grade.py": "def get_assert(output, context):\n"
                                        "    return {'pass': context['vars']['want'] in output, 'score': 0.9}\n",
        "prompt_tests/pf.yaml": """
            - description: 스키마
              vars: {input: x}
              providerOutput: {id: 7}
              assert: [{type: is-json, value: file://schemas/order.json}]
            - description: 템플릿과 변환
              vars: {input: x, want: 환불}
              providerOutput: '  refund 환불  '
              options: {transform: output.strip()}
              assert:
                - {type: equals, value: 'REFUND {{ want }}', transform: output.upper(), metric: 정확도}
                - {type: contains, value: file://answers/refund.txt}
                - {type: python, value: file://checks/grade.py}
            - description: 틀린 스키마
              vars: {input: x}
              providerOutput: {id: seven}
              assert: [{type: is-json, value: file://schemas/order.json}]
            - description: 모르는 키
              vars: {input: x}
              asert: [{type: contains, value: x}]
        """})
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*스키마*PASSED*", "*템플릿과 변환*PASSED*", "*틀린 스키마*FAILED*", "*모르는 키*FAILED*",
        "*schema: id: 'seven' is not of type 'integer'*",
        "*prompt_tests/pf.yaml:4: unknown key 'asert' in a promptfoo test (did you mean 'assert'?)*",
    ])
    assert project.server.count == 0


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_perplexity_asks_for_log_probabilities_and_scores_them_from_the_cache_too(project, transport):
    """A case with a perplexity check asks for logprobs (its own cache entry); both transports
    read them; the cached answer keeps them, so a rerun scores the same with no call."""
    from tests.support.fake_openai import Reply

    def respond(body):
        if "불확실" in str(body["messages"]):
            return Reply(text="아마 환불 될지도", logprobs=[-2.0, -3.0, -2.5])  # perplexity e^2.5 = 12.2
        return None

    project.server.respond = respond
    project.write({"prompt_tests/a.csv": "input,__expected,__expected2\n"
                                         "환불,perplexity(2),perplexity-score(0.4)\n"
                                         "불확실,perplexity(2),\n"
                                         "plain,contains:plain,\n"}, transport=transport)
    for _ in range(2):
        result = project.run("-p", "no:randomly", "-rA")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*✗ perplexity: perplexity 12.18, limit 2"])
    asked = sorted(str(r.get("logprobs")) for r in project.server.requests)
    assert asked == ["None", "True", "True"]  # asked once per case that checks it, then answered from the cache


def test_an_assert_scoring_function_decides_the_case_from_the_named_scores(project):
    """promptfoo's assertScoringFunction: a python function given each assertion's score by its
    metric; refused with the rest of the repository's code under --promstack-no-python."""
    project.write({
        "checks/scoring.py": "def combine(named, context):\n"
                                   "    ok = named['정확도'] == 1 or named['contains'] == 1\n"
                                   "    return {'pass': ok, 'score': max(named.values()), 'reason': 'either'}\n",
        "prompt_tests/a.yaml": """
            - description: 하나만
              vars: {input: x}
              providerOutput: 환불 안내
              assertScoringFunction: file://../checks/scoring.py:combine
              assert:
                - {type: contains, value: 환불, metric: 정확도}
                - {type: contains, value: 교환}
            - description: 둘 다 아님
              vars: {input: x}
              providerOutput: 배송 안내
              assertScoringFunction: file://../checks/scoring.py:combine
              assert:
                - {type: contains, value: 환불, metric: 정확도}
                - {type: contains, value: 교환}
        """})
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*하나만*PASSED*", "*둘 다 아님*FAILED*"])
    refused = project.run("--promstack-no-python")
    refused.assert_outcomes(errors=2)  # as any case that would run code there
    refused.stdout.fnmatch_lines(["*assertScoringFunction file://*scoring.py:combine is code from this repository*"])


def test_an_assert_scoring_function_sees_each_metrics_weighted_mean_and_its_error_is_shown(project):
    project.write({
        "checks/scoring.py": "def combine(named, context):\n"
                             "    if context['vars'].get('boom'):\n        raise ValueError('점수 계산 실패')\n"
                             "    return {'pass': named['정확도'] >= 0.5, 'score': named['정확도'], 'reason': '평균'}\n",
        "prompt_tests/a.yaml": """
            - description: 평균
              vars: {input: x}
              providerOutput: 환불 안내
              assertScoringFunction: file://../checks/scoring.py:combine
              assert:
                - {type: contains, value: 교환, metric: 정확도}
                - {type: contains, value: 환불, metric: 정확도}
            - description: 오류
              vars: {input: x, boom: 1}
              providerOutput: 환불 안내
              assertScoringFunction: file://../checks/scoring.py:combine
              assert: [{type: contains, value: 환불, metric: 정확도}]
        """})
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)  # 평균: (0 + 1) / 2 = 0.5 whatever the order
    result.stdout.fnmatch_lines(["*평균*PASSED*", "*오류*FAILED*",
                                 "*✗ assertScoringFunction: ValueError: 점수 계산 실패*"])


def test_a_failure_reason_shows_the_spaces_and_newlines_that_made_it_fail(project):
    project.server.replies = {"a": "4", "b": "첫 줄\n둘째 줄"}
    project.write({"prompt_tests/a.csv": "input,__expected\na,equals: 4\nb,equals:첫 줄 둘째 줄\n"})
    result = project.run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(["*✗ equals: expected ' 4', got '4'*",
                                        "*✗ equals: expected '첫 줄 둘째 줄', got '첫 줄\\n둘째 줄'*"])
