"""results/monitor.py: every figure of `promstack monitor` against the aggregates that
tests/support/calllogs.py computes in plain Python, and the edges (torn lines, overlapping paths,
time bounds, cache hits, unpriced models, Parquet, bad input)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_promstack.model.errors import PromstackError
from pytest_promstack.results import monitor
from tests.support import calllogs

BYS = [("prompt_id", "prompt_version", "model"), (), ("model",), ("suite", "prompt_id"), ("user_id",)]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(calllogs.generate())


@pytest.fixture(scope="module")
def logs(records, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("logs")
    calllogs.write(folder, records)
    return folder


def same(got: list[dict], want: list[dict]) -> None:
    """Row for row, key for key; floats to 1e-9 relative (DuckDB sums in another order)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, g, w)
            else:
                assert g[key] == value, (key, g, w)


def line(**fields) -> str:
    base = {"timestamp": "2025-03-01T10:00:00.000Z", "kind": "model", "prompt_id": "p", "prompt_version": "v1",
            "model": "gpt-4o-mini", "status": "ok", "cached": False}
    return calllogs.dumps({**base, **fields})


def log(tmp_path: Path, *lines: str, name: str = "calls.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("window", [None, "hour", "day"])
@pytest.mark.parametrize("by", BYS, ids=lambda b: "+".join(b) or "overall")
def test_every_figure_matches_the_plain_python_aggregates(logs, records, window, by):
    got = monitor.figures([logs], window=window, by=by, prices=calllogs.PRICES)
    same(got, calllogs.expected(records, window=window, by=by))


def test_the_generated_log_has_what_the_figures_must_survive(records):
    kinds = {(r.get("kind"), r["status"]) for r in records}
    assert {("model", "retry"), ("guard", "block"), ("model", "cancelled"), (None, "ok"), (None, "error")} <= kinds
    assert any(r.get("cached") for r in records)
    assert any("<EMAIL_1>" in (r.get("error") or "") for r in records)
    assert len({r["prompt_version"] for r in records if r["prompt_id"] == "support"}) == 2
    hourly = calllogs.expected(records, window="hour", by=())
    assert max(r["error_rate"] for r in hourly) > 10 > min(r["error_rate"] for r in hourly)  # the burst
    assert max(r["calls"] for r in hourly) > 3 * min(r["calls"] for r in hourly)  # day and night


def test_windows_are_utc_hours_and_days_with_their_ends(logs):
    days = monitor.figures([logs], window="day", by=())
    assert [(d["window_start"], d["window_end"]) for d in days] == [
        ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z"), ("2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z"),
        ("2025-03-03T00:00:00Z", "2025-03-04T00:00:00Z")]
    assert len(monitor.figures([logs], window="hour", by=())) == 72


def test_since_and_until_select_the_calls_between(logs, records):
    calls = calllogs.calls(records)
    since, until = calllogs.when(calls[100]), calllogs.when(calls[-100])
    got = monitor.figures([logs], since=since, until=until, by=(), prices=calllogs.PRICES)
    same(got, calllogs.expected(records, by=(), since=since, until=until))
    assert got[0]["calls"] == len(calls) - 200  # calls[100] is in (since is inclusive), calls[-100] is out


def test_a_call_at_since_counts_and_one_at_until_does_not(tmp_path):
    path = log(tmp_path, *(line(timestamp=f"2025-03-01T{h:02d}:00:00.000Z", latency_ms=h) for h in (9, 10, 11, 12)))
    since, until = datetime(2025, 3, 1, 10, tzinfo=UTC), datetime(2025, 3, 1, 12, tzinfo=UTC)
    (row,) = monitor.figures([path], since=since, until=until, by=())
    assert (row["calls"], row["p50_ms"]) == (2, 10.5)


def test_overlapping_paths_read_each_file_once(logs, records):
    paths = [logs, logs / "calls.jsonl", str(logs / "calls*.jsonl*"), str(logs / "*.gz")]
    got = monitor.figures(paths, by=(), prices=calllogs.PRICES)
    assert got[0]["calls"] == len(calllogs.calls(records))


def test_rotated_gzipped_and_live_files_together_give_the_whole_log(logs, records):
    parts = [monitor.figures([p], by=())[0]["calls"] for p in sorted(logs.iterdir())]
    assert len(parts) == 3
    assert sum(parts) == len(calllogs.calls(records))


def test_a_torn_line_is_skipped_with_one_warning_naming_the_file_and_count(logs):
    warnings: list[str] = []
    monitor.figures([logs], warn=warnings.append)
    assert warnings == [f"{logs / 'calls.jsonl'}: 1 line is not a whole call record (torn, not JSON, or no "
                        "timestamp); skipped"]


def test_a_gzip_cut_short_is_read_up_to_the_cut_and_the_other_files_in_full(records, tmp_path):
    gz, _, live = calllogs.write(tmp_path, records)
    whole = calllogs.cut_gzip(gz)
    assert 0 < whole < len(records) // 3
    warnings: list[str] = []
    got = monitor.figures([tmp_path], window="day", prices=calllogs.PRICES, warn=warnings.append)
    kept = records[:whole] + records[len(records) // 3:]
    same(got, calllogs.expected(kept, window="day"))
    assert warnings == [f"{gz}: the gzip file ends early (cut short while it was written or copied); read the "
                        f"{whole:,} lines before the cut",
                        f"{live}: 1 line is not a whole call record (torn, not JSON, or no timestamp); skipped"]


def test_a_file_that_cannot_be_read_is_left_out_with_one_warning_and_the_rest_counted(tmp_path):
    good = log(tmp_path, line(latency_ms=5), line(latency_ms=7))
    (tmp_path / "calls.1.jsonl.gz").write_bytes(b"not gzip at all")
    (tmp_path / "calls.parquet").write_bytes(b"PAR1 not parquet either")
    warnings: list[str] = []
    (row,) = monitor.figures([tmp_path], by=(), warn=warnings.append)
    assert (row["calls"], row["p50_ms"]) == (2, 6)
    assert [w.split(" (")[0] for w in warnings] == [f"{tmp_path / 'calls.1.jsonl.gz'}: cannot be read",
                                                    f"{tmp_path / 'calls.parquet'}: cannot be read"]
    assert all(w.endswith("); left out, its calls are not in these figures") for w in warnings)
    good.unlink()
    assert monitor.figures([tmp_path], by=(), warn=lambda line: None) == []


def test_non_json_and_non_object_lines_are_counted_per_file(tmp_path):
    path = log(tmp_path, line(latency_ms=5), "[1, 2]", "not json at all", "", line(timestamp="yesterday"),
               '"a string"')
    warnings: list[str] = []
    rows = monitor.figures([path], by=(), warn=warnings.append)
    assert rows[0]["calls"] == 1
    assert warnings == [f"{path}: 4 lines are not a whole call record (torn, not JSON, or no timestamp); skipped"]


def test_retry_guard_and_cancelled_lines_are_not_calls(tmp_path):
    path = log(tmp_path, line(status="retry", latency_ms=9000, error="429"),
               line(kind="guard", status="block", guard="pii"),
               line(status="cancelled", error="interrupted"),
               line(latency_ms=100, input_tokens=10, output_tokens=2, cost_usd=0.5))
    (row,) = monitor.figures([path], by=())
    assert (row["calls"], row["errors"], row["p99_ms"], row["cost_usd"]) == (1, 0, 100.0, 0.5)


def test_a_line_without_kind_is_a_call_of_an_older_log(tmp_path):
    old = json.loads(line(latency_ms=10, status="error", error="boom"))
    del old["kind"]
    (row,) = monitor.figures([log(tmp_path, json.dumps(old))], by=())
    assert (row["calls"], row["errors"], row["error_rate"]) == (1, 1, 100.0)


def test_cache_hits_cost_nothing_and_stay_out_of_the_latency(tmp_path):
    path = log(tmp_path, line(latency_ms=100, input_tokens=10, output_tokens=5, cost_usd=0.25),
               line(latency_ms=9999, input_tokens=10, output_tokens=5, cost_usd=0.25, cached=True))
    (row,) = monitor.figures([path], by=())
    assert (row["calls"], row["cached"], row["cache_hit_rate"]) == (2, 1, 50.0)
    assert (row["p50_ms"], row["p99_ms"], row["tokens"], row["cost_usd"]) == (100.0, 100.0, 15, 0.25)


def test_percentiles_interpolate_linearly_between_ranks(tmp_path):
    path = log(tmp_path, *(line(latency_ms=v) for v in (10, 20, 30, 40)))
    (row,) = monitor.figures([path], by=())
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == pytest.approx((25.0, 38.5, 39.7))


def test_a_cost_missing_from_the_log_is_priced_from_the_tokens(tmp_path):
    path = log(tmp_path, line(model="acme-llm", input_tokens=1000, output_tokens=500, cost_usd=None))
    (row,) = monitor.figures([path], by=(), prices={"acme-llm": (1e-6, 2e-6)})
    assert (row["cost_usd"], row["unpriced"]) == (pytest.approx(0.002), 0)


def test_litellm_price_map_prices_a_known_model_name(tmp_path):
    pytest.importorskip("litellm")
    from pytest_promstack.execute.pricing import price

    cin, cout = price("gpt-4o-mini", {})
    path = log(tmp_path, line(model="gpt-4o-mini", input_tokens=1000, output_tokens=500, cost_usd=None))
    (row,) = monitor.figures([path], by=())
    assert row["cost_usd"] == pytest.approx(1000 * cin + 500 * cout)


def test_an_unpriced_model_has_no_cost_never_zero(tmp_path):
    path = log(tmp_path, line(model="mystery-llm", input_tokens=10, output_tokens=5, cost_usd=None),
               line(model="gpt-4o-mini", input_tokens=10, output_tokens=5, cost_usd=0.1),
               line(model="mystery-llm", status="error", error="boom"))
    rows = {r["model"]: r for r in monitor.figures([path], by=("model",), prices={})}
    assert (rows["mystery-llm"]["cost_usd"], rows["mystery-llm"]["unpriced"]) == (None, 1)
    assert rows["gpt-4o-mini"]["cost_usd"] == 0.1
    assert monitor.figures([path], by=(), prices={})[0]["cost_usd"] is None


def test_a_parquet_export_gives_the_same_figures(logs, records, tmp_path):
    import duckdb

    export = tmp_path / "calls.parquet"
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(calllogs.dumps(r) + "\n" for r in records), encoding="utf-8")
    duckdb.sql(f"COPY (SELECT * FROM read_json('{plain}', format='newline_delimited')) TO '{export}' "
               "(FORMAT parquet)")
    got = monitor.figures([export], window="day", prices=calllogs.PRICES)
    same(got, calllogs.expected(records, window="day"))


def test_a_parquet_export_without_some_columns_reads_them_as_null(tmp_path):
    import duckdb

    export = tmp_path / "slim.parquet"
    duckdb.sql(f"COPY (SELECT '2025-03-01T10:00:00Z' AS timestamp, 'ok' AS status, 120.5 AS latency_ms) "
               f"TO '{export}' (FORMAT parquet)")
    (row,) = monitor.figures([export], by=("model",))
    assert (row["model"], row["calls"], row["p50_ms"], row["cost_usd"]) == (None, 1, 120.5, None)


def test_korean_prompt_ids_and_offsets_in_timestamps(tmp_path):
    path = log(tmp_path, line(prompt_id="요약", timestamp="2025-03-01T08:30:00+09:00", latency_ms=1),
               line(prompt_id="요약", timestamp="2025-03-01T00:10:00Z", latency_ms=3))
    rows = monitor.figures([path], window="hour", by=("prompt_id",))
    assert [(r["window_start"], r["calls"]) for r in rows] == [("2025-02-28T23:00:00Z", 1), ("2025-03-01T00:00:00Z", 1)]
    assert {r["prompt_id"] for r in rows} == {"요약"}


def test_top_errors_are_the_masked_texts_most_frequent_first(logs, records):
    got = monitor.top_errors([logs])
    assert got == calllogs.expected_top_errors(records)
    assert got[0] == {**got[0], "error": "RateLimitError: 429 Too Many Requests"}
    assert calllogs.EMAIL not in json.dumps(got)
    assert monitor.top_errors([logs], limit=1) == got[:1]


def test_top_errors_within_a_time_range(logs, records):
    since = datetime(2025, 3, 3, tzinfo=UTC)
    assert monitor.top_errors([logs], since=since) == calllogs.expected_top_errors(records, since=since)


def test_a_gzipped_log_reads_like_a_plain_one(tmp_path):
    text = "".join(line(latency_ms=v) + "\n" for v in (1, 2, 3))
    with gzip.open(tmp_path / "calls.2025-03-01.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    (tmp_path / "calls.jsonl").write_text(text, encoding="utf-8")
    assert monitor.figures([tmp_path / "calls.2025-03-01.jsonl.gz"], by=()) == monitor.figures(
        [tmp_path / "calls.jsonl"], by=())


def test_log_files_are_the_live_file_and_its_rotations(tmp_path):
    for name in ("calls.jsonl", "calls.2025-03-01.jsonl", "calls.2025-02-28.jsonl.gz", "other.jsonl",
                 "calls.jsonl.1"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert [p.name for p in monitor.log_files(tmp_path / "calls.jsonl")] == [
        "calls.2025-02-28.jsonl.gz", "calls.2025-03-01.jsonl", "calls.jsonl"]


@pytest.mark.parametrize(("text", "want"), [
    ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
    ("2025-03-01T09:00", datetime(2025, 3, 1, 9, tzinfo=UTC)),
    ("2025-03-01T09:00+09:00", datetime(2025, 3, 1, 0, tzinfo=UTC)),
    ("2025-03-01T09:00:00Z", datetime(2025, 3, 1, 9, tzinfo=UTC)),
    ("24h", datetime(2025, 3, 9, 12, tzinfo=UTC)),
    ("7d", datetime(2025, 3, 3, 12, tzinfo=UTC)),
    ("30m", datetime(2025, 3, 10, 11, 30, tzinfo=UTC)),
    ("2w", datetime(2025, 2, 24, 12, tzinfo=UTC)),
    ("-7d", datetime(2025, 3, 3, 12, tzinfo=UTC)),  # Grafana's now-7d
])
def test_times_are_iso_or_a_span_back_from_now(text, want):
    assert monitor.parse_time(text, now=datetime(2025, 3, 10, 12, tzinfo=UTC)) == want


def test_a_bad_time_names_the_option_and_the_forms():
    with pytest.raises(PromstackError, match=r"^--until yesterday: not a time; give an ISO date"):
        monitor.parse_time("yesterday", "--until")


def test_a_path_that_names_nothing_is_one_error_naming_it(tmp_path):
    with pytest.raises(PromstackError, match=r"nope\*\.jsonl: no call log there"):
        monitor.figures([tmp_path / "nope*.jsonl"])


def test_a_file_that_is_not_a_log_is_refused(tmp_path):
    (tmp_path / "calls.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(PromstackError, match=r"calls\.csv: not a call log \(read: \.jsonl"):
        monitor.figures([tmp_path / "calls.csv"])


def test_an_unknown_grouping_or_window_is_refused(tmp_path):
    path = log(tmp_path, line())
    with pytest.raises(PromstackError, match=r"by 'prompt': not a call-log field .*choose from prompt_id"):
        monitor.figures([path], by=("prompt",))
    with pytest.raises(PromstackError, match=r"window 'week': choose one of hour, day"):
        monitor.figures([path], window="week")


def test_an_empty_range_gives_no_rows(logs):
    assert monitor.figures([logs], since=datetime(2030, 1, 1, tzinfo=UTC)) == []
    assert monitor.top_errors([logs], until=datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=1)) == []


def test_summary_reads_once_what_figures_and_top_errors_give(logs):
    warnings: list[str] = []
    rows, errors = monitor.summary([logs], window="day", by=("model",), limit=2, warn=warnings.append)
    assert rows == monitor.figures([logs], window="day", by=("model",))
    assert errors == monitor.top_errors([logs], limit=2)
    assert len(warnings) == 1


def test_a_line_torn_inside_a_korean_character_and_a_writers_lock_file_are_passed_over(tmp_path):
    path = log(tmp_path, line(latency_ms=5, prompt_id="요약"), line(latency_ms=7, prompt_id="요약"))
    whole = path.read_bytes()
    torn = line(latency_ms=9, prompt_id="요약").encode("utf-8")
    cut = torn.index("요".encode()) + 1  # in the middle of the character's three bytes
    path.write_bytes(whole + torn[:cut] + b"\n" + line(latency_ms=11).encode("utf-8") + b"\n")
    (tmp_path / f"{path.name}.lock").write_text("", encoding="utf-8")  # a rotating writer's lock, matched by calls*
    (tmp_path / "calls.2025-03-01.jsonl.gz.part").write_bytes(b"\x1f\x8b half")  # a gzip being written
    warnings: list[str] = []
    rows = monitor.figures([str(tmp_path / "calls*")], by=(), warn=warnings.append)
    assert rows[0]["calls"] == 3
    assert warnings == [f"{path}: 1 line is not a whole call record (torn, not JSON, or no timestamp); skipped"]
