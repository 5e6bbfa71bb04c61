"""promptfoo's select-best (one judge call per test row over its prompts x models) and
classifier (the default judge's confidence in a class), against the loopback server with
scripted judge answers; and the xdist partition that keeps a row's variants on one worker."""

from __future__ import annotations

import json
import re

import pytest

from pytest_promstack.plugin.xdist import partition
from tests.support.fake_openai import Reply, last_user

PROMPTS = {"prompts/short.yaml": "id: short\ntemplate: 'Q: {{ input }}'\n",
           "prompts/long.yaml": "id: long\ntemplate: '질문: {{ input }}'\n"}
REPLY = re.compile(r"^\[(?:Reply|응답) (\d+)\]\n(.*)$", re.M)


def config(project, models=("m1", "m2"), prompts=tuple(PROMPTS), **extra):
    doc = {
        "models": [{"name": n, "model": f"openai/{n}", "api_base": project.server.url,
                    "api_key_env": "PROMSTACK_TEST_KEY", "params": {"input_cost_per_token": 1e-6,
                                                                    "output_cost_per_token": 1e-6}}
                   for n in (*models, "judge")],
        "defaults": {"max_tokens": 64}, "default_judge": "judge", "max_retries": 0,
        "suites": {"s": {"tests": ["prompt_tests/*"], "models": list(models), "prompts": list(prompts)}},
        **extra,
    }
    return {"promstack.yaml": json.dumps(doc, ensure_ascii=False), **PROMPTS}


def judged(choose=None, classify=None):
    """Models answer "<model> says <prompt>"; the judge picks by ``choose(replies)`` (the
    replies' texts in the order shown) or scores by ``classify(prompt)``; both return its text."""
    def respond(body):
        if body["model"] != "judge":
            return Reply(text=f"{body['model']} says {last_user(body)}")
        prompt = body["messages"][0]["content"]
        replies = [text for _, text in REPLY.findall(prompt)]
        return Reply(text=choose(replies) if replies else classify(prompt))
    return respond


def best(needle):
    def choose(replies):
        return json.dumps({"best": next(i for i, r in enumerate(replies, 1) if needle in r), "reason": "가장 정중함"})
    return choose


def judge_calls(project):
    return [b for b in project.server.requests if b["model"] == "judge"]


def test_select_best_passes_the_chosen_variant_fails_the_others_and_xdist_gives_the_same(both_modes):
    """Two rows, 2 prompts x 2 models: one judge call per row sees all 4 replies; `-n 2` keeps
    each row's items on one worker, so the verdicts (and the whole results document) agree."""
    for project in both_modes:
        project.server.respond = judged(lambda replies: best("m2 says 질문: hi" if "m1 says Q: hi" in replies[0]
                                                            else "m1 says Q: yo")(replies))
        project.write({**config(project), "prompt_tests/a.csv":
                       "input,__expected\nhi,select-best:the most polite reply\nyo,select-best:the most polite reply\n"})
        result = project.run("--promstack-json=out.json")
        result.assert_outcomes(passed=2, failed=6)
        result.stdout.fnmatch_lines(["*a.csv:2 [[]short-m1[]]: 1 of 1 assertions failed",
                                     "*✗ select-best: judge default:select-best chose [[]long-m2[]] of 4 variants "
                                     "(not this reply): 가장 정중함"])
        calls = judge_calls(project)
        assert len(calls) == 2  # one per row, not per variant
        assert all(len(REPLY.findall(c["messages"][0]["content"])) == 4 for c in calls)
        assert all("the most polite reply" in c["messages"][0]["content"] for c in calls)
        # the row's input, not one prompt's rendering of it (which would favour that prompt)
        assert all(re.search(r"^\[(?:Question|질문)\]\n(hi|yo)$", c["messages"][0]["content"], re.M) for c in calls)
        cases = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["cases"]
        assert {c["case_id"] for c in cases if c["outcome"] == "passed"} == {
            "prompt_tests/a.csv::row-2[long-m2]", "prompt_tests/a.csv::row-3[short-m1]"}
        assert sum(c["judge_calls"] for c in cases) == 2  # each row's call counted once ...
        assert sum(c["eval_cost_usd"] for c in cases) > 0  # ... as eval cost, apart from the app's
        project.server.reset()
        project.run().assert_outcomes(passed=2, failed=6)
        assert project.server.count == 0  # the verdicts are cached like every judge call


