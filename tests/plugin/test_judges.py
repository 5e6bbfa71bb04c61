"""LLM judges against the loopback server with scripted verdicts: fail closed, strict
parsing, caching, eval cost apart, calibration, Korean criteria."""

from __future__ import annotations

import json

import pytest

from tests.conftest import summary_rows
from tests.support.fake_openai import Reply

CRITERIA = ["응답이 질문에 적절한가?", "톤이 일관적인가?", "잘못된 정보가 없는가?"]


def judge_config(project, **judge):
    return {
        "promstack.yaml": json.dumps({
            "models": [
                {"name": "mine", "model": "openai/mine", "api_base": project.server.url, "api_key_env": "PROMSTACK_TEST_KEY"},
                {"name": "judge", "model": "openai/gpt-4o-mini", "api_base": project.server.url,
                 "api_key_env": "PROMSTACK_TEST_KEY"},
            ],
            "judges": {"support_quality": {"model": "judge", "criteria": CRITERIA, "scale": [1, 5],
                                           "pass_score": 4, **judge}},
            "max_retries": 0,
            "suites": {"s": {"tests": ["prompt_tests/*"], "models": ["mine"]}},
        }, ensure_ascii=False),
    }


def is_judge(body):
    return body["model"] == "gpt-4o-mini"


def verdict(*scores, **extra):
    return json.dumps({"scores": [{"criterion": c, "score": s, "reason": f"이유 {i}"}
                                  for i, (c, s) in enumerate(zip(CRITERIA, scores, strict=False))], **extra},
                      ensure_ascii=False)


def scripted(by_answer):
    """Judge replies chosen by the answer under judgement (found in the judge prompt)."""
    def respond(body):
        if not is_judge(body):
            return None
        prompt = body["messages"][0]["content"]
        for needle, reply in by_answer.items():
            if f"echo: {needle}" in prompt:
                return Reply(text=reply(body) if callable(reply) else reply)
        raise AssertionError("unscripted judge call")
    return respond


def test_scores_decide_pass_not_a_pass_flag_and_korean_criteria_reach_the_judge(project):
    project.server.respond = scripted({"good": verdict(5, 4, 5), "bad": verdict(2, 3, 1, **{"pass": True})})
    project.write({**judge_config(project),
                   "prompt_tests/a.csv": "input,__expected\ngood,judge:support_quality\nbad,judge:support_quality\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*✗ judge: judge support_quality 25/100 (응답이 질문에 적절한가?=2; *"])
    judge_prompts = [b["messages"][0]["content"] for b in project.server.requests if is_judge(b)]
    assert all(all(c in p for c in CRITERIA) for p in judge_prompts)
    assert all("mine" not in p for p in judge_prompts)  # blind: no model name
    (row,) = summary_rows(result)
    assert row["quality"] == f"{(100 * (14 / 3 - 1) / 4 + 100 * (2 - 1) / 4) / 2:.1f}"


@pytest.mark.parametrize(("answer", "problem"), [
    ("I think it is fine.", "not JSON"),
    ('{"verdict": "good"}', 'no "scores" list'),
    (verdict(5, 4), "scored 2 criteria, expected 3"),
    (verdict(5, 9, 4), "score 9 is outside the scale 1-5"),
    (verdict(5, 4.5, 4), "score 4.5 is not an integer"),
    ("", "empty answer"),
])
def test_unusable_verdict_is_repaired_once_then_the_case_errors(project, answer, problem):
    project.server.respond = scripted({"x": answer})
    project.write({**judge_config(project), "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*[[]mine[]]: judge support_quality gave no usable verdict: *{problem}*raw answer*"])
    judge_calls = [b for b in project.server.requests if is_judge(b)]
    assert len(judge_calls) == 2  # the question, and one repair with the bad answer shown to the judge
    assert judge_calls[1]["messages"][1] == {"role": "assistant", "content": answer}


