"""The pipeline stage on plain data: planned cases through the batch (calls, judges, scoring,
records) against the loopback server, no pytest run; and the fixture's path and the files'
path making the same calls."""

from __future__ import annotations

import json
import sys

import pytest

from pytest_promstack.config.settings import load_settings
from pytest_promstack.pipeline.cases import Batch, CaseFailed
from pytest_promstack.pipeline.runner import Runner
from pytest_promstack.plan.planner import Planner
from pytest_promstack.score.registry import builtin_registry
from tests.support.fake_openai import FakeOpenAI, Reply

JUDGE = {"model": "judge", "criteria": ["정확한가?"], "scale": [1, 5], "pass_score": 4}


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def write_project(tmp_path, server, rows: str, **extra):
    config = {
        "models": [{"name": "m", "model": "openai/m", "api_base": server.url},
                   {"name": "judge", "model": "openai/judge-model", "api_base": server.url}],
        "judges": {"j": JUDGE}, "max_retries": 0, "cache": {"dir": str(tmp_path / "cache")},
        "suites": {"s": {"prompt": "prompts/p.yaml", "tests": ["t/*.csv"], "models": ["m"]}}, **extra,
    }
    (tmp_path / "promstack.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "prompts/p.yaml").write_text("id: p\ntemplate: '{{ input }}'\n", encoding="utf-8")
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "t/a.csv").write_text(rows, encoding="utf-8")


def batch_for(tmp_path):
    """The planned cases of t/a.csv by case id, and a batch to run them."""
    registry = builtin_registry()
    settings = load_settings(tmp_path, {})
    planner = Planner(settings, registry.assertions.__contains__, registry.suggest)
    plans = {p.case_id: p for p in planner.plan_file(tmp_path / "t/a.csv")}
    warnings: list[str] = []
    return plans, Batch(settings, registry, "run1", warnings.append)


def verdict(score: int) -> str:
    return json.dumps({"scores": [{"criterion": "정확한가?", "score": score, "reason": "이유"}]}, ensure_ascii=False)


def judged_by_answer(server, scores: dict[str, str]):
    """The judge's reply chosen by the answer it judges; the model echoes."""
    def respond(body):
        if body["model"] != "judge-model":
            return None
        prompt = body["messages"][0]["content"]
        return Reply(text=next(v for k, v in scores.items() if f"echo: {k}" in prompt))
    server.respond = respond


def run_project(tmp_path):
    """t/a.csv planned and run through a batch, as a pytest run drives it: (plans, and by case
    id: (outcome, why it failed or errored, record))."""
    plans, batch = batch_for(tmp_path)
    try:
        batch.submit(plans)
        batch.judge(None)
        out = {}
        for owner, plan in plans.items():
            responses, problem = batch.setup(owner, plan)
            outcome, when = None, "setup" if problem is not None else "call"
            if problem is None:
                try:
                    outcome = batch.score(owner, plan, responses)
                except CaseFailed as exc:
                    problem = str(exc)
            out[owner] = (outcome, problem, batch.record(owner, plan, responses, outcome, when, problem))
    finally:
        batch.close()
    return plans, out


def test_a_case_is_called_scored_and_recorded_then_answered_from_the_cache(tmp_path, server):
    write_project(tmp_path, server, "input,__expected\n환불,contains:환불\n배송,contains:환불\n")
    _plans, results = run_project(tmp_path)
    (ok, _, rec_ok), (bad, _, _) = results["t/a.csv::row-2[m]"], results["t/a.csv::row-3[m]"]
    assert ok.passed
    assert ok.passes == 1
    assert rec_ok["output"] == "echo: 환불"
    assert rec_ok["cached"] is False
    assert not bad.passed
    assert "t/a.csv:3 [m]: 1 of 1 assertions failed" in bad.failure
    assert "✗" in bad.failure
    assert "echo: 배송" in bad.failure
    assert rec_ok["input_tokens"] is not None
    assert rec_ok["called"]
    assert server.count == 2

    _plans, again = run_project(tmp_path)  # a second run: the same requests, the same keys
    assert server.count == 2
    assert [r["cached"] for _, _, r in again.values()] == [True, True]
    assert [o.passed for o, _, _ in again.values()] == [True, False]


