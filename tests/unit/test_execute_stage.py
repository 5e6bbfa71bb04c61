"""The execute stage on plain data: requests in, responses out. The disk cache, cassettes, the
call log, Retry-After, the AIMD limiter, pricing, and the engine itself against the loopback
OpenAI-compatible server (tests/support/fake_openai.py): no pytest run, no subprocess."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from email.utils import formatdate

import pytest

from pytest_promstack.config.settings import load_settings
from pytest_promstack.execute import cassettes
from pytest_promstack.execute.cache import DiskCache
from pytest_promstack.execute.calllog import CallLog, read
from pytest_promstack.execute.engine import Limiter, open_engine
from pytest_promstack.execute.pricing import price, priced
from pytest_promstack.execute.retry_after import parse_retry_after
from pytest_promstack.execute.stored import cacheable
from pytest_promstack.model.types import Request, Response
from pytest_promstack.plan.requests import cache_key
from tests.support.fake_openai import FakeOpenAI

PRICES = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def request(content: str, *, model: str = "m", api_base: str | None = "http://127.0.0.1:9/v1",
            params: dict | None = None, meta: dict | None = None, litellm_model: str | None = None) -> Request:
    messages = ({"role": "user", "content": content},)
    params = {"temperature": 0, "max_tokens": 16, **PRICES} if params is None else params
    litellm_model = litellm_model or f"openai/{model}"
    return Request(model=model, litellm_model=litellm_model, messages=messages, params=params,
                   key=cache_key(litellm_model, list(messages), params, api_base), api_base=api_base, timeout=10,
                   meta=meta or {})


# ---- the disk cache -----------------------------------------------------------------------


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


def test_a_disk_cache_survives_a_reopen_and_marks_its_folder_as_a_cache(tmp_path):
    first = DiskCache(tmp_path / "c", print)
    first.set("k", Response(text="저장됨", output_tokens=2))
    first.close()
    again = DiskCache(tmp_path / "c", print)
    assert again.get("k") == Response(text="저장됨", output_tokens=2)  # cached=False as stored: the engine marks hits
    assert again.get("other") is None
    again.close()
    assert (tmp_path / "c/CACHEDIR.TAG").read_text(encoding="utf-8").startswith("Signature: 8a477f597d28d172789f")
    assert (tmp_path / "c/.gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"



@pytest.mark.parametrize("statistics", [False, True])
def test_reading_many_keys_at_once_gives_what_reading_each_gives(tmp_path, statistics):
    # a warm run reads its rows in bulk; every row must come out (or be refused, with the same
    # one warning) exactly as get reads it, and a cache that counts its reads is read key by key
    warnings = []
    cache = DiskCache(tmp_path / "c", warnings.append)
    cache._cache.reset("statistics", statistics)
    for i in range(1200):  # more than one query's worth
        cache.set(f"k{i}", Response(text=f"답 {i}", output_tokens=i))
    cache.set("big", Response(text="가" * 40_000))  # from 32 KiB in a value file of its own
    cache._cache.set("foreign", json.dumps({"text": 1}))
    cache._cache.set("pickled", {"not": "json"})
    cache._cache.set("expired", json.dumps({"text": "old"}), expire=60)
    cache._cache.set("elsewhere", "x")
    with cache._cache.transact():
        cache._cache._sql("UPDATE Cache SET expire_time = 1 WHERE key = 'expired'")
        cache._cache._sql("UPDATE Cache SET mode = 3, filename = '/etc/hostname', value = NULL "
                          "WHERE key = 'elsewhere'")
    keys = [f"k{i}" for i in range(1200)] + ["big", "foreign", "pickled", "expired", "elsewhere", "absent", "k5"]
    one_by_one = {k: hit for k in keys if (hit := cache.get(k)) is not None}
    said = list(warnings)
    warnings.clear()
    cache._warned.clear()
    assert cache.get_many(keys) == one_by_one
    assert sorted(warnings) == sorted(said)
    assert len(one_by_one) == 1201
    assert one_by_one["k7"] == Response(text="답 7", output_tokens=7)
    assert len(said) == 3  # not ours, pickled, a foreign file: one warning each, and a miss
    hits, misses = cache._cache.stats()  # read key by key: every read counted (a repeated key once in bulk)
    assert (hits, misses) == ((1203 + 1202, 2 + 2) if statistics else (0, 0))
    cache.close()


# ---- cassettes ----------------------------------------------------------------------------


def test_a_cassette_entry_holds_the_request_and_tokens_but_a_models_cost_is_left_to_the_price():
    req = request("환불", meta={"suite": "s"})
    resp = Response(text="네", input_tokens=4, output_tokens=1, cost_usd=0.9, latency_ms=5.5, finish_reason="stop")
    e = cassettes.entry("a.csv::row-2[m]", req, resp)
    assert e == {"case": "a.csv::row-2[m]", "key": req.key, "model": "openai/m",
                 "request": {"messages": [{"role": "user", "content": "환불"}], "params": req.params},
                 "response": "네", "finish_reason": "stop", "usage": {"input_tokens": 4, "output_tokens": 1},
                 "latency_ms": 5.5}
    app = request("환불", model="app", litellm_model="python:app:answer", api_base=None)
    assert cassettes.entry("c", app, resp)["cost_usd"] == 0.9  # what the application reported about itself


def test_a_written_cassette_replays_its_answer_to_the_same_request(tmp_path):
    req = request("환불")
    path = cassettes.write(tmp_path / "cassettes", "환불 suite",
                           [cassettes.entry("a.csv::row-2[m]", req, Response(text="네", input_tokens=4,
                                                                             output_tokens=1, latency_ms=5.5))], None)
    assert path == tmp_path / "cassettes" / "환불%20suite.jsonl"  # Korean kept, the space escaped
    assert [e["key"] for e in cassettes.read(path)] == [req.key]
    loaded = cassettes.load(tmp_path / "cassettes", ["환불 suite"])
    assert loaded.answer(req) == Response(text="네", input_tokens=4, output_tokens=1, latency_ms=5.5,
                                          finish_reason="stop")


def test_a_cassette_line_edited_under_its_old_key_answers_with_an_error_naming_the_line(tmp_path):
    req = request("환불")
    path = cassettes.write(tmp_path / "cassettes", "s", [cassettes.entry("c", req, Response(text="네"))], None)
    edited = json.loads(path.read_text(encoding="utf-8"))
    edited["request"]["messages"][0]["content"] = "배송"
    path.write_text(json.dumps(edited, ensure_ascii=False) + "\n", encoding="utf-8")
    answer = cassettes.load(tmp_path / "cassettes", ["s"]).answer(req)
    assert answer.error == ("cassettes/s.jsonl:1: its request does not match its key (request.messages differ from "
                            "the request this case makes); record the case again with --promstack-record (or fix "
                            "the line)")
    assert answer.retry is False
    assert cassettes.load(tmp_path / "cassettes", ["s"], record=True).answer(req) is None  # recording: call again
    other_params = request("환불", params={"temperature": 1, "max_tokens": 16, **PRICES})
    assert cassettes.mismatch(edited, other_params) == "request.messages differ from the request this case makes"
    assert cassettes.mismatch(cassettes.entry("c", req, Response(text="네")), other_params) == (
        "request.params differ from the request this case makes")
    # what the key leaves out (a timeout, the prices) does not make a mismatch either
    timed = request("환불", params={"temperature": 0, "max_tokens": 16, "timeout": 3})
    assert cassettes.mismatch(cassettes.entry("c", req, Response(text="네")), timed) is None


def test_a_cassette_entry_of_wrong_types_answers_with_an_error_and_is_left_out_when_recording(tmp_path):
    req = request("환불")
    bad = {**cassettes.entry("c", req, Response(text="네")), "usage": {"input_tokens": -1, "output_tokens": 1}}
    (tmp_path / "cassettes").mkdir()
    (tmp_path / "cassettes/s.jsonl").write_text("not json\n" + json.dumps(bad) + "\n", encoding="utf-8")
    warnings: list[str] = []
    loaded = cassettes.load(tmp_path / "cassettes", ["s"], warn=warnings.append)
    assert loaded.answer(req).error == ("cassettes/s.jsonl:2: input_tokens -1 is not a whole number of tokens; "
                                        "record the case again with --promstack-record (or fix the line)")
    assert warnings == ["cassettes/s.jsonl:1: not a cassette entry (JSON with a 'key'); skipped"]
    assert req.key not in cassettes.load(tmp_path / "cassettes", ["s"], record=True)


def test_recording_replaces_the_cases_that_ran_drops_deleted_ones_and_keeps_files_not_collected(tmp_path):
    folder = tmp_path / "cassettes"
    old = [{"case": "a.csv::row-2[m]", "key": "k1"}, {"case": "a.csv::row-3[m]", "key": "k2"},
           {"case": "b.csv::row-2[m]", "key": "k3"}]
    cassettes.write(folder, "s", old, None)
    path = cassettes.write(folder, "s", [{"case": "a.csv::row-2[m]", "key": "k4"}], {"a.csv::row-2[m]"})
    assert [(e["case"], e["key"]) for e in cassettes.read(path)] == [("a.csv::row-2[m]", "k4"),
                                                                      ("b.csv::row-2[m]", "k3")]


def test_a_suite_name_can_never_lead_out_of_the_cassettes_folder(tmp_path):
    assert cassettes.file_name("../../x") == "..%2F..%2Fx.jsonl"
    assert cassettes.path_for(tmp_path, "a/b").parent == tmp_path


# ---- the call log -------------------------------------------------------------------------


def test_call_log_lines_are_whole_under_concurrent_writers(tmp_path):
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
    path = tmp_path / "calls.jsonl"
    path.write_text('{"run_id": "old", "status": "ok"}\n{"run_id": "killed", "sta', encoding="utf-8")
    log = CallLog(path, "run2", "me")
    log.write(case_id="c1")
    log.close()
    warnings: list[str] = []
    records = read(path, warnings.append)
    assert [r["run_id"] for r in records] == ["old", "run2"]  # the new line is whole, the torn one skipped
    assert warnings == [f"{path}:2: not a whole call record (a run killed mid-write?); skipped"]


def test_a_call_record_has_every_field_in_order_and_keeps_itself_out_of_git(tmp_path):
    path = tmp_path / ".promstack/calls.jsonl"
    log = CallLog(path, "run1", "김")
    log.write(suite="s", case_id="c", model="m", input_tokens=3, status="ok")
    log.close()
    (record,) = read(path)
    assert list(record)[:5] == ["timestamp", "run_id", "kind", "suite", "case_id"]
    assert (record["run_id"], record["kind"], record["user_id"], record["input_tokens"]) == ("run1", "model", "김", 3)
    assert record["cost_usd"] is None  # every field present, unknown ones null
    assert (tmp_path / ".promstack/.gitignore").read_text(encoding="utf-8") == "calls.jsonl\n"


# ---- Retry-After and the limiter ----------------------------------------------------------


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 8 <= parse_retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after({"retry-after": "-5"}) == 0.0  # never a negative wait


def test_limiter_halves_on_429_and_recovers():
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


def test_limiter_never_drops_below_one_call_in_flight():
    async def scenario():
        lim = Limiter(2)
        for _ in range(5):
            await lim.acquire()
            await lim.release(throttled=True)
        return lim.limit

    assert asyncio.run(scenario()) == 1


# ---- pricing ------------------------------------------------------------------------------


def test_an_answer_is_priced_from_its_tokens_and_the_models_own_prices():
    req = request("q")
    # 1000 input tokens * 0.001 + 500 output tokens * 0.002 = 1 + 1 USD
    assert priced(req, Response(text="a", input_tokens=1000, output_tokens=500)).cost_usd == pytest.approx(2.0)
    assert priced(req, Response(text="a", input_tokens=1000, output_tokens=None)).cost_usd == pytest.approx(1.0)
    assert priced(req, Response(text="a")).cost_usd is None  # no token counts: unknown, never 0
    assert priced(req, Response(error="boom", cost_usd=None)).cost_usd is None


def test_who_prices_a_model_params_first_local_free_python_its_own_unknown_none():
    assert price("openai/anything", PRICES) == (0.001, 0.002)
    assert price("local/gemma-3-270m", {}) == (0.0, 0.0)
    assert price("openai/no-such-model-promstack", {}) is None
    assert price("openai/m", {"input_cost_per_token": float("inf"), "output_cost_per_token": 0}) is None
    app = request("q", model="app", litellm_model="python:app:answer", api_base=None, params={})
    assert priced(app, Response(text="a", input_tokens=10, cost_usd=0.25)).cost_usd == 0.25  # kept as reported


# ---- the engine against the loopback server ---------------------------------------------


@pytest.fixture
def server():
    with FakeOpenAI(replies={"환불": "환불 가능합니다"}, faults={"broken": 503, "bad": 400}) as fake:
        yield fake


def settings_for(tmp_path, **options):
    (tmp_path / "promstack.yaml").write_text("max_retries: 2\nretry_backoff: 0\nconcurrency: 4\n", encoding="utf-8")
    return load_settings(tmp_path, options)


def run(engine, *reqs):
    engine.submit(reqs)
    return [engine.result(r, timeout=20) for r in reqs]


def test_the_engine_answers_a_request_with_its_text_tokens_and_price(tmp_path, server):
    engine = open_engine(settings_for(tmp_path), "run1", print)
    try:
        (resp,) = run(engine, request("환불", api_base=server.url))
    finally:
        engine.shutdown()
    assert resp.text == "환불 가능합니다"
    assert (resp.input_tokens, resp.output_tokens) == (1, 2)  # the fake counts words
    assert resp.cost_usd == pytest.approx(1 * 0.001 + 2 * 0.002)
    assert (resp.cached, resp.error, resp.attempts, resp.finish_reason) == (False, None, 1, "stop")
    assert server.requests[0]["model"] == "m"
    assert "input_cost_per_token" not in server.requests[0]  # our own params never leave
    assert (engine.total, engine.done, engine.hits, engine.errors) == (1, 1, 0, 0)


def test_the_same_request_is_answered_from_the_cache_the_second_time(tmp_path, server):
    req = request("환불", api_base=server.url)
    first = open_engine(settings_for(tmp_path), "run1", print)
    try:
        fresh, same = run(first, req, req)  # twice in one batch: one call
    finally:
        first.shutdown()
    assert server.count == 1
    assert same == fresh
    again = open_engine(settings_for(tmp_path), "run2", print)
    try:
        (hit,) = run(again, req)
    finally:
        again.shutdown()
    assert server.count == 1
    assert hit.cached is True
    assert (hit.text, hit.input_tokens, hit.output_tokens, hit.cost_usd) == (fresh.text, 1, 2, fresh.cost_usd)
    assert (again.hits, again.total) == (1, 1)
    log = read(tmp_path / ".promstack/calls.jsonl")
    assert sorted((r["run_id"], r["cached"], r["status"]) for r in log) == [
        ("run1", False, "ok"), ("run1", True, "ok"), ("run2", True, "ok")]  # each request is one line


def test_an_http_error_becomes_the_responses_error_after_the_retries_and_is_not_cached(tmp_path, server):
    engine = open_engine(settings_for(tmp_path), "run1", print)
    try:
        busy, bad = run(engine, request("x", model="broken", api_base=server.url),
                        request("y", model="bad", api_base=server.url))
    finally:
        engine.shutdown()
    assert busy.error == "ServiceUnavailableError (HTTP 503): scripted failure for broken"
    assert (busy.status_code, busy.attempts, busy.text) == (503, 3, None)  # the first try and max_retries: 2
    assert bad.error == "BadRequestError (HTTP 400): scripted failure for bad"
    assert bad.attempts == 1  # a 400 is not retried
    assert server.count == 4
    assert engine.errors == 2
    statuses = [(r["model"], r["status"], r.get("attempt") or r.get("attempts"))
                for r in read(tmp_path / ".promstack/calls.jsonl")]
    assert sorted(statuses) == [("bad", "error", 1), ("broken", "error", 3), ("broken", "retry", 1),
                                ("broken", "retry", 2)]
    again = open_engine(settings_for(tmp_path), "run2", print)
    try:
        (retried,) = run(again, request("x", model="broken", api_base=server.url))
    finally:
        again.shutdown()
    assert retried.cached is False
    assert server.count == 7  # called again: an error is never stored


def test_replay_mode_answers_a_miss_with_an_error_and_calls_nothing(tmp_path, server):
    engine = open_engine(settings_for(tmp_path, cache="replay"), "run1", print)
    try:
        (resp,) = run(engine, request("환불", api_base=server.url))
    finally:
        engine.shutdown()
    assert resp.miss is True
    assert resp.error.startswith("cache miss in replay mode (key ")
    assert server.count == 0


def test_record_mode_keeps_a_cases_successful_calls_for_its_cassette(tmp_path, server):
    engine = open_engine(settings_for(tmp_path, cache="record"), "run1", print)
    meta = {"suite": "s", "case_id": "a.csv::row-2[m]"}
    good = request("환불", api_base=server.url, meta=meta)
    failing = request("x", model="bad", api_base=server.url, meta=meta)
    elsewhere = request("배송", api_base=server.url, meta={"suite": "s", "case_id": "a.csv::row-3[m]"})
    try:
        run(engine, good, failing, elsewhere)
        recorded = engine.recorded("s", "a.csv::row-2[m]")
    finally:
        engine.shutdown()
    assert [(req.key, resp.text) for req, resp in recorded] == [(good.key, "환불 가능합니다")]
    assert [req.key for req, _ in engine.recorded("s", "a.csv::row-3[m]")] == [elsewhere.key]
    assert engine.recorded("s", "no-such-case") == []


def test_a_key_value_a_server_echoes_never_reaches_the_answer(tmp_path, server, monkeypatch):
    monkeypatch.setenv("PROMSTACK_TEST_KEY", "sk-secret-123456")
    (tmp_path / "promstack.yaml").write_text(
        f"models: [{{name: m, model: openai/m, api_base: '{server.url}', api_key_env: PROMSTACK_TEST_KEY}}]\n",
        encoding="utf-8")
    server.replies["key?"] = "your key is sk-secret-123456"
    engine = open_engine(load_settings(tmp_path, {}), "run1", print)
    req = Request(model="m", litellm_model="openai/m", messages=({"role": "user", "content": "key?"},),
                  params=dict(PRICES), key="k", api_base=server.url, api_key_env="PROMSTACK_TEST_KEY")
    try:
        (resp,) = run(engine, req)
    finally:
        engine.shutdown()
    assert server.headers[0]["Authorization"] == "Bearer sk-secret-123456"  # the key goes where it is named
    assert resp.text == "your key is sk-…[redacted]"


def test_a_cassette_entry_keeps_an_answers_log_probabilities_and_refuses_ones_that_are_not():
    req = Request(key="k", model="m", litellm_model="openai/m", messages=({"role": "user", "content": "q"},),
                  params={"logprobs": True})
    e = cassettes.entry("a.csv::row-2[m]", req, Response(text="네", logprobs=(-0.5, -1.0), finish_reason="stop"))
    assert e["logprobs"] == [-0.5, -1.0]
    assert cassettes.to_response(e).logprobs == (-0.5, -1.0)
    assert cassettes.problem(e) is None
    assert cassettes.problem({**e, "logprobs": [0.5]}) == (
        "logprobs is not a list of log probabilities (finite numbers, at most 0)")
    assert "logprobs" not in cassettes.entry("a.csv::row-2[m]", req, Response(text="네"))