def test_a_repaired_verdict_counts(project):
    calls = []

    def reply(body):
        calls.append(1)
        return "Sure! Here you go" if len(calls) == 1 else f"```json\n{verdict(5, 5, 4)}\n```"

    project.server.respond = scripted({"x": reply})
    project.write({**judge_config(project), "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    project.run().assert_outcomes(passed=1)


def test_seed_csv_expected_output_is_judged_by_the_default_judge(project):
    seen = []

    def respond(body):
        if not is_judge(body):
            return None
        seen.append(body["messages"][0]["content"])
        return Reply(text=json.dumps({"scores": [{"criterion": "c", "score": 5, "reason": "ok"}]}))

    project.server.respond = respond
    config = json.loads(judge_config(project)["promstack.yaml"])
    del config["judges"]
    config["default_judge"] = "judge"
    project.write({"promstack.yaml": json.dumps(config),
                   "prompt_tests/seed.csv": 'input,expected_output\n"환불하고 싶어요","환불 절차 안내"\n'})
    project.run().assert_outcomes(passed=1)
    assert "환불 절차 안내" in seen[0]
    assert "환불하고 싶어요" in seen[0]


def test_cases_with_a_judge_are_scored_after_every_call_and_verdict(project, monkeypatch):
    # the judges' calls are asked for once every answer is in: no case ends before the last call
    # (cases without a judge are scored as their answers arrive, test_engine.py)
    progress = project.path / "progress.jsonl"
    monkeypatch.setenv("PROMSTACK_PROGRESS_FILE", str(progress))
    project.server.respond = lambda body: (
        Reply(text=json.dumps({"scores": [{"criterion": "c", "score": 5, "reason": "ok"}]})) if is_judge(body) else None)
    config = json.loads(judge_config(project)["promstack.yaml"])
    del config["judges"]
    project.write({"promstack.yaml": json.dumps({**config, "default_judge": "judge", "concurrency": 1}),
                   "prompt_tests/a.csv": "input,__expected\n" + "".join(f"q{i},llm-rubric:says q{i}\n" for i in range(3))})
    project.run().assert_outcomes(passed=3)
    lines = [json.loads(line) for line in progress.read_text(encoding="utf-8").splitlines()]
    first_case = next(i for i, line in enumerate(lines) if "done" in line)
    assert {"calls": 6, "of": 6, "hits": 0, "errors": 0} in lines[:first_case], lines


def test_judge_calls_are_cached_and_their_cost_counted_apart(project):
    project.server.respond = scripted({"a": verdict(5, 5, 5), "b": verdict(4, 4, 4)})
    project.write({**judge_config(project), "prompt_tests/a.csv": "input,__expected\na,judge:support_quality\n"
                                                                   "b,llm-rubric:정중한가?\n"})
    project.write({"promstack.yaml": judge_config(project)["promstack.yaml"].replace(
        '"max_retries"', '"default_judge": "support_quality", "max_retries"')})
    project.server.respond = lambda body: (Reply(text=json.dumps({"scores": [{"criterion": "c", "score": 5, "reason": "r"}]}))
                                           if is_judge(body) and "정중한가?" in body["messages"][0]["content"]
                                           else scripted({"a": verdict(5, 5, 5)})(body))
    result = project.run()
    result.assert_outcomes(passed=2)
    (row,) = summary_rows(result)
    assert row["cost USD"] == "n/a"  # the app model has no price ...
    eval_cost = float(row["eval USD"])  # ... the judge (gpt-4o-mini) has one, counted apart
    assert eval_cost > 0
    result.stdout.fnmatch_lines(["promstack: quality score 100.0/100 over 2 judged cases; 2 judge calls, eval cost *"])
    lines = [json.loads(x) for x in (project.path / ".promstack/calls.jsonl").read_text().splitlines()]
    assert sorted(x["kind"] for x in lines) == ["judge", "judge", "model", "model"]
    project.server.reset()
    project.run().assert_outcomes(passed=2)
    assert project.server.count == 0


def test_unknown_judge_and_no_default_judge_fail_saying_what_to_set(project):
    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"]["other"] = {"model": "judge", "criteria": ["x"]}
    project.write({"promstack.yaml": json.dumps(config),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:nope\ny,llm-rubric:polite?\n"})
    result = project.run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*judge 'nope' is not configured (judges: other, support_quality)*"])
    result.stdout.fnmatch_lines(["*needs an LLM judge: set default_judge*"])


def test_judge_repeat_reports_agreement_and_flags_disagreement(project):
    answers = iter([verdict(5, 5, 5), verdict(2, 2, 2), verdict(5, 5, 5)])
    project.server.respond = scripted({"x": lambda body: next(answers)})
    project.write({**judge_config(project, repeat=3), "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["promstack: flaky: prompt_tests/a.csv::row-2[[]mine[]] judges disagreed across repeats"])


def test_calibration_against_human_labels(project):
    # judge scores (all criteria equal) vs human labels:
    #   judge 5 4 3 2 1 5 ; human 5 4 2 2 3 4
    judge_scores = {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1, "f": 5}
    human = {"a": 5, "b": 4, "c": 2, "d": 2, "e": 3, "f": 4}
    project.server.respond = scripted({k: verdict(v, v, v) for k, v in judge_scores.items()})
    rows = "".join(f"{k},judge:support_quality,{human[k]}\n" for k in judge_scores)
    project.write({**judge_config(project, pass_score=1), "prompt_tests/a.csv": f"input,__expected,__human_score\n{rows}"})
    result = project.run()
    result.assert_outcomes(passed=6)
    # By hand. exact: a, b, d = 3/6 = 50%; within one: all but e = 5/6 = 83%.
    # Spearman: ranks J = [5.5, 4, 3, 2, 1, 5.5], H = [6, 4.5, 1.5, 1.5, 3, 4.5], both mean 3.5;
    #   cov = 12.75, var J = 17, var H = 16.5, rho = 12.75 / sqrt(280.5) = 0.761.
    # Quadratic kappa on 1..5 (w = d^2/16): observed = (1 + 4 + 1)/16 = 0.375;
    #   expected = sum w * row_J * col_H / n = 124 / 16 / 6 = 1.2917; kappa = 1 - 0.375/1.2917 = 0.710.
    result.stdout.fnmatch_lines(["promstack: calibration support_quality: n=6, exact 50%, within one 83%, "
                                 "Spearman 0.76, weighted kappa 0.71"])


@pytest.mark.parametrize(("how", "outcome"), [("each", "failed"), ("majority", "passed"), ("mean", "passed")])
def test_several_judges_on_one_case_are_combined_as_configured(project, how, outcome):
    # three judges: two pass with 5s, one fails with 2s -> each: fail; majority: 2 of 3 pass;
    # mean: (100 + 100 + 25) / 3 = 75 -> reaches 75
    def respond(body):
        if not is_judge(body):
            return None
        prompt = body["messages"][0]["content"]
        score = 2 if "엄격" in prompt.split("[기준]")[1] else 5
        return Reply(text=json.dumps({"scores": [{"criterion": "c", "score": score, "reason": "r"}]}))

    project.server.respond = respond
    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"] = {name: {"model": "judge", "criteria": [criterion]} for name, criterion in
                        (("j1", "친절한가?"), ("j2", "정확한가?"), ("j3", "엄격한 기준을 만족하는가?"))}
    config["judge_aggregate"] = how
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False),
                   "prompt_tests/a.csv": "input,__expected,__expected2,__expected3\nx,judge:j1,judge:j2,judge:j3\n"})
    project.run().assert_outcomes(**{outcome: 1})


def test_a_custom_judge_template_replaces_the_instructions(project):
    seen = []

    def respond(body):
        if not is_judge(body):
            return None
        seen.append(body["messages"][0]["content"])
        return Reply(text=verdict(5, 5, 5))

    project.server.respond = respond
    project.write({**judge_config(project, prompt="judges/mine.j2"),
                   "judges/mine.j2": "MY RUBRIC {{ scale_min }}-{{ scale_max }}: {{ question }} => {{ answer }} "
                                     "[{{ criteria | join(' / ') }}]\n",
                   "prompt_tests/a.csv": "input,__expected\n환불,judge:support_quality\n"})
    project.run().assert_outcomes(passed=1)
    assert seen == [f"MY RUBRIC 1-5: 환불 => echo: 환불 [{' / '.join(CRITERIA)}]\n"]


def test_a_missing_judge_template_file_is_a_config_error(project):
    project.write({**judge_config(project, prompt="judges/missing.j2"),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["promstack.yaml: judges.support_quality.prompt: cannot read 'judges/missing.j2' "
                                 "(No such file or directory); give a Jinja2 file relative to the config file*"])


# ---- structured output negotiated with servers that refuse json_schema (llama.cpp's server) ----


def refusing_config(project, transport, **top):
    """A judge on an unpriced model (so `transport: auto` calls it directly), retries on."""
    config = json.loads(judge_config(project)["promstack.yaml"])
    config["models"][1]["model"] = "openai/local-judge"
    config.update({"transport": transport, "max_retries": 4, "retry_backoff": 0.01, **top})
    return {"promstack.yaml": json.dumps(config, ensure_ascii=False)}


def is_local_judge(body):
    return body["model"] == "local-judge"


def formats_sent(project):
    return [(b.get("response_format") or {}).get("type") for b in project.server.requests if is_local_judge(b)]


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_server_refusing_json_schema_is_asked_json_object_once_for_the_run_with_one_warning(project, transport):
    project.server.formats = {"text", "json_object"}  # llama-cpp-python's server: HTTP 500 for json_schema
    project.server.respond = lambda body: Reply(text=verdict(5, 4, 5)) if is_local_judge(body) else None
    rows = "".join(f"q{i},judge:support_quality\n" for i in range(10))
    project.write({**refusing_config(project, transport), "prompt_tests/a.csv": f"input,__expected\n{rows}"})
    result = project.run()
    result.assert_outcomes(passed=10)
    # 10 model calls, one refused judge call, then 10 judge calls with json_object: no retries
    assert project.server.count == 21
    assert formats_sent(project) == ["json_schema"] + ["json_object"] * 10
    schema = [b for b in project.server.requests if is_local_judge(b)][1]["response_format"]["schema"]
    assert schema["properties"]["scores"]["minItems"] == 3  # the verdict schema still constrains the server
    warnings = [line for line in result.stdout.lines if "refused response_format" in line]
    assert len(warnings) == 1
    result.stdout.fnmatch_lines([
        f"promstack: warning: judge model judge at {project.server.url} refused response_format json_schema "
        "(HTTP 500: *'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'json_object' or 'text'\"*); its judge calls in this run asked for json_object "
        "with the schema instead, and verdicts were still parsed strictly"])
    lines = [json.loads(x) for x in (project.path / ".promstack/calls.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines if x["kind"] == "judge"].count("retry") == 1
    project.server.reset()
    project.run().assert_outcomes(passed=10)  # the verdicts are cached under the json_schema request's key
    assert project.server.count == 0


def test_after_a_downgrade_the_verdict_is_still_parsed_strictly_and_repaired_once(project):
    project.server.formats = {"text", "json_object"}
    project.server.respond = lambda body: Reply(text="Score: 5, looks good") if is_local_judge(body) else None
    project.write({**refusing_config(project, "auto"), "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*judge support_quality gave no usable verdict: *not JSON*raw answer*"])
    assert formats_sent(project) == ["json_schema", "json_object", "json_object"]  # refused, asked, repair


def test_a_server_taking_no_response_format_is_asked_without_one(project):
    project.server.formats = {"text"}
    project.server.respond = lambda body: Reply(text=verdict(5, 5, 5)) if is_local_judge(body) else None
    rows = "".join(f"q{i},judge:support_quality\n" for i in range(3))
    project.write({**refusing_config(project, "auto"), "prompt_tests/a.csv": f"input,__expected\n{rows}"})
    result = project.run()
    result.assert_outcomes(passed=3)
    assert formats_sent(project) == ["json_schema", "json_object", "json_object", None, None, None]
    result.stdout.fnmatch_lines(["promstack: warning: judge model judge at * asked for no response_format instead*"])


def test_a_bare_400_that_stepping_down_does_not_cure_is_not_remembered_and_keeps_its_message(project):
    project.server.respond = lambda body: (Reply(status=400, text="prompt is longer than the context window")
                                           if is_local_judge(body) else None)
    project.write({**refusing_config(project, "auto"),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\ny,judge:support_quality\n"})
    result = project.run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*gave no usable verdict: the judge's call failed: BadRequestError (HTTP 400): "
                                 "prompt is longer than the context window*"])
    assert formats_sent(project) == ["json_schema", "json_object", "json_object", None] * 2
    result.stdout.no_fnmatch_line("*refused response_format*")


def test_promptfoos_model_graded_types_are_judged_with_their_criterion_expected_reply_and_context(project):
    """factuality, model-graded-closedqa, answer-relevance and the context-* types: one judge
    call each, cached and fail closed like any judged assertion; a context type without a
    context variable fails saying what to add, with no call."""
    seen = []

    def respond(body):
        if not is_judge(body):
            return None
        prompt = body["messages"][0]["content"]
        seen.append(prompt)
        score = 2 if "Is every statement of the expected reply" in prompt else 5
        return Reply(text=json.dumps({"scores": [{"criterion": "c", "score": score, "reason": "r"}]}))

    project.server.respond = respond
    config = json.loads(judge_config(project, language="en")["promstack.yaml"])
    config["default_judge"] = "support_quality"
    project.write({"promstack.yaml": json.dumps(config), "prompt_tests/a.yaml": """
        - description: graded
          vars: {input: 환불 되나요, context: 환불은 7일 안에 됩니다}
          assert:
            - {type: factuality, value: 7일 안에 환불됩니다}
            - {type: model-graded-closedqa, value: 정중하다}
            - {type: answer-relevance}
            - {type: context-faithfulness}
            - {type: context-relevance, threshold: 0.9}
        - description: recall
          vars: {input: 환불 되나요, context: 환불은 7일 안에 됩니다}
          assert: [{type: context-recall, value: 7일}]
        - description: no context
          vars: {input: 환불 되나요}
          assert: [{type: context-faithfulness}]
    """})
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*✗ context-recall: judge support_quality:context-recall 25/100 (Is every statement of the expected*",
        "*✗ context-faithfulness: context-faithfulness judges the reply against the case's context: give the case a "
        "context variable*",
    ])
    assert len(seen) == 6
    factuality = next(p for p in seen if "factually consistent" in p)
    assert "Expected reply: 7일 안에 환불됩니다" in factuality
    assert "[Context]" not in factuality
    faithful = next(p for p in seen if "Is every claim in the reply supported by the context?" in p)
    assert "[Context]\n환불은 7일 안에 됩니다" in faithful
    assert any("Does the reply meet this criterion: 정중하다" in p for p in seen)
    project.server.reset()
    project.run().assert_outcomes(passed=1, failed=2)
    assert project.server.count == 0  # every answer and verdict from the cache


def test_g_eval_writes_steps_once_per_criteria_and_judges_every_case_with_them(project):
    """promptfoo's g-eval: one steps call per criteria (shared by the cases and cached), then a
    verdict per case with the steps in the judge's prompt; passing at 0.7 of the scale by default."""
    steps_calls, verdict_prompts = [], []

    def respond(body):
        if not is_judge(body):
            return None
        prompt = body["messages"][0]["content"]
        if "evaluation steps" in prompt and "Answer with the steps only" in prompt:
            steps_calls.append(prompt)
            return Reply(text="1. Check the facts.\n2. Check the tone.")
        verdict_prompts.append(prompt)
        score = 4 if "echo: 좋음" in prompt else 3  # 4 on 1-5 is 0.75 (passes 0.7), 3 is 0.5
        return Reply(text=json.dumps({"scores": [{"criterion": "c", "score": score, "reason": "r"}]}))

    project.server.respond = respond
    config = json.loads(judge_config(project, language="en")["promstack.yaml"])
    config["default_judge"] = "support_quality"
    project.write({"promstack.yaml": json.dumps(config), "prompt_tests/a.csv": (
        "input,__expected\n좋음,g-eval:The reply is accurate and polite\n나쁨,g-eval:The reply is accurate and polite\n")})
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*✗ g-eval: judge support_quality:g-eval 50/100 (*), threshold 0.7"])
    assert len(steps_calls) == 1
    assert "The reply is accurate and polite" in steps_calls[0]
    assert all("Evaluation steps:\n1. Check the facts.\n2. Check the tone." in p for p in verdict_prompts)
    assert len(verdict_prompts) == 2
    project.server.reset()
    project.run().assert_outcomes(passed=1, failed=1)
    assert project.server.count == 0


def test_the_judge_grades_the_output_after_the_transform_as_promptfoo_does(project):
    project.server.respond = lambda body: Reply(text=verdict(5, 5, 5)) if is_judge(body) else None
    project.write({**judge_config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "환불"}, "assert": [{"type": "judge", "value": "support_quality",
                                                "transform": "output.upper() + ' (변환됨)'"}]}], ensure_ascii=False)})
    project.run().assert_outcomes(passed=1)
    (prompt,) = [b["messages"][0]["content"] for b in project.server.requests if is_judge(b)]
    assert "ECHO: 환불 (변환됨)" in prompt
    project.server.reset()
    project.run("--promstack-estimate")
    assert project.server.count == 0
