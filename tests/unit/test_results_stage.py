"""The results stage on plain data: per-case records (results/records.py), their metrics, the
gates and the cheapest passing model, the baseline comparison, the cost estimate's lines, and
the results document checked against results/results.schema.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib.resources import files

import jsonschema
import pytest

from pytest_promstack.config.judges import Judge
from pytest_promstack.model.types import Case, Request, Response, Score
from pytest_promstack.pipeline.runner import Reply
from pytest_promstack.plan.planned import Planned
from pytest_promstack.results import baseline, estimate, gates, records
from pytest_promstack.results.document import SCHEMA, document
from pytest_promstack.results.metrics import percentile, summarise
from pytest_promstack.score import arena
from pytest_promstack.score.case import Outcome
from pytest_promstack.score.judging import Job

MSGS = ({"role": "user", "content": "질문: 환불"},)


def planned(row: int = 2, model: str = "m") -> Planned:
    req = Request(model=model, litellm_model=f"openai/{model}", messages=MSGS, params={}, key=f"k{row}{model}")
    return Planned(case=Case(file="t/a.csv", row=row, vars={"input": "환불"}, human_score=4), suite="s",
                   model=model, prompt_id="p", prompt_version="abcd1234", name=f"row-{row}",
                   case_id=f"t/a.csv::row-{row}[{model}]", asserts=(), requests=(req,))


def reply(**changes) -> Reply:
    fields = {"text": "네", "model": "m", "prompt_id": "p", "prompt_version": "abcd1234", "latency_ms": 12.0,
              "input_tokens": 3, "output_tokens": 1, "cost_usd": 0.001, "cached": False, "case_id": "test_x.py::t"}
    return Reply(**{**fields, **changes})


# ---- records: one shape -------------------------------------------------------------------


def test_every_kind_of_case_record_has_the_same_keys():
    keys = set(records.blank())
    assert set(records.identity(planned())) == keys
    assert set(records.case_record(planned(), [Response(text="네")], Outcome(True, 1, 1.0, ()))) == keys
    assert set(records.case_record(planned(), [], None, when="setup", problem="boom")) == keys
    assert set(records.file_error("s", "t/bad.csv", "t/bad.csv")) == keys
    # a fixture's reply has no pytest report to give it an outcome: it carries its own
    assert set(records.reply_record("fixture", reply())) == keys | {"outcome"}


def test_a_case_record_sums_its_repeats_and_keeps_the_first_answer():
    runs = [Response(text="환불 가능", input_tokens=3, output_tokens=2, cost_usd=0.001, latency_ms=100.0, cached=True,
                     finish_reason="stop", attempts=1),
            Response(text="환불", input_tokens=4, output_tokens=5, cost_usd=None, latency_ms=300.0, cached=False,
                     finish_reason="length", attempts=3)]
    outcome = Outcome(True, 2, 0.5, (Score("contains", True, 1.0, "contains: ok"),))
    rec = records.case_record(planned(), runs, outcome)
    assert (rec["input_tokens"], rec["output_tokens"]) == (7, 7)
    assert rec["cost_usd"] is None  # one run without a price: the case's cost is unknown, never a partial sum
    assert rec["latencies"] == [100.0, 300.0]
    assert (rec["cached"], rec["truncated"], rec["attempts"], rec["repeats"], rec["passes"]) == (False, 1, 4, 2, 2)
    assert (rec["output"], rec["finish_reason"], rec["score"], rec["phase"]) == ("환불 가능", "stop", 0.5, "call")
    assert rec["messages"] == list(MSGS)
    assert (rec["litellm_model"], rec["called"], rec["file"], rec["row"]) == ("openai/m", True, "t/a.csv", 2)
    assert rec["assertions"] == [{"type": "contains", "passed": True, "score": 1.0, "reason": "contains: ok"}]


def test_a_case_that_errored_before_scoring_keeps_the_first_line_of_why():
    rec = records.case_record(planned(), [Response(error="HTTP 500")], None, when="setup",
                              problem="the call failed\ndetails")
    assert (rec["phase"], rec["setup_error"], rec["error"], rec["score"], rec["passes"]) == (
        "setup", "the call failed", "HTTP 500", None, None)


def test_a_case_records_quality_is_the_mean_of_its_usable_verdicts_and_its_judges_cost():
    judge = Judge("j", "judge-model")
    jobs = [Job("n", "s", 0, judge, [], responses=[Response(text="{}", cost_usd=0.002, cached=True),
                                                    Response(text="{}", cost_usd=0.003)])]
    verdicts = [{"judge": "j", "normalised": 80.0, "agreement": 0.5}, {"judge": "k", "normalised": 60.0},
                {"judge": "x", "error": "no verdict"}]
    rec = records.case_record(planned(), [Response(text="네")], Outcome(True, 1, 1.0, ()), verdicts=verdicts,
                              judge_jobs=jobs)
    assert rec["quality"] == 70.0  # (80 + 60) / 2: the error is left out
    assert [v["judge"] for v in rec["judges"]] == ["j", "k"]
    assert rec["eval_cost_usd"] == pytest.approx(0.005)
    assert (rec["judge_calls"], rec["judge_cached"], rec["judge_flaky"], rec["human_score"]) == (2, 1, True, 4)


def test_a_run_keeps_each_case_record_compact_and_reads_it_back_as_it_came():
    from pytest_promstack.results.run import RunResults

    called = records.case_record(planned(), [Response(text="네", latency_ms=5.0)],
                                 Outcome(False, 0, 0.0, (Score("contains", False, 0.0, "contains: no"),)))
    expected = {**called, "outcome": "failed"}
    results = RunResults(None)  # type: ignore[arg-type]  # add() reads no setting
    results.add("n1", records.identity(planned()), lambda current: current, owned=True)  # the setup's report
    results.add("n1", dict(called), lambda current: "failed", owned=True)  # the call's
    results.add("n1", None, lambda current: current)  # the teardown's
    rec = results.records["n1"]
    assert isinstance(rec, records.Record)
    assert rec == expected
    assert list(rec) == list(expected)
    assert rec.as_dict() == expected
    assert list(rec.as_dict()) == list(expected)
    assert json.dumps({**rec}) == json.dumps(expected, default=str)
    assert (rec["judges"], rec.get("arena"), rec.get("nope", 0), "turns" in rec, "nope" in rec) == ([], [], 0, True,
                                                                                                       False)
    rec["judges"].append("x")  # an empty list comes back as a new one each time
    assert rec["judges"] == []
    results.add("n1", None, lambda current: "error")  # e.g. a failing teardown
    assert rec["outcome"] == "error"
    assert results.records["n1"] is rec
    with pytest.raises(KeyError):
        rec["nope"] = 1
    # any other shape stays the dict it was: a salvaged case's, with its outcome first
    results.add_salvaged("n2", {"outcome": "passed", **called})
    assert type(results.records["n2"]) is dict
    assert results.records["n2"]["salvaged"] is True


def test_a_fixture_reply_is_a_called_case_of_its_own_suite():
    rec = records.reply_record("fixture", reply(finish_reason="length"))
    assert (rec["suite"], rec["outcome"], rec["called"], rec["repeats"], rec["truncated"]) == (
        "fixture", "passed", True, 1, 1)
    assert (rec["latencies"], rec["cost_usd"], rec["case_id"]) == ([12.0], 0.001, "test_x.py::t")
    failed = records.reply_record("fixture", reply(error="boom", prompt_id=None, latency_ms=None))
    assert (failed["outcome"], failed["prompt_id"], failed["latencies"]) == ("error", "messages", [])


# ---- metrics ------------------------------------------------------------------------------


def test_percentiles_match_linear_interpolation():
    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    assert percentile(values, 0.5) == 30.0
    assert percentile(values, 0.95) == pytest.approx(40 + 0.8 * 60)  # rank 0.95 * 4 = 3.8
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_summary_groups_and_totals():
    rec = {"suite": "s", "model": "m", "prompt_id": "p", "prompt_version": "v", "called": True, "error": None}
    rows = summarise([
        {**rec, "outcome": "passed", "latencies": [100.0], "input_tokens": 3, "output_tokens": 4, "cost_usd": 0.5,
         "cached": True},
        {**rec, "outcome": "failed", "latencies": [300.0], "input_tokens": 5, "output_tokens": 1, "cost_usd": 0.25,
         "cached": False},
        {**rec, "model": "other", "outcome": "error", "latencies": [], "input_tokens": None, "output_tokens": None,
         "cost_usd": None, "cached": False, "error": "boom"},
    ])
    assert [r["model"] for r in rows] == ["m", "other"]
    m = rows[0]
    assert (m["cases"], m["passed"], m["failed"], m["pass_pct"]) == (2, 1, 1, 50.0)
    assert (m["input_tokens"], m["output_tokens"], m["cost_usd"], m["cache_hits"]) == (8, 5, 0.75, 1)
    assert m["p50_ms"] == 200.0
    assert rows[1]["cost_usd"] is None
    assert rows[1]["error"] == 1


# ---- gates --------------------------------------------------------------------------------


def rec(outcome: str, model: str = "m", **fields) -> dict:
    return {**records.blank(suite="s", model=model, called=True), "outcome": outcome, **fields}


RUN = [rec("passed", latencies=[100.0], input_tokens=300, output_tokens=100, cost_usd=0.004, quality=90.0),
       rec("passed", latencies=[200.0], input_tokens=300, output_tokens=100, cost_usd=0.004, quality=70.0),
       rec("failed", latencies=[300.0], input_tokens=200, output_tokens=100, cost_usd=0.002),
       rec("error", called=True, error="HTTP 500"),
       rec("skipped", called=False)]


def test_gates_measure_the_run_and_fail_past_their_limit():
    verdicts, warnings = gates.check(RUN, {"min_pass_rate": 50, "max_error_rate": 20, "max_p95_latency_ms": 250,
                                           "min_quality_score": 80, "max_cost_usd": 0.02}, "overall")
    got = {v.key: (v.value, v.passed) for v in verdicts}
    assert got["min_pass_rate"] == (50.0, True)  # 2 passed of 4 counted cases (the skipped one is not)
    assert got["max_error_rate"] == (25.0, False)  # 1 failed call of 4 calls
    assert got["max_p95_latency_ms"][0] == pytest.approx(290.0)  # 200 + 0.9 * 100
    assert got["min_quality_score"] == (80.0, True)  # (90 + 70) / 2
    assert got["max_cost_usd"] == (pytest.approx(0.01), True)
    assert warnings == []
    line = next(v for v in verdicts if v.key == "max_error_rate").line()
    assert line == "promstack: gate max_error_rate [overall]: 25.0%, limit 20.0%: FAILED (failed calls / calls)"


def test_a_budget_warns_at_80_and_90_percent_and_a_key_given_twice_must_pass_both():
    # 1100 tokens in all
    _, at_85 = gates.check(RUN, [("max_tokens", 1294)], "overall")
    assert at_85 == ["promstack: warning: max_tokens [overall] at 85% of its budget (1100 of 1294; warns at 80%)"]
    _, at_91 = gates.check(RUN, [("max_tokens", 1200)], "overall")
    assert "warns at 90%" in at_91[0]
    twice, _ = gates.check(RUN, [("max_tokens", 2000), ("max_tokens", 1000)], "overall")
    assert [v.passed for v in twice] == [True, False]


def test_a_cost_or_quality_gate_that_cannot_be_measured_fails_and_says_why():
    unpriced = [rec("passed", model="free", litellm_model="openai/free", cost_usd=None)]
    verdicts, _ = gates.check(unpriced, {"max_cost_usd": 1, "min_quality_score": 50, "max_p95_latency_ms": 10},
                              "suite s")
    got = {v.key: v for v in verdicts}
    assert not got["max_cost_usd"].passed
    assert got["max_cost_usd"].note.startswith("no price for model openai/free: add input_cost_per_token")
    assert (got["min_quality_score"].passed, got["min_quality_score"].note) == (False, "no judged cases")
    assert got["max_p95_latency_ms"].passed  # nothing measured: nothing over the limit


def test_the_cheapest_model_is_the_cheapest_that_passes_every_case_or_every_gate():
    runs = [rec("passed", model="big", cost_usd=0.004), rec("passed", model="big", cost_usd=0.002),
            rec("passed", model="small", cost_usd=0.001), rec("failed", model="small", cost_usd=0.001)]
    (sel,) = gates.cheapest(runs, {}, {})
    assert sel["criterion"] == "every case"
    assert sel["cheapest"] == "big"
    assert sel["models"] == [{"model": "big", "passed": True, "failed": [], "cost_per_1000": pytest.approx(3.0)},
                             {"model": "small", "passed": False, "failed": ["1 case"],
                              "cost_per_1000": pytest.approx(1.0)}]
    (gated,) = gates.cheapest(runs, {"min_pass_rate": 50}, {})
    assert (gated["criterion"], gated["cheapest"]) == ("every gate", "small")  # 50% passes the gate, at $1 / 1,000
    assert gates.cheapest(runs, {}, {"s": {"min_pass_rate": 100}})[0]["cheapest"] == "big"  # the suite's own gate
    assert gates.cheapest([r for r in runs if r["model"] == "big"], {}, {}) == []  # one model: nothing to choose


# ---- baseline -----------------------------------------------------------------------------


def case(case_id: str, outcome: str, quality: float | None = None, version: str = "v1") -> dict:
    return {**records.blank(suite="s", model="m", case_id=case_id, prompt_id="p", prompt_version=version,
                            called=True), "outcome": outcome, "quality": quality}


BEFORE = {"schema": SCHEMA, "run": {"id": "r0"},
          "cases": [case("kept", "passed"), case("broke", "passed"), case("gone", "passed"), case("fixed", "failed"),
                    case("deselected", "passed")]}


def test_a_baseline_marks_each_case_regressed_fixed_new_or_still_and_lists_the_removed():
    now = [case("kept", "passed"), case("broke", "failed"), case("fixed", "passed"), case("fresh", "error")]
    comp = baseline.compare(now, BEFORE, path="b.json", existing={"deselected"})
    assert {k: v["status"] for k, v in comp["cases"].items()} == {
        "s::kept": "still passing", "s::broke": "regressed", "s::fixed": "fixed", "s::fresh": "new"}
    assert comp["cases"]["s::broke"]["before"] == "passed"
    assert comp["regressions"] == ["s::broke"]
    assert comp["regressed"] is True
    assert comp["removed"] == ["gone"]
    assert comp["not_run"] == ["deselected"]  # known to this run, just not run: not "removed"
    assert comp["counts"] == {"regressed": 1, "fixed": 1, "still failing": 0, "new": 1, "still passing": 1,
                              "not compared": 0}
    assert baseline.compare(now, BEFORE)["removed"] == ["deselected", "gone"]  # without the run's ids


def test_a_quality_drop_beyond_the_margin_is_a_regression_with_no_case_failing():
    before = {"schema": SCHEMA, "run": {}, "cases": [case("a", "passed", 90.0), case("b", "passed", 80.0)]}
    now = [case("a", "passed", 80.0), case("b", "passed", 70.0, version="v2")]
    comp = baseline.compare(now, before, margin=5.0)
    assert comp["quality"] == {"now": 75.0, "before": 85.0, "drop": 10.0, "margin": 5.0}
    assert comp["regressions"] == []
    assert comp["regressed"] is True
    assert comp["cases"]["s::a"]["quality_delta"] == -10.0
    assert comp["cases"]["s::b"]["prompt_version_before"] == "v1"
    assert baseline.compare(now, before, margin=10.0)["regressed"] is False  # a drop of exactly the margin passes
    assert comp["prompt_versions"] == [{"prompt_id": "p", "now": ["v1", "v2"], "before": ["v1"]}]


@pytest.mark.parametrize(("now", "before", "status"), [
    ("passed", "xfailed", "fixed"), ("failed", "skipped", "new"), ("xfailed", "passed", "not compared"),
    ("error", "failed", "still failing"), ("xpassed", "passed", "still passing"), ("skipped", None, "not compared"),
])
def test_xfailed_baselines_count_as_failing_and_skipped_ones_as_absent(now, before, status):
    assert baseline.status(now, before) == status


# ---- the cost estimate --------------------------------------------------------------------


class TokenCounter:
    """What estimate.add asks of litellm: one token per word of the messages."""

    @staticmethod
    def token_counter(model: str, messages: list) -> int:
        return sum(len(m["content"].split()) for m in messages)


def test_the_estimate_bounds_each_models_calls_with_max_tokens_and_names_what_it_cannot_price():
    lines: dict[str, estimate.Line] = {}
    priced = Request(model="m", litellm_model="openai/m", messages=MSGS, key="k1",
                     params={"max_tokens": 100, "input_cost_per_token": 0.001, "output_cost_per_token": 0.002})
    unbounded = Request(model="u", litellm_model="openai/u", messages=MSGS, params={}, key="k2")
    for req, cached in ((priced, False), (priced, False), (priced, True), (unbounded, False)):
        estimate.add(lines, TokenCounter, req, cached)
    m = lines["m"]
    # two calls of 2 input tokens and at most 100 output tokens: 2 * (2 * 0.001 + 100 * 0.002) = 0.404
    assert (m.calls, m.cached, m.input_tokens, m.output_tokens) == (2, 1, 4, 200)
    assert m.cost == pytest.approx(0.404)
    out = estimate.lines_for(lines)
    assert out[0] == "promstack estimate: an upper bound (input tokens + max_tokens per call); nothing was called"
    table = out[1:-2]
    assert table[0].split() == ["model", "calls", "cached", "(free)", "tokens", "in", "tokens", "out", "(max)",
                                "max", "USD"]
    assert table[2].split() == ["m", "2", "1", "4", "200", "0.404000"]
    assert table[3].split() == ["u", "1", "0", "2", "0", "n/a"]
    assert out[-2] == "promstack estimate: at most n/a USD for this run"  # one model without a bound: no total
    assert out[-1] == ("promstack estimate: no max_tokens, so no bound on output: set max_tokens in defaults or "
                       "params")
    assert estimate.lines_for({"m": m})[-1] == "promstack estimate: at most 0.404000 USD for this run"


# ---- the results document -----------------------------------------------------------------


def test_the_results_document_of_a_run_validates_against_its_schema():
    scored = {**records.case_record(planned(2), [Response(text="네", input_tokens=3, output_tokens=1, cost_usd=0.001,
                                                             latency_ms=20.0)],
                                    Outcome(True, 1, 1.0, (Score("contains", True, 1.0, "contains: ok"),)),
                                    verdicts=[{"judge": "j", "normalised": 75.0, "mean": 4.0, "scale": [1, 5]}]),
              "outcome": "passed"}
    errored = {**records.case_record(planned(3, "n"), [Response(error="HTTP 500")], None, when="setup",
                                     problem="HTTP 500"), "outcome": "error"}
    unreadable = {**records.file_error("s", "t/bad.csv", "t/bad.csv"), "outcome": "error"}
    cases = [scored, errored, unreadable]
    games = [{"case": "c1", "a": "m", "b": "n", "winner": "m", "flipped": False}]
    verdicts, warnings = gates.check(cases, {"max_tokens": 5}, "overall")
    doc = document({"id": "r1", "started": "2025-01-01T00:00:00Z", "git_commit": None, "settings": {}}, cases,
                   arena.summarise(games, ["m", "n"], bootstrap=5), gates=[asdict(v) for v in verdicts],
                   warnings=warnings, selection=gates.cheapest(cases, {}, {}),
                   baseline=baseline.compare(cases, {"schema": SCHEMA, "run": {"id": "r0"}, "cases": [scored]}),
                   prompts=[{"id": "p", "version": "abcd1234", "source": "p.yaml", "messages": list(MSGS)}])
    assert isinstance(doc["arena"]["interval"]["m"], list)  # the bootstrap's tuples, as JSON has them
    schema = json.loads(files("pytest_promstack.results").joinpath("results.schema.json").read_text(encoding="utf-8"))
    doc = json.loads(json.dumps(doc))  # as written and read back
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert baseline.schema_problem(doc) is None
    assert doc["schema"] == "promstack-results/1"
    assert [c["case_id"] for c in doc["cases"]] == ["t/a.csv::row-2[m]", "t/a.csv::row-3[n]", "t/bad.csv"]
    assert doc["quality"] == 75.0
    assert doc["gates"][0]["value"] == 4.0  # 3 + 1 tokens


def test_a_document_that_breaks_the_schema_is_named_where():
    doc = document({"id": "r1", "started": "s", "git_commit": None, "settings": {}},
                   [{**records.file_error("s", "t/bad.csv", "t/bad.csv"), "outcome": "exploded"}], None)
    problem = baseline.schema_problem(json.loads(json.dumps(doc)))
    assert problem.startswith("cases[0].outcome: 'exploded' is not one of ['passed', 'failed', 'error'")


def test_a_document_with_a_conversation_and_an_agent_validates_and_sums_their_calls():
    from tests.support.records import agent_record, conversation_record, doc_with, plain_record

    doc = doc_with([conversation_record(), agent_record(), plain_record()])
    schema = json.loads(files("pytest_promstack.results").joinpath("results.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert baseline.schema_problem(doc) is None
    assert [t["index"] for t in doc["cases"][1]["turns"]] == [1, 2, 3]
    (group,) = doc["summary"]
    assert (group["model_calls"], group["tool_calls"]) == (4 + 3 + 1, 2 + 2 + 0)
    broken = json.loads(json.dumps(doc))
    del broken["cases"][1]["turns"][1]["index"]
    assert baseline.schema_problem(broken).startswith("cases[1].turns[1]: 'index' is a required property")
    broken = json.loads(json.dumps(doc))
    broken["cases"][2]["steps"][0]["turn"] = 0
    assert baseline.schema_problem(broken).startswith("cases[2].steps[0].turn: 0 is less than the minimum of 1")