@pytest.mark.parametrize(("answer", "problem"), [
    ("Reply 2 is the best.", "not JSON"),
    ('{"best": 5, "reason": "x"}', "there are replies 1 to 4"),
    ('{"best": "2", "reason": "x"}', "must be the number of the best reply"),
    ('{"best": 0, "reason": "x"}', "there are replies 1 to 4"),
])
def test_a_select_best_answer_that_does_not_parse_is_repaired_once_then_every_variant_errors(project, answer,
                                                                                            problem):
    project.server.respond = judged(lambda replies: answer)
    project.write({**config(project), "prompt_tests/a.csv": "input,__expected\nhi,select-best:the clearest\n"})
    result = project.run()
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines([f"*a.csv:2 [[]long-m2[]]: judge default:select-best gave no usable verdict: *{problem}*"
                                 "raw answer*"])
    calls = judge_calls(project)
    assert len(calls) == 2  # the question, and one repair showing the judge its answer
    assert calls[1]["messages"][1] == {"role": "assistant", "content": answer}


def test_a_repaired_select_best_answer_counts(project):
    answers = iter(["The second one.", '```json\n{"best": 3, "reason": "ok"}\n```'])
    project.server.respond = judged(lambda replies: next(answers))
    project.write({**config(project), "prompt_tests/a.csv": "input,__expected\nhi,select-best:the clearest\n"})
    result = project.run("-v")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*row-2[[]long-m1[]] PASSED*"])


def test_a_failed_variant_call_errors_that_case_and_the_row_is_not_judged(project):
    project.server.faults = {"m2": 500}
    project.server.respond = lambda body: Reply(text="ok") if body["model"] == "m1" else None
    project.write({**config(project), "prompt_tests/a.csv": "input,__expected\nhi,select-best:the clearest\n"})
    result = project.run()
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]short-m1[]]: judge default:select-best gave no usable verdict: the call "
                                 "of variant [[]short-m2[]] failed, so the row's 4 replies were not compared"])
    assert judge_calls(project) == []


def test_select_best_on_a_single_variant_fails_in_one_line_without_asking(project):
    """promptfoo throws ("at least two outputs"), stopping its eval; here the case fails saying so."""
    project.server.respond = judged(lambda replies: pytest.fail("no judge call expected"))
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)),
                   "prompt_tests/a.csv": "input,__expected\nhi,select-best:the clearest\n"})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*✗ select-best: select-best compares the replies of one test across its prompts "
                                 "and models, and this one has only one; run the row with a second prompt or model*"])
    assert judge_calls(project) == []


def test_select_best_without_a_judge_says_to_set_one(project):
    files = config(project)
    doc = json.loads(files["promstack.yaml"])
    del doc["default_judge"]
    project.write({**files, "promstack.yaml": json.dumps(doc), "prompt_tests/a.csv":
                   "input,__expected\nhi,select-best:the clearest\n"})
    result = project.run()
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*✗ select-best: *needs an LLM judge: set default_judge*"])


@pytest.mark.parametrize(("row", "problem"), [
    ("- vars: {input: hi}\n  assert: [{type: not-select-best, value: clear}]\n", "cannot be negated"),
    ("- vars: {input: hi}\n  assert: [{type: select-best}]\n", "takes the criterion as text"),
    ("- vars: {input: hi}\n  assert: [{type: classifier}]\n", "classifier needs the expected class as text"),
])
def test_a_misused_select_best_or_classifier_fails_its_row_in_one_line_before_any_call(project, row, problem):
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)), "prompt_tests/a.yaml": row})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*prompt_tests/a.yaml:1*{problem}*"])
    assert project.server.count == 0


def verdict(score):
    return json.dumps({"scores": [{"criterion": "c", "score": score, "reason": "판단 근거"}]})


