"""Unit tests of the pure modules: cache keys, prompts, cases, assertion parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promstack.execute.cache import DiskCache
from pytest_promstack.execute.stored import cacheable
from pytest_promstack.model.errors import CaseError, TemplateError
from pytest_promstack.model.specs import AssertionSyntaxError, parse_shorthand
from pytest_promstack.model.types import Response
from pytest_promstack.plan.cases import Loader
from pytest_promstack.plan.prompts import from_mapping
from pytest_promstack.plan.requests import cache_key
from pytest_promstack.score import assertions
from pytest_promstack.score.registry import builtin_registry

MSGS = [{"role": "user", "content": "환불하고 싶어요"}]


def test_cache_key_is_stable_and_ignores_timeouts_and_keys():
    base = cache_key("openai/m", MSGS, {"temperature": 0, "max_tokens": 10})
    assert base == cache_key("openai/m", MSGS, {"max_tokens": 10, "temperature": 0})
    assert base == cache_key("openai/m", MSGS, {"temperature": 0, "max_tokens": 10, "timeout": 5, "api_key": "k"})
    assert len(base) == 64


@pytest.mark.parametrize("change", [
    {"model": "openai/other"},
    {"messages": [{"role": "user", "content": "환불할래요"}]},
    {"params": {"temperature": 0.7, "max_tokens": 10}},
    {"params": {"temperature": 0, "max_tokens": 10, "seed": 1}},
    {"params": {"temperature": 0, "max_tokens": 10, "stop": ["\n"]}},
    {"params": {"temperature": 0, "max_tokens": 10, "response_format": {"type": "json_object"}}},
    {"api_base": "http://127.0.0.1:1/v1"},
])
def test_cache_key_changes_with_anything_that_changes_the_answer(change):
    args = {"model": "openai/m", "messages": MSGS, "params": {"temperature": 0, "max_tokens": 10}, "api_base": None}
    assert cache_key(**args) != cache_key(**{**args, **change})


def test_disk_cache_round_trip_is_json_skips_errors_keeps_truncated_answers(tmp_path):
    warnings = []
    cache = DiskCache(tmp_path / "c", warnings.append)
    cache.set("k", Response(text="환불", input_tokens=3, output_tokens=1, cost_usd=0.5, latency_ms=12.0))
    cache.set("e", Response(error="boom"))
    cache.set("t", Response(text="cut", finish_reason="length"))
    got = cache.get("k")
    assert got.text == "환불"
    assert got.input_tokens == 3
    assert got.cost_usd == 0.5
    assert cache.get("e") is None
    assert cache.get("t").finish_reason == "length"  # what this request returns: cached, marked
    raw = cache._cache.get("k")
    assert isinstance(raw, str)
    assert '"text": "환불"' in raw
    assert not cacheable(Response(text=None))
    cache.close()
    assert warnings == []


def test_prompt_version_changes_with_content_not_with_id():
    a = from_mapping({"id": "a", "template": "{{ input }}"}, "x", "a")
    b = from_mapping({"id": "b", "template": "{{ input }}"}, "x", "b")
    c = from_mapping({"id": "a", "template": "{{ input }}!"}, "x", "a")
    assert a.version == b.version != c.version
    assert len(a.version) == 8


def test_prompt_render_strict_undefined_names_variable():
    p = from_mapping({"id": "p", "messages": [{"role": "system", "content": "상담원"},
                                              {"role": "user", "content": "{{ input }} {{ user.name }}"}]},
                     "prompts/p.yaml", "p")
    with pytest.raises(TemplateError, match=r"'input' is undefined in prompts/p\.yaml"):
        p.render({})
    with pytest.raises(TemplateError, match="'name' is undefined"):
        p.render({"input": "x", "user": {}})
    assert p.render({"input": "환불", "user": {"name": "김"}}, prefix="[", suffix="]")[-1]["content"] == "[환불 김]"


def test_prompt_file_shape_errors():
    with pytest.raises(CaseError, match="exactly one of template: or messages:"):
        from_mapping({"id": "p"}, "p.yaml", "p")
    with pytest.raises(CaseError, match=r"messages\[0\]: needs role: and content:"):
        from_mapping({"messages": [{"content": "x"}]}, "p.yaml", "p")


def _loader(tmp_path: Path) -> Loader:
    reg = builtin_registry()
    return Loader(tmp_path, reg.assertions.__contains__, reg.suggest)


def test_loader_reads_conventions(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("input,__expected,__expected2,__description,__metadata:topic,__metadata:tags[],__threshold,__marks\n"
                 "환불,icontains:환불,levenshtein(3):환불,설명,refund,\"a, b\",0.5,slow; xfail: 이유\n",
                 encoding="utf-8")
    (case,) = _loader(tmp_path).load(f)
    assert case.vars == {"input": "환불"}
    assert [a.type for a in case.asserts] == ["icontains", "levenshtein"]
    assert case.asserts[1].threshold == 3
    assert case.description == "설명"
    assert case.row == 2
    assert case.metadata == {"topic": "refund", "tags": ["a", "b"]}
    assert case.threshold == 0.5
    assert case.marks == ("slow", "xfail: 이유")


def test_loader_row_numbers_follow_file_lines_with_multiline_cells(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('input,__expected\n"two\nlines",contains:two\nthird,contains:third\n', encoding="utf-8")
    cases = _loader(tmp_path).load(f)
    assert [c.row for c in cases] == [2, 4]


def test_unreadable_file_raises_case_error(tmp_path):
    with pytest.raises(CaseError, match="unknown test file type"):
        _loader(tmp_path).load(tmp_path / "a.txt")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(CaseError, match="is empty"):
        _loader(tmp_path).load(tmp_path / "e.csv")


@pytest.mark.parametrize(("text", "type_", "value"), [
    ("contains:a:b", "contains", "a:b"),
    ("Paris", "equals", "Paris"),
    ("환불: 가능", "equals", "환불: 가능"),
    ("is-json", "is-json", None),
    ("not-regex:^x", "not-regex", "^x"),
])
def test_shorthand_parsing(text, type_, value):
    spec = parse_shorthand(text, builtin_registry().assertions.__contains__)
    assert (spec.type, spec.value) == (type_, value)


def test_shorthand_unknown_type_raises():
    with pytest.raises(AssertionSyntaxError):
        parse_shorthand("contians:x", builtin_registry().assertions.__contains__)


def test_levenshtein_distance():
    assert assertions.levenshtein_distance("kitten", "sitting") == 3
    assert assertions.levenshtein_distance("환불", "환불요") == 1


def test_combine_weights_and_threshold():
    from pytest_promstack.model.types import Score

    scores = [Score("a", True, 1.0, "", 3), Score("b", False, 0.0, "", 1)]
    assert assertions.combine(scores, None) == (False, 0.75)
    assert assertions.combine(scores, 0.7) == (True, 0.75)
    assert assertions.combine(scores, 0.8) == (False, 0.75)


def test_parse_retry_after_forms():
    from email.utils import formatdate

    from pytest_promstack.execute.retry_after import parse_retry_after

    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 8 <= parse_retry_after({"retry-after": formatdate(__import__("time").time() + 10, usegmt=True)}) <= 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None


def test_limiter_halves_on_429_and_recovers():
    import asyncio

    from pytest_promstack.execute.engine import Limiter

    async def scenario():
        lim = Limiter(8)
        await lim.acquire()
        await lim.release(throttled=True)
        assert lim.limit == 4
        await lim.acquire()
        await lim.release(throttled=True)
        assert lim.limit == 2
        for _ in range(2 + 3 + 4 + 5 + 6 + 7):
            await lim.acquire()
            await lim.release(throttled=False)
        assert lim.limit == 8

    asyncio.run(scenario())


def test_call_log_lines_are_whole_under_concurrent_writers(tmp_path):
    import json
    import threading

    from pytest_promstack.execute.calllog import CallLog

    log = CallLog(tmp_path / "calls.jsonl", "run1", "me")
    threads = [threading.Thread(target=lambda i=i: [log.write(case_id=f"c{i}-{j}", error="x" * 5000)
                                                   for j in range(50)]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(lines) == 400
    assert all(json.loads(line)["run_id"] == "run1" for line in lines)


def test_a_torn_call_log_tail_is_skipped_by_the_reader_and_the_next_writer_starts_a_new_line(tmp_path):
    from pytest_promstack.execute.calllog import CallLog, read

    path = tmp_path / "calls.jsonl"
    path.write_text('{"run_id": "old", "status": "ok"}\n{"run_id": "killed", "sta', encoding="utf-8")
    log = CallLog(path, "run2", "me")
    log.write(case_id="c1")
    log.close()
    warnings: list[str] = []
    records = read(path, warnings.append)
    assert [r["run_id"] for r in records] == ["old", "run2"]  # the new line is whole, the torn one skipped
    assert warnings == [f"{path}:2: not a whole call record (a run killed mid-write?); skipped"]


def test_percentiles_match_linear_interpolation():
    from pytest_promstack.results.metrics import percentile

    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    assert percentile(values, 0.5) == 30.0
    assert percentile(values, 0.95) == pytest.approx(40 + 0.8 * 60)  # rank 0.95 * 4 = 3.8
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def test_summary_groups_and_totals():
    from pytest_promstack.results.metrics import summarise

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


def test_calibration_statistics_on_textbook_cases():
    from pytest_promstack.score.judges import calibration, spearman, weighted_kappa

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


def test_verdict_parse_is_strict():
    from pytest_promstack.config.judges import Judge
    from pytest_promstack.model.errors import JudgeError
    from pytest_promstack.score.judges import parse

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