def test_judged_cases_get_their_verdicts_in_one_phase_and_the_record_counts_the_judge(tmp_path, server):
    write_project(tmp_path, server, "input,__expected\n좋음,judge:j\n나쁨,judge:j\n")
    judged_by_answer(server, {"좋음": verdict(5), "나쁨": verdict(2)})
    _plans, results = run_project(tmp_path)
    good, bad = results["t/a.csv::row-2[m]"], results["t/a.csv::row-3[m]"]
    assert good[0].passed
    assert not bad[0].passed
    assert good[2]["judge_calls"] == 1
    assert good[2]["quality"] == 100.0
    assert bad[2]["quality"] == 25.0  # (2 - 1) / (5 - 1)
    assert server.count == 4  # two answers, two verdicts


def test_a_judge_with_no_usable_verdict_errors_its_case_after_one_repair(tmp_path, server):
    write_project(tmp_path, server, "input,__expected\n좋음,judge:j\n")
    judged_by_answer(server, {"좋음": "I think it is fine"})
    [(outcome, problem, record)] = run_project(tmp_path)[1].values()
    assert outcome is None
    assert problem.startswith("t/a.csv:2 [m]: judge j gave no usable verdict:")
    assert "raw answer: 'I think it is fine'" in problem
    assert record["phase"] == "setup"
    assert record["judge_calls"] == 2  # asked, then the repair


def test_a_failed_call_errors_its_case_naming_the_attempts(tmp_path, server):
    write_project(tmp_path, server, "input,__expected\n환불,contains:환불\n")
    server.faults["m"] = 400
    [(outcome, problem, record)] = run_project(tmp_path)[1].values()
    assert outcome is None
    assert problem.startswith("t/a.csv:2 [m]: model call failed:")
    assert "(after 1 attempt)" in problem
    assert record["error"]
    assert record["setup_error"] == problem.splitlines()[0][:400]


def test_run_one_scores_a_finished_case_with_its_junit_properties(tmp_path, server):
    write_project(tmp_path, server, "input,__expected\n환불,contains:환불\n")
    plans, batch = batch_for(tmp_path)
    batch.submit(plans)
    [(owner, plan)] = plans.items()
    record = batch.run_one(owner, plan)
    batch.close()
    assert record["outcome"] == "passed"
    assert record["junit"]["message"] is None
    assert ("model", "m") in record["junit"]["properties"]


def test_the_fixture_and_a_test_file_make_the_same_calls_and_judge_calls(tmp_path, server):
    """One request builder and one judge-call builder: the same prompt, input and judge give the
    same cache keys from a CSV row and from the fixture's run + check, so one answers the other."""
    write_project(tmp_path, server, "input,__expected\n좋음,judge:j\n", default_judge="j")
    judged_by_answer(server, {"좋음": verdict(5)})
    plans, _results = run_project(tmp_path)
    [plan] = plans.values()
    calls = server.count
    assert calls == 2

    runner = Runner(load_settings(tmp_path, {}))
    request, _prompt = runner.request("p", {"input": "좋음"}, model="m")
    [reply] = runner.run_many([{"prompt": "p", "vars": {"input": "좋음"}, "model": "m"}])
    [score] = runner.check(reply, "judge:j")
    runner.close()
    assert request.key == plan.requests[0].key
    assert reply.cached
    assert score.passed
    assert server.count == calls  # the answer and the verdict both came from the files' cache entries


def test_the_errors_users_catch_are_importable_from_one_documented_path():
    from pytest_promstack import errors
    from pytest_promstack.model import errors as model_errors

    assert errors.PromstackError is model_errors.PromstackError
    assert issubclass(errors.CallFailed, errors.PromstackError)
    assert issubclass(errors.CheckFailed, errors.PromstackError)
    assert issubclass(errors.CheckFailed, AssertionError)  # pytest.raises(AssertionError) around a check


def test_the_fixture_and_sdk_import_python_targets_from_the_project_root_and_put_sys_path_back(tmp_path, monkeypatch):
    (tmp_path / "promstack.yaml").write_text(
        'models: [{name: app, model: "python:support_bot_12:answer"}]\n', encoding="utf-8")
    (tmp_path / "support_bot_12.py").write_text(
        "def answer(messages, vars):\n    return '답: ' + messages[-1]['content']\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path.parent)  # not the project: only the root on sys.path finds the module
    before = list(sys.path)
    runner = Runner(load_settings(tmp_path, {"cache_mode": "off"}))
    [reply] = runner.run_many([{"prompt": [{"role": "user", "content": "환불"}], "model": "app"}])
    runner.close()
    assert reply.error is None
    assert reply.text == "답: 환불"
    assert sys.path == before