@pytest.mark.parametrize(("cell", "score", "passed"), [
    ("classifier:positive", 4, True),  # a CSV cell's threshold is 0.75: 4 on 1-5 reaches it
    ("classifier:positive", 3, False),
    ("classifier(0.9):positive", 4, False),
    ("not-classifier:positive", 3, True),  # inverted: confidence 0.5 < 0.75
    ("not-classifier:positive", 5, False),
])
def test_classifier_passes_when_the_judges_confidence_reaches_the_threshold(project, cell, score, passed):
    prompts = []
    project.server.respond = judged(classify=lambda prompt: prompts.append(prompt) or verdict(score))
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)),
                   "prompt_tests/a.csv": f"input,__expected\nhi,{cell}\n"})
    result = project.run()
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    (prompt,) = prompts
    assert '"positive"' in prompt  # the class ...
    assert "m1 says Q: hi" in prompt  # ... and the reply reach the judge
    if not passed:
        result.stdout.fnmatch_lines([f"*✗ {cell.split('(')[0].split(':')[0]}: judge default:classifier "
                                     f"{(score - 1) * 25}/100 *threshold *"])


@pytest.mark.parametrize(("score", "passed"), [(4, False), (5, True)])
def test_classifier_in_yaml_without_a_threshold_needs_full_confidence_as_in_promptfoo(project, score, passed):
    project.server.respond = judged(classify=lambda prompt: verdict(score))
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)),
                   "prompt_tests/a.yaml": "- vars: {input: hi}\n  assert: [{type: classifier, value: 긍정}]\n"})
    project.run().assert_outcomes(passed=int(passed), failed=int(not passed))


def test_a_promptfoo_classifier_with_its_huggingface_provider_runs_with_the_default_judge(project):
    prompts = []
    project.server.respond = judged(classify=lambda prompt: prompts.append(prompt) or verdict(5))
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)), "prompt_tests/a.yaml":
                   "- vars: {input: hi}\n  assert: [{type: classifier, value: nothate, threshold: 0.5,\n"
                   "    provider: 'huggingface:text-classification:facebook/roberta-hate-speech-dynabench-r4-target'}]\n"})
    project.run().assert_outcomes(passed=1)
    (prompt,) = prompts
    assert '"nothate"' in prompt


def test_classifier_judge_garbage_errors_the_case(project):
    project.server.respond = judged(classify=lambda prompt: "positive, I think")
    project.write({**config(project, models=("m1",), prompts=("prompts/short.yaml",)),
                   "prompt_tests/a.csv": "input,__expected\nhi,classifier:positive\n"})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*judge default:classifier gave no usable verdict: *not JSON*raw answer*"])


def test_the_estimate_counts_one_select_best_call_per_row(project):
    project.server.respond = judged(best("m1 says Q"))
    project.write({**config(project), "prompt_tests/a.csv": "input,__expected\nhi,select-best:x\nyo,select-best:x\n"})
    result = project.run("--promstack-estimate")
    assert project.server.count == 0
    result.stdout.fnmatch_lines(["m1 * 4 * 0 *", "judge * 2 * 0 *"])
    bound = float(next(x for x in result.stdout.lines if x.startswith("promstack estimate: at most")).split()[4])
    project.run("--promstack-json", "out.json").assert_outcomes(passed=2, failed=6)
    cases = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["cases"]
    assert 0 < sum(c["cost_usd"] + c["eval_cost_usd"] for c in cases) <= bound


@pytest.mark.parametrize(("ids", "count", "shares"), [
    # rows of one item: item i goes to worker i % N, as before rows were kept together
    (["a.csv::r1[m]", "a.csv::r2[m]", "a.csv::r3[m]"], 2, [[0, 2], [1]]),
    # a row's variants stay together; each row goes to the worker with the fewest items
    (["a::r1[p-m1]", "a::r1[p-m2]", "a::r2[p-m1]", "a::r2[p-m2]", "a::r3[p-m1]"], 2, [[0, 1, 4], [2, 3]]),
    # rows are found by id, wherever their items are in the collection (a shuffled order)
    (["a::r1[m1]", "a::r2[m1]", "a::r1[m2]", "test_x.py::test_y"], 2, [[0, 2], [1, 3]]),
])
def test_the_xdist_partition_keeps_a_rows_variants_on_one_worker(ids, count, shares):
    assert partition(ids, count) == shares
    assert sorted(i for share in partition(ids, count) for i in share) == list(range(len(ids)))
