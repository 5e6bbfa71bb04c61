"""The score stage on plain data: responses -> outcomes. A case's repeats and its failure text
(score/case.py), the assertions (score/assertions.py), strict judge verdicts and calibration
(score/judges.py), the judge's repeats aggregated (score/judging.py), and the arena's games
(score/arena.py). No model is called: answers and verdicts are written here."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from pytest_promstack.config.judges import Judge
from pytest_promstack.model.errors import JudgeError
from pytest_promstack.model.specs import spec_id
from pytest_promstack.model.types import AssertionSpec, Response, Score
from pytest_promstack.score import arena, assertions, judging
from pytest_promstack.score.case import score_case
from pytest_promstack.score.judges import calibration, parse, spearman, weighted_kappa
from pytest_promstack.score.registry import builtin_registry

REGISTRY = builtin_registry()
REFUND = AssertionSpec("contains", "환불", origin="__expected")
SHORT = AssertionSpec("length", "<=5", origin="__expected2")


def no_verdicts(i: int) -> dict:
    return {}


def replies(*texts: str) -> list[Response]:
    return [Response(text=t) for t in texts]


# ---- a case: repeats, min_pass, threshold, failure text -----------------------------------


def test_a_repeated_case_passes_when_min_pass_of_its_runs_pass_and_its_score_is_their_mean():
    runs = replies("환불 가능", "안 돼요", "환불")
    two = score_case(REGISTRY, [REFUND], runs, no_verdicts, {}, where="a.csv:2 [m]", min_pass=2)
    assert (two.passed, two.passes, two.failure) == (True, 2, None)
    assert two.score == pytest.approx(2 / 3)
    three = score_case(REGISTRY, [REFUND], runs, no_verdicts, {}, where="a.csv:2 [m]", min_pass=3)
    assert (three.passed, three.passes) == (False, 2)
    assert three.failure == ("a.csv:2 [m]: passed 2 of 3 repeats, needs 3; a failing one:\n"
                             "  ✗ contains: '환불' in '안 돼요'\n"
                             "  output: '안 돼요'")


def test_a_single_run_must_pass_whatever_min_pass_says():
    outcome = score_case(REGISTRY, [REFUND], replies("안 돼요"), no_verdicts, {}, where="w", min_pass=3)
    assert not outcome.passed
    assert outcome.failure.startswith("w: 1 of 1 assertions failed\n")


def test_the_failure_text_names_where_marks_each_assertion_and_shows_the_output():
    outcome = score_case(REGISTRY, [REFUND, SHORT], replies("환불은 어렵습니다"), no_verdicts, {},
                         where="prompt_tests/a.csv:3 [m]")
    assert outcome.failure == ("prompt_tests/a.csv:3 [m]: 1 of 2 assertions failed\n"
                               "  ✓ contains: '환불' in '환불은 어렵습니다'\n"
                               "  ✗ length: 9 chars, want <= 5\n"
                               "  output: '환불은 어렵습니다'")
    assert [(s.type, s.passed) for s in outcome.scores] == [("contains", True), ("length", False)]
    assert outcome.score == 0.5


def test_a_long_output_is_cut_in_the_failure_text_and_control_characters_are_escaped():
    outcome = score_case(REGISTRY, [REFUND], replies("x" * 600 + "\x1b[2J"), no_verdicts, {}, where="w")
    last = outcome.failure.splitlines()[-1]
    assert last == "  output: '" + "x" * 499 + "…'"
    evil = score_case(REGISTRY, [REFUND], replies("\x1b[2J지움"), no_verdicts, {}, where="w")
    assert "\x1b" not in evil.failure


def test_with_a_threshold_the_weighted_score_decides_and_the_failure_says_by_how_much():
    heavy = AssertionSpec("contains", "환불", weight=3)
    # contains passes (weight 3), length fails (weight 1): (3 * 1 + 1 * 0) / 4 = 0.75
    passed = score_case(REGISTRY, [heavy, SHORT], replies("환불은 어렵습니다"), no_verdicts, {}, where="w",
                        threshold=0.75)
    assert (passed.passed, passed.score) == (True, 0.75)
    failed = score_case(REGISTRY, [heavy, SHORT], replies("환불은 어렵습니다"), no_verdicts, {}, where="w",
                        threshold=0.8)
    assert not failed.passed
    assert failed.failure.splitlines()[0] == "w: 1 of 2 assertions failed (score 0.75 < threshold 0.8)"


def verdict(name: str, normalised: float, passed: bool) -> dict:
    return {"judge": name, "passed": passed, "normalised": normalised, "mean": 1 + 4 * normalised / 100,
            "scale": [1, 5], "repeats": 1, "agreement": 1.0, "scores": [{"criterion": "도움", "score": 5,
                                                                          "reason": ""}]}


JUDGED = [AssertionSpec("judge", name, origin=f"__expected{i}") for i, name in enumerate(("j1", "j2", "j3"))]
# j1 100/100 and j2 80/100 pass, j3 40/100 fails: 2 of 3 pass, mean (1.0 + 0.8 + 0.4) / 3 = 0.7333
VERDICTS = {spec_id(s): verdict(s.value, n, n >= 75) for s, n in zip(JUDGED, (100, 80, 40), strict=True)}


@pytest.mark.parametrize(("how", "passed"), [("each", False), ("min", False), ("mean", False), ("majority", True)])
def test_several_judges_on_a_case_each_must_pass_or_their_mean_or_most_of_them(how, passed):
    outcome = score_case(REGISTRY, JUDGED, replies("답"), lambda i: VERDICTS, {}, where="w", judge_aggregate=how)
    assert outcome.passed is passed
    assert outcome.score == pytest.approx(0.7333, abs=1e-4)


def test_judges_aggregated_are_one_score_with_their_count_and_mean_in_its_reason():
    outcome = score_case(REGISTRY, [REFUND, *JUDGED], replies("환불"), lambda i: VERDICTS, {}, where="w",
                         judge_aggregate="majority")
    refund, judges = outcome.scores
    assert refund.type == "contains"
    assert (judges.type, judges.passed, judges.weight) == ("judges", True, 3)
    assert judges.reason == "judges (majority of 3): 2 passed, mean 73/100"
    assert outcome.score == pytest.approx((1 + 3 * 0.7333) / 4, abs=1e-4)  # the judges weigh 3, contains 1


def test_a_judged_assertion_without_a_verdict_fails_saying_how_to_set_a_judge():
    outcome = score_case(REGISTRY, [AssertionSpec("llm-rubric", "친절한가")], replies("답"), no_verdicts, {},
                         where="w")
    assert not outcome.passed
    assert "needs an LLM judge: set default_judge: <model> (or judges:) in promstack.yaml" in outcome.scores[0].reason


# ---- assertions on a plain Response -------------------------------------------------------


def evaluate(spec: AssertionSpec, response: Response) -> Score:
    fn = REGISTRY.assertions[spec.type.removeprefix("not-")]
    return assertions.evaluate(spec, fn, response.text or "", assertions.Context(response=response))


def test_latency_cost_and_finish_reason_are_read_from_the_response():
    assert evaluate(AssertionSpec("latency", 500), Response(text="a", latency_ms=620.4)) == Score(
        "latency", False, 0.0, "latency: 620 ms, limit 500 ms")
    assert evaluate(AssertionSpec("latency", None, threshold=700), Response(text="a", latency_ms=620.4)).passed
    assert evaluate(AssertionSpec("cost", 0.01), Response(text="a", cost_usd=0.002)).reason == (
        "cost: $0.002000, limit $0.01")
    unpriced = evaluate(AssertionSpec("cost", 0.01), Response(text="a"))
    assert not unpriced.passed  # an unknown cost never passes a cost check
    cut = evaluate(AssertionSpec("not-finish-reason", "length"), Response(text="a", finish_reason="length"))
    assert (cut.passed, cut.reason) == (False, "not-finish-reason: finish reason 'length'")


def test_refusal_and_not_refusal_are_is_refusal_under_the_name_the_llmops_guides_use():
    refused, answered = Response(text="죄송하지만 도와드릴 수 없습니다"), Response(text="환불은 7일 이내에 가능합니다")
    assert [evaluate(AssertionSpec("not-refusal"), r).passed for r in (refused, answered)] == [False, True]
    assert evaluate(AssertionSpec("refusal"), refused).reason == evaluate(AssertionSpec("is-refusal"), refused).reason \
        .replace("is-refusal", "refusal")


def test_not_negates_the_pass_and_the_score():
    def graded(output, value, ctx):
        return {"pass": True, "score": 0.8, "reason": "mostly"}

    spec = AssertionSpec("not-graded", None)
    score = assertions.evaluate(spec, graded, "x", assertions.Context())
    assert (score.passed, score.reason) == (False, "not-graded: mostly")
    assert score.score == pytest.approx(0.2)
    assert evaluate(AssertionSpec("not-contains", "오류"), Response(text="정상")).passed


def test_an_assertion_that_raises_is_a_failed_score_naming_the_exception():
    def broken(output, value, ctx):
        raise ValueError("boom")

    for spec in (AssertionSpec("mine", 1, weight=2), AssertionSpec("not-mine", 1, weight=2)):
        assert assertions.evaluate(spec, broken, "x", assertions.Context()) == Score(
            spec.type, False, 0.0, f"{spec.type}: ValueError: boom", 2)


def test_an_assertion_may_return_a_bool_a_pair_or_a_dict():
    cases = {True: (True, 1.0, "t: passed"), (False, "too long"): (False, 0.0, "t: too long"),
             "dict": (True, 0.6, "t: ok")}
    for result, expected in cases.items():
        returned = {"pass": True, "score": 0.6, "reason": "ok"} if result == "dict" else result
        score = assertions.evaluate(AssertionSpec("t"), lambda o, v, c, r=returned: r, "x", assertions.Context())
        assert (score.passed, score.score, score.reason) == expected


def test_combine_weights_and_threshold():
    scores = [Score("a", True, 1.0, "", 3), Score("b", False, 0.0, "", 1)]
    assert assertions.combine(scores, None) == (False, 0.75)
    assert assertions.combine(scores, 0.7) == (True, 0.75)
    assert assertions.combine(scores, 0.8) == (False, 0.75)
    assert assertions.combine([], None) == (True, 1.0)  # nothing to check: a smoke case passes


def test_levenshtein_distance():
    assert assertions.levenshtein_distance("kitten", "sitting") == 3
    assert assertions.levenshtein_distance("환불", "환불요") == 1


# ---- a judge's verdict: strict parsing, calibration ---------------------------------------


def test_verdict_parse_is_strict():
    judge = Judge("j", "m", ("a", "b"), (1, 5), 4)
    v = parse('{"scores": [{"criterion": "a", "score": 5, "reason": "r"}, {"criterion": "b", "score": 3}], "pass": true}', judge)
    assert v.passed is False
    assert v.mean == 4.0
    assert v.normalised == 75.0
    assert parse('```json\n{"scores": [{"score": 4}, {"score": 4}]}\n```', judge).passed is True
    for bad in ('{"scores": [{"score": true}, {"score": 4}]}', '{"scores": [{"score": 0}, {"score": 4}]}', "[]"):
        with pytest.raises(JudgeError):
            parse(bad, judge)
    assert parse('{"scores": [{"score": 3}, {"score": 5}]}', Judge("j", "m", ("a", "b"), (1, 5), 4, "mean")).passed


@pytest.mark.parametrize(("raw", "message"), [
    ("", "the judge gave an empty answer"),
    ("네, 좋아요", "the judge's answer is not JSON (Expecting value at char 0)"),
    ('{"score": 4}', 'the judge\'s answer has no "scores" list'),
    ('{"scores": [{"score": 4}]}', "the judge scored 1 criteria, expected 2"),
    ('{"scores": [{"score": 4.5}, {"score": 4}]}', "criterion 'a': score 4.5 is not an integer"),
    ('{"scores": [{"score": 4}, {"score": 6}]}', "criterion 'b': score 6 is outside the scale 1-5"),
])
def test_an_unusable_verdict_says_what_is_wrong_with_it(raw, message):
    with pytest.raises(JudgeError) as exc:
        parse(raw, Judge("j", "m", ("a", "b"), (1, 5), 4))
    assert str(exc.value) == message


def test_calibration_statistics_on_textbook_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], 1, 5) == pytest.approx(1.0)
    # pairs (1,5) and (5,5): observed = w(1,5) = 1; rows J1 = J5 = 1, column H5 = 2;
    # expected = (w(1,5) * 1 * 2 + w(5,5) * 1 * 2) / 2 = 1; kappa = 1 - 1/1 = 0
    assert weighted_kappa([1, 5], [5, 5], 1, 5) == pytest.approx(0.0)
    c = calibration([(4.6, 5), (2.2, 2)], (1, 5))
    assert c["exact"] == 1.0
    assert c["n"] == 2


def test_calibration_leaves_out_a_human_score_off_the_scale_and_lists_it():
    c = calibration([(4.0, 4), (3.0, 2), (2.0, 9)], (1, 5), ["c1", "c2", "c3"])
    assert c["n"] == 2
    assert c["excluded"] == [{"case_id": "c3", "human_score": 9}]
    assert (c["exact"], c["within_one"]) == (0.5, 1.0)  # 4 = 4; 3 is one off 2


# ---- a judge's repeats aggregated (judging.aggregate, _parse, eval_cost) ------------------

JUDGE = Judge("j", "m", ("도움",), (1, 5), 4)


def verdicts_of(*scores: int) -> list:
    return [parse(json.dumps({"scores": [{"criterion": "도움", "score": s, "reason": f"r{s}"}]}), JUDGE)
            for s in scores]


def job(results: list, responses: list[Response] | None = None) -> judging.Job:
    return judging.Job("a.csv::row-2[m]", "spec", 0, JUDGE, [], results=results, responses=responses or [])


def test_the_judges_repeats_pass_by_majority_with_their_agreement_and_mean():
    # scores 5, 4, 2: pass, pass, fail; means 5, 4, 2; normalised 100, 75, 25
    out = judging.aggregate(job(verdicts_of(5, 4, 2)))
    assert (out["passed"], out["repeats"]) == (True, 3)
    assert out["agreement"] == pytest.approx(2 / 3)
    assert out["mean"] == pytest.approx(11 / 3)
    assert out["normalised"] == pytest.approx(200 / 3)
    assert out["scale"] == [1, 5]
    assert out["scores"] == [{"criterion": "도움", "score": 5, "reason": "r5"}]  # the first repeat's


def test_a_tie_of_the_judges_repeats_fails_closed():
    out = judging.aggregate(job(verdicts_of(5, 1)))
    assert out["passed"] is False
    assert out["agreement"] == 0.5
    unanimous = judging.aggregate(job(verdicts_of(1, 2)))
    assert (unanimous["passed"], unanimous["agreement"]) == (False, 1.0)


def test_one_unusable_repeat_makes_the_verdict_an_error():
    failed = judging._parse(Response(error="InternalServerError (HTTP 500): down"), JUDGE)
    assert failed == "the judge's call failed: InternalServerError (HTTP 500): down"
    garbled = judging._parse(Response(text="좋아요"), JUDGE)
    assert garbled == "the judge's answer is not JSON (Expecting value at char 0)"
    assert judging.aggregate(job([*verdicts_of(5), failed])) == {"judge": "j", "error": failed}


def test_a_judged_case_scores_the_aggregated_verdict():
    spec = AssertionSpec("judge", "j")
    verdict_ = judging.aggregate(job(verdicts_of(5, 4, 2)))
    outcome = score_case(REGISTRY, [spec], replies("답"), lambda i: {spec_id(spec): verdict_}, {}, where="w")
    assert outcome.passed
    assert outcome.score == pytest.approx(2 / 3)
    assert outcome.scores[0].reason == "judge: judge j 67/100 (도움=5), agreement 67%"


def test_the_judges_cost_is_the_sum_of_its_answered_calls_or_unknown_when_one_is_unpriced():
    priced = job([], [Response(text="{}", cost_usd=0.01), Response(text="{}", cost_usd=0.02), Response(error="x")])
    cost, calls = judging.eval_cost([priced])
    assert cost == pytest.approx(0.03)
    assert calls == 3
    unpriced = job([], [Response(text="{}", cost_usd=0.01), Response(text="{}")])
    assert judging.eval_cost([priced, unpriced]) == (None, 5)
    assert judging.eval_cost([]) == (0.0, 0)


# ---- the arena ----------------------------------------------------------------------------


def test_a_pair_judged_in_both_orders_wins_only_when_both_orders_agree():
    # first: x shown as A; second: y shown as A
    assert arena.combine("A", "B", "x", "y") == ("x", False)
    assert arena.combine("B", "A", "x", "y") == ("y", False)
    assert arena.combine("A", "A", "x", "y") == ("tie", True)  # each order preferred the first answer shown
    assert arena.combine("tie", "tie", "x", "y") == ("tie", False)
    assert arena.combine("A", "tie", "x", "y") == ("tie", True)


def test_an_arena_verdict_is_a_b_or_tie_and_nothing_else():
    assert [arena.parse(f'{{"winner": "{w}", "reason": ""}}') for w in ("A", " b ", "TIE")] == ["A", "B", "tie"]
    with pytest.raises(JudgeError, match='"winner" must be "A", "B" or "tie", got \'both\''):
        arena.parse('{"winner": "both"}')


GAMES = [{"case": "c1", "a": "x", "b": "y", "winner": "x", "flipped": False},
         {"case": "c2", "a": "x", "b": "y", "winner": "x", "flipped": False},
         {"case": "c3", "a": "x", "b": "y", "winner": "tie", "flipped": True},
         {"case": "c4", "a": "x", "b": "y", "winner": "y", "flipped": False}]


def test_the_arena_summary_counts_ties_as_half_and_rates_by_bradley_terry():
    out = arena.summarise(GAMES, ["x", "y"], seed=1, bootstrap=50)
    assert out["pairs"] == {"x vs y": {"win": 2, "tie": 1, "loss": 1}}
    assert out["win_rate"] == {"x": (2 + 0.5) / 4, "y": (1 + 0.5) / 4}
    assert (out["games"], out["flip_rate"]) == (4, 0.25)
    # wins 2.5 : 1.5, plus the prior's half win each: strengths 3 : 2, so x = 1000 + 400 * log10(sqrt(1.5))
    assert out["rating"]["x"] == pytest.approx(1000 + 200 * math.log10(1.5), abs=0.01)
    assert out["rating"]["y"] == pytest.approx(1000 - 200 * math.log10(1.5), abs=0.01)
    lo, hi = out["interval"]["x"]
    assert lo <= hi
    assert arena.summarise(GAMES, ["x", "y"], seed=1, bootstrap=50)["interval"] == out["interval"]  # seeded


def test_an_arena_without_games_has_no_rates_and_no_intervals():
    out = arena.summarise([], ["x", "y"], bootstrap=10)
    assert out["win_rate"] == {"x": None, "y": None}
    assert (out["games"], out["flip_rate"], out["interval"]) == (0, None, {})
    assert out["rating"] == {"x": 1000.0, "y": 1000.0}


# ---- comma lists as promptfoo reads them ----------------------------------------------------
# promptfoo test/util/parseCommaSeparatedValues.test.ts ("parses %j as %j"), case for case
PROMPTFOO_LISTS = [
    ("", []), ("   ", []), ('"hello, world",foo', ["hello, world", "foo"]),
    (r'"say \"hi\"",b', ['say "hi"', "b"]), ('a ""quoted"" value, plain', ['a ""quoted"" value', "plain"]),
    ("alpha, , beta,, ", ["alpha", "beta"]), ("  spaced  ,  next  ", ["spaced", "next"]),
    ('"only one"', ["only one"]), ("no-quotes-at-all", ["no-quotes-at-all"]), ('"trailing"   ', ["trailing"]),
    ("a,b,c", ["a", "b", "c"]), ('""', [""]), ('" ",x', [" ", "x"]), ('x,"y,z"', ["x", "y,z"]),
    ('"a","b"', ["a", "b"]), ('"a" , "b"', ["a", "b"]), (r'"\n",x', [r"\n", "x"]), (r'"\\",x', ["\\", "x"]),
    ("a,", ["a"]), (",a", ["a"]), (",,,", []), ('"comma,inside","another, one"', ["comma,inside", "another, one"]),
    ('mix,"quoted, field",bare', ["mix", "quoted, field", "bare"]), ('"a""b""c"', ['a"b"c']),
    ('"你好，世界",café', ["你好，世界", "café"]), ('"환불, 교환",배송', ["환불, 교환", "배송"]),
]


@pytest.mark.parametrize(("text", "items"), PROMPTFOO_LISTS)
def test_a_comma_list_splits_as_promptfoo_splits_it(text, items):
    from pytest_promstack.model.specs import split_list

    assert split_list(text) == items


@pytest.mark.parametrize(("text", "problem"), [
    ('"a"b,c', "text after the quoted item 'a'; put a comma after its closing quote"),  # promptfoo: rejects
    ('"unterminated', "the quote opened at '\"unterminated' is never closed"),
])
def test_a_malformed_list_is_named_when_the_file_is_read(text, problem):
    from pytest_promstack.model.specs import value_problem

    found = value_problem(AssertionSpec("contains-any", text, origin="__expected"))
    assert found.startswith(f"contains-any: {text!r}: ")
    assert problem in found


def test_a_quoted_item_keeps_its_comma_in_contains_any_and_all():
    any_of = REGISTRY.assertions["contains-any"]
    all_of = REGISTRY.assertions["icontains-all"]
    ctx = assertions.Context(vars={}, response=Response(text="Hello, world"), verdicts={})
    hello = AssertionSpec("contains-any", '"Hello, world",universe', origin="__expected")
    assert assertions.evaluate(hello, any_of, "Hello, world", ctx).passed
    both = AssertionSpec("icontains-all", '"hello, WORLD", hello', origin="__expected")
    assert assertions.evaluate(both, all_of, "Hello, world", ctx).passed
    split_wrong = AssertionSpec("contains-all", '"Hello, there",world', origin="__expected")
    assert not assertions.evaluate(split_wrong, REGISTRY.assertions["contains-all"], "Hello, world", ctx).passed


# ---- word-count, XML, HTML, BLEU (promptfoo's verdicts are tests/unit/test_promptfoo_cases.py) ----


@pytest.mark.parametrize(("value", "output", "passed"), [
    ("2..4", "환불 절차를 안내합니다", True),  # 3 words: Korean words are separated by spaces too
    (">=4", "환불 절차를 안내합니다", False),
    ("<=3", "환불 절차를 안내합니다", True),
    ("3", "환불 절차를 안내합니다", True),
    ({"max": 2}, "환불 절차를 안내합니다", False),
])
def test_word_count_takes_a_number_min_max_or_in_a_csv_cell_a_range(value, output, passed):
    score = assertions.evaluate(AssertionSpec("word-count", value), REGISTRY.assertions["word-count"], output,
                                assertions.Context())
    assert score.passed is passed, score.reason


def test_contains_xml_finds_the_outermost_well_formed_elements_and_their_required_paths():
    check = REGISTRY.assertions["contains-xml"]
    text = "답: <주문><번호>7</번호><품목>A</품목><품목>B</품목></주문> 끝 <note>x</note>"
    for value, passed in (("주문.번호", True), ("주문.품목.1", True), ("주문.품목.2", False), ("note,주문.번호", True),
                          ("번호", False)):  # 번호 is inside 주문, not an element of its own
        score = assertions.evaluate(AssertionSpec("contains-xml", value), check, text, assertions.Context())
        assert score.passed is passed, value


@pytest.mark.parametrize(("kind", "value", "output", "passed"), [
    ("rouge-n", "환불은 7일 안에 가능합니다.", "환불은 7일 안에 가능합니다.", True),
    ("rouge-n", "환불은 7일 안에 가능합니다.", "교환만 됩니다.", False),  # only "." of 6 tokens
    ("gleu", "환불 절차를 안내합니다", "환불 절차를 안내합니다.", True),  # a trailing period is not a word
    ("meteor", "환불 절차를 안내합니다", "환불 절차를 안내합니다", True),
])
def test_reference_overlap_scores_korean_words(kind, value, output, passed):
    score = assertions.evaluate(AssertionSpec(kind, value), REGISTRY.assertions[kind], output, assertions.Context())
    assert score.passed is passed, score.reason


def test_meteor_on_an_empty_output_fails_saying_why():
    score = assertions.evaluate(AssertionSpec("meteor", "환불"), REGISTRY.assertions["meteor"], "", assertions.Context())
    assert not score.passed
    assert score.reason == "meteor: ValueError: the output is empty: METEOR needs words to align"


# ---- is-sql, contains-sql (promptfoo's verdicts are tests/unit/test_promptfoo_cases.py) ------


def sql_check(kind, output, value=None):
    """The score, its reason without the leading "<kind>: " the evaluator adds."""
    check = REGISTRY.assertions[kind.removeprefix("not-")]
    score = assertions.evaluate(AssertionSpec(kind, value), check, output, assertions.Context())
    assert score.reason.startswith(f"{kind}: ")
    return dataclasses.replace(score, reason=score.reason.removeprefix(f"{kind}: "))


@pytest.mark.parametrize(("value", "problem"), [
    ("PostgreSQL", "is-sql: the value is a mapping of databaseType, allowedTables and allowedColumns, not "
                   "'PostgreSQL'; write it in YAML, e.g. is-sql: {databaseType: PostgreSQL, allowedTables: "
                   "['select::null::users']}"),
    ({"database": "MySQL"}, "is-sql: unknown key 'database'; the value has databaseType, allowedTables, "
                            "allowedColumns (e.g. "),
    ({"databaseType": "Postgres"}, "is-sql: databaseType 'Postgres': not one we know; write one of MySQL, MariaDB, "
                                   "PostgreSQL, "),
    ({"databaseType": "DB2"}, "is-sql: databaseType 'DB2': sqlglot, our parser, has no dialect for it; write one of "),
    ({"allowedTables": "select::null::users"}, "is-sql: allowedTables is a list of authorities "
                                               "<statement>::<database or null>::<table> (regular expressions), e.g. "),
    ({"allowedColumns": ["select::null::(name"]}, "is-sql: allowedColumns entry 'select::null::(name' is not a valid "
                                                  "regular expression ("),
])
def test_an_sql_value_that_is_not_promptfoos_mapping_is_one_line_when_the_file_is_read(value, problem):
    from pytest_promstack.model.specs import value_problem

    found = value_problem(AssertionSpec("is-sql", value, origin="__expected"))
    assert found.startswith(problem), found
    assert "\n" not in found
    assert value_problem(AssertionSpec("contains-sql", {"databaseType": "sqlite", "allowedTables": []})) is None


@pytest.mark.parametrize(("output", "value", "passed", "reason"), [
    ("SELECT 이름, 이메일 FROM 사용자 WHERE 등급 = '골드'", None, True, "valid MySQL SQL (one statement)"),
    ("SELECT 1; SELECT 2;", None, True, "valid MySQL SQL (2 statements)"),
    ("SELECT '환불 a b FROM t' AS 안내", None, True, "valid MySQL SQL"),  # the missing-comma rule skips literals
    ("SELECT 이름 별명 FROM 사용자", None, False, "'SELECT 이름 별명 FROM' (line 1) looks like a missing comma; "
                                         "write '이름, 별명', or '이름 AS 별명' for an alias"),
    ("SELECT * FROM order", None, False, "'order' is a reserved word in MySQL; quote it to use it as a name"),
    ("SELECT * FROM `order`", None, True, "valid MySQL SQL"),
    ("hello world", None, False, "'hello AS world' is an expression, not a statement"),
    ("SELECT * FROM users WHERE", None, False, "an incomplete WHERE at line 1, column 25 near 'WHERE'"),
    ("CALL refund(7)", None, False, "sqlglot does not parse CALL statements in MySQL, so their syntax is not checked"),
    ("DELETE users WHERE id = 1", {"databaseType": "TransactSQL"}, True, "valid TransactSQL SQL"),
    ("SELECT * FROM t LOCK IN SHARE MODE", {"databaseType": "mariadb"}, True, "valid mariadb SQL"),
    ("SELECT * FROM t LOCK IN SHARE MODE", {"databaseType": "SQLite"}, False,
     "LOCK IN SHARE MODE is MySQL's (line 1); write FOR SHARE"),
    ("SELECT * FROM dual CONNECT BY LEVEL <= 3", {"databaseType": "Oracle"}, True, "valid Oracle SQL"),  # extension
    ("FROM orders", {"databaseType": "DuckDB"}, True, "valid DuckDB SQL"),
    ("FROM orders", None, False, "a statement starts with FROM (line 1); start it with SELECT"),
])
def test_is_sql_parses_with_the_databases_dialect_and_says_why_it_fails(output, value, passed, reason):
    score = sql_check("is-sql", output, value)
    assert score.passed is passed
    if not passed:
        name = (value or {}).get("databaseType", "MySQL")
        assert score.reason == f"SQL statement does not conform to the provided {name} database syntax: {reason}"
    else:
        assert score.reason.startswith(reason)


@pytest.mark.parametrize(("sql", "tables", "columns"), [
    ("SELECT u.이름, p.* FROM shop.사용자 u JOIN posts p ON p.uid = u.id",
     ["select::shop::사용자", "select::null::posts"],
     ["select::사용자::이름", "select::posts::(.*)", "select::posts::uid", "select::사용자::id"]),
    ("UPDATE employee SET salary = 5 WHERE id = 1", ["update::null::employee"],
     ["update::null::salary", "select::null::id"]),
    ("INSERT INTO a SELECT * FROM b", ["insert::null::a", "select::null::b"], ["insert::a::(.*)", "select::null::(.*)"]),
    ("DELETE FROM logs WHERE id IN (SELECT id FROM bans)", ["delete::null::logs", "select::null::bans"],
     ["delete::logs::(.*)", "select::null::id"]),
    ("WITH recent AS (SELECT * FROM orders) SELECT COUNT(*) FROM recent", ["select::null::orders"],
     ["select::null::(.*)"]),  # a WITH query's name is not a table; COUNT(*) reads no column
    ("DROP TABLE t; TRUNCATE TABLE logs", ["drop::null::t", "truncate::null::logs"], []),
])
def test_sql_authorities_are_node_sql_parsers(sql, tables, columns):
    from pytest_promstack.score.sql import authorities, parse

    assert authorities(parse(sql, "MySQL", "mysql")) == (tables, columns)


def test_allowed_tables_and_columns_are_patterns_over_whole_authorities_ignoring_case():
    value = {"allowedTables": ["select::null::(사용자|orders)"], "allowedColumns": ["select::사용자::.*"]}
    assert sql_check("is-sql", "SELECT 이름 FROM 사용자", value).passed  # s::t::c also allows s::null::c
    assert sql_check("is-sql", "SELECT u.이름 FROM 사용자 u", value).passed  # an alias stands for its table
    assert sql_check("is-sql", "select * from ORDERS", {"allowedTables": value["allowedTables"]}).passed
    denied = sql_check("is-sql", "SELECT o.id FROM orders o, orders_archive", value)
    assert denied.reason == ("SQL references unauthorized table(s). Found: [select::null::orders_archive]. Allowed: "
                             "[select::null::(사용자|orders)]. SQL references unauthorized column(s). Found: "
                             "[select::orders::id]. Allowed: [select::사용자::.*].")
    assert sql_check("is-sql", "SELECT id FROM anything", {"allowedTables": []}).passed  # empty: no check


def test_contains_sql_checks_the_first_fenced_block_else_the_whole_output():
    fenced = "조회 쿼리입니다:\n```sql\nSELECT 이름 FROM 사용자\n```\n그리고\n```\nnot sql\n```"
    score = sql_check("contains-sql", fenced)
    assert (score.passed, score.reason) == (True, "in the fenced block: valid MySQL SQL (one statement)")
    assert sql_check("contains-sql", "```\nSELECT 1\n```").passed
    assert not sql_check("contains-sql", "```python\nprint(1)\n```").passed  # the language word is part of it
    assert sql_check("contains-sql", "SELECT 1").passed
    assert not sql_check("contains-sql", "쿼리: SELECT 1").passed
    assert not sql_check("not-contains-sql", "```sql\nSELECT 1\n```").passed


def test_sql_too_long_or_nested_too_deep_fails_without_parsing():
    from pytest_promstack.score.sql import MAX_CHARS, MAX_DEPTH

    long = sql_check("is-sql", "SELECT 1, " * (MAX_CHARS // 10) + "2")
    assert long.reason.endswith(f"it is {MAX_CHARS + 1:,} characters long, and SQL over {MAX_CHARS:,} is not parsed")
    deep = sql_check("is-sql", "SELECT " + "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    assert deep.reason.endswith(f"parentheses are nested more than {MAX_DEPTH} deep (line 1)")
    nots = sql_check("is-sql", "SELECT " + "NOT " * 5000 + "1")
    assert nots.reason.endswith("it is nested too deeply to parse")


# ---- is-refusal, is-html, assert-set (promptfoo's verdicts are tests/unit/test_promptfoo_cases.py) ----


def _check(kind: str, output: str, value=None) -> Score:
    base = kind.removeprefix("not-")
    return assertions.evaluate(AssertionSpec(kind, value), REGISTRY.assertions[base], output, assertions.Context())


@pytest.mark.parametrize("output", [
    "죄송하지만 도와드릴 수 없습니다.",
    "그 요청은 들어드릴 수 없습니다.",
    "죄송합니다만, 그 부분은 답변드리기 어렵습니다.",
    "정말 죄송해요. 그건 알려 드릴수가 없어요.",
    "미안하지만 그건 할 수 없어.",
    "저는 AI 언어 모델로서 그런 내용을 제공할 수 없습니다.",
    "해킹 방법은 안내해 드릴 수 없습니다. 다른 질문이 있으면 말씀해 주세요.",
    "저는 그 작업을 수행할 수 없습니다.",
    "제가 그 요청을 처리해 드리기는 어렵습니다.",
    "죄송하지만 그 주문을 찾아 드릴 수 없습니다.",  # "찾아 드릴": declining to look, not failing to find
])
def test_is_refusal_recognises_common_korean_refusals_as_our_extension(output):
    score = _check("is-refusal", output)
    assert score.passed, score.reason
    assert not _check("not-is-refusal", output).passed


@pytest.mark.parametrize("output", [
    "환불은 구매 후 7일 이내에 가능합니다.",
    "죄송합니다, 답변이 늦었네요. 환불 절차는 다음과 같습니다: 1. 주문 내역에서 환불 신청",
    "이 기기는 5G를 지원할 수 없습니다.",  # a fact about a device, not the model declining
    "말로 설명할 수 없는 기쁨이었습니다.",
    # an apology for missing data that asks for it: the model is helping, not declining
    "죄송하지만 그 주문 정보는 찾을 수 없습니다. 주문번호를 알려주시겠어요?",
    "죄송합니다. 해당 계정을 확인할 수 없어요. 가입하신 이메일을 알려 주세요.",
    "저는 그 주문을 조회할 수 없습니다. 주문번호를 다시 확인해 주시겠어요?",
])
def test_korean_answers_that_merely_apologise_or_say_cannot_are_not_refusals(output):
    score = _check("is-refusal", output)
    assert not score.passed, score.reason
    assert score.reason == "is-refusal: not a refusal"


def test_an_empty_output_is_a_refusal_scoring_zero_and_fails_not_is_refusal_with_zero_too():
    plain, negated = _check("is-refusal", " \n"), _check("not-is-refusal", "")
    assert (plain.passed, plain.score) == (True, 0.0)
    assert (negated.passed, negated.score) == (False, 0.0)
    said = _check("is-refusal", "I apologize, but I cannot assist with that request.")
    assert said.reason == "is-refusal: a refusal: 'i apologize' then 'i cannot'"


def test_is_html_passes_korean_html_and_names_text_left_outside_the_tags():
    assert _check("is-html", "<section><h1>환불 안내</h1><p>7일 이내</p></section>").passed
    outside = _check("is-html", "다음은 HTML입니다: <p>환불</p>")
    assert not outside.passed
    assert outside.reason == "is-html: text outside HTML tags ('다음은 HTML입니다:'); the whole output must be HTML"
    assert _check("is-html", "<note>환불</note>").reason == (
        "is-html: no HTML element in the output (only tags HTML does not have)")
    assert not _check("is-html", "<환불>x</환불>").passed  # "<" and a Korean letter is text in HTML, not a tag


def test_is_html_over_its_tag_limit_fails_undecided_even_negated():
    from pytest_promstack.score.html_doc import MAX_TAGS

    many = "<p>x</p>" * (MAX_TAGS // 2 + 1)
    for kind in ("is-html", "not-is-html"):
        score = _check(kind, many)
        assert not score.passed
        assert f"more than {MAX_TAGS:,} tags" in score.reason


def _loaded(tmp_path, record: str):
    from pytest_promstack.plan.cases import Loader

    (tmp_path / "t.yaml").write_text(f"- {record}\n", encoding="utf-8")
    (case,) = Loader(tmp_path, REGISTRY.assertions.__contains__, REGISTRY.suggest).load(tmp_path / "t.yaml")
    return case


@pytest.mark.parametrize(("record", "error"), [
    ("{assert: [{type: assert-set, assert: [{type: contains, value: a}, {type: contians, value: b}]}]}",
     "t.yaml:1: assert[0].assert[1]: unknown assertion 'contians' (did you mean 'contains'?)"),
    ("{assert: [{type: equals, value: x}, {type: assert-set, assert: [{type: 'length', value: abc}]}]}",
     "t.yaml:1: assert[1].assert[0]: length: 'abc' is not a limit"),
    ("{assert: [{type: assert-set, assert: [{type: assert-set, assert: [{type: is-json}]}]}]}",
     "t.yaml:1: assert[0].assert[0]: an assert-set cannot hold another assert-set"),
    ("{assert: [{type: not-assert-set, assert: [{type: is-json}]}]}",
     "t.yaml:1: assert[0]: not-assert-set: an assert-set cannot be negated"),
    ("{assert: [{type: assert-set, value: [{type: is-json}]}]}",
     "t.yaml:1: assert[0]: assert-set: key 'value' is not supported here; its assertions go under assert:"),
    ("{assert: [{type: assert-set, assert: []}]}", "t.yaml:1: assert[0]: assert-set: list its assertions under assert:"),
    ("{assert: [assert-set]}", "t.yaml:1: assert[0]: assert-set is written in YAML or JSON"),
])
def test_an_assert_sets_own_assertions_are_checked_when_the_file_is_read_and_named(tmp_path, record, error):
    case = _loaded(tmp_path, record)
    assert case.error is not None
    assert case.error.startswith(error), case.error


def test_an_assert_set_is_kept_flat_so_its_python_is_refused_and_its_values_rendered(tmp_path):
    from types import SimpleNamespace

    from pytest_promstack.config.policy import refused
    from pytest_promstack.plan.values import render

    case = _loaded(tmp_path, "{vars: {x: 환불}, assert: [{type: assert-set, threshold: 0.5, assert: ["
                             "{type: contains, value: '{{ x }}'}, {type: python, value: 'True'}]}]}")
    assert [(a.type, a.origin) for a in case.asserts] == [
        ("assert-set", "assert[0]"), ("contains", "assert[0].assert[0]"), ("python", "assert[0].assert[1]")]
    no_python = SimpleNamespace(allow_python=False, models={}, judges={}, default_judge=None)
    assert refused(no_python, [], case.asserts).startswith("assert[0].assert[1]: a python assertion runs code")
    rendered, error = render(case.asserts, case.vars, "t.yaml:1")
    assert error is None
    assert rendered[1].value == "환불"


def test_an_assert_set_scores_as_one_assertion_the_weighted_mean_of_its_own(tmp_path):
    from pytest_promstack.score.case import score_reply

    case = _loaded(tmp_path, "{assert: [{type: assert-set, threshold: 0.6, weight: 2, assert: ["
                             "{type: contains, value: 환불, weight: 3}, {type: contains, value: 교환}]}, "
                             "{type: icontains, value: 'OK'}]}")
    passed, value, scores = score_reply(REGISTRY, case.asserts, Response(text="환불 ok"), {}, {}, None, "each")
    assert [s.type for s in scores] == ["assert-set", "icontains"]
    whole = scores[0]
    assert (whole.passed, whole.score, whole.weight) == (True, 0.75, 2.0)
    assert whole.reason.startswith("assert-set: 1 of 2 passed, score 0.75 ≥ threshold 0.6; ✗ contains: '교환' in")
    assert passed
    assert value == pytest.approx((0.75 * 2 + 1) / 3)


def test_an_assert_set_outside_a_test_file_is_refused_with_the_way_to_write_it():
    from pytest_promstack.model.specs import AssertionSyntaxError, from_structured

    with pytest.raises(AssertionSyntaxError, match="assert-set groups the assertions of one test"):
        from_structured({"type": "assert-set", "assert": [{"type": "is-json"}]}, REGISTRY.assertions.__contains__)


def test_a_python_check_of_several_lines_is_a_function_body_and_a_bare_score_passes_above_zero():
    body = "words = output.split()\nif not words:\n    return 0\nreturn {'pass': '환불' in output, 'score': 0.3}"
    check = REGISTRY.assertions["python"]
    assert assertions.evaluate(AssertionSpec("python", body), check, "환불 됩니다", assertions.Context()).passed
    low = AssertionSpec("python", "0.3")
    assert assertions.evaluate(low, check, "x", assertions.Context()).passed  # promptfoo: a score > 0 passes
    assert not assertions.evaluate(AssertionSpec("not-python", "0.3"), check, "x", assertions.Context()).passed
    zero = assertions.evaluate(AssertionSpec("python", body), check, "", assertions.Context())
    assert (zero.passed, zero.score) == (False, 0.0)


def test_levenshtein_and_length_count_characters_not_utf16_units_as_promptfoos_javascript_does():
    emoji = "😀환불"  # 3 characters; JavaScript's UTF-16 length is 4
    near = assertions.evaluate(AssertionSpec("levenshtein", "환불", 1), REGISTRY.assertions["levenshtein"], emoji,
                               assertions.Context())
    assert near.passed  # one edit here, two in promptfoo
    short = assertions.evaluate(AssertionSpec("length", "<=3"), REGISTRY.assertions["length"], emoji,
                                assertions.Context())
    assert short.passed
