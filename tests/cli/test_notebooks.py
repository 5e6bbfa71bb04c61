"""Notebooks: `load_results(path).to_pandas()` and `load_calls(paths).to_pandas()` on what a real
run writes (its results JSON and its call log) and on the generated logs of
tests/support/calllogs.py (rotated, gzipped, torn, Parquet); pandas and DuckDB imported only when
asked; `promstack monitor --format parquet --output PATH` against the plain-Python aggregates."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from pytest_promstack import load_calls, load_results
from pytest_promstack.cli import main
from pytest_promstack.model.errors import PromstackError
from pytest_promstack.results.notebook import CALL_FIELDS, RESULT_COLUMNS
from tests.support import calllogs
from tests.support.project import one_error_line
from tests.support.run import run_python

TORN = "1 line is not a whole call record"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(calllogs.generate())


@pytest.fixture
def logs(tmp_path, records):
    calllogs.write(tmp_path / "logs", records)
    return tmp_path / "logs"


def test_a_runs_results_and_its_call_log_load_as_frames_that_join_on_case_id(project):
    project.write({"prompt_tests/a.csv": "input,__expected\n환불해 주세요,contains:환불\nhello,contains:bye\n"})
    project.run("--promstack-json=r.json").assert_outcomes(passed=1, failed=1)
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))

    cases = load_results(project.path / "r.json").to_pandas()
    assert list(cases.columns) == list(RESULT_COLUMNS)
    assert len(cases) == len(doc["cases"]) == 2
    by_input = cases.set_index("passed")
    assert by_input.loc[True, "outcome"] == "passed"
    assert by_input.loc[False, "outcome"] == "failed"
    assert str(cases["run_started"].dtype).startswith("datetime64")
    assert str(cases["run_started"].dt.tz) == "UTC"
    assert str(cases["input_tokens"].dtype) == "Int64"
    for row, case in zip(cases.itertuples(), doc["cases"], strict=True):
        assert (row.run_id, row.case_id, row.prompt_id, row.prompt_version, row.model) == (
            doc["run"]["id"], case["case_id"], case["prompt_id"], case["prompt_version"], case["model"])
        assert row.latency_ms == pytest.approx(sum(case["latencies"]) / len(case["latencies"]))
        assert (row.calls, row.input_tokens, row.output_tokens) == (len(case["latencies"]), case["input_tokens"],
                                                                    case["output_tokens"])

    calls = load_calls(project.path / ".promstack/calls.jsonl").to_pandas()
    assert list(calls.columns) == list(CALL_FIELDS)
    assert str(calls["timestamp"].dt.tz) == "UTC"
    joined = cases.merge(calls, on=["case_id", "prompt_version"], suffixes=("", "_call"))
    assert sorted(joined["outcome"]) == ["failed", "passed"]
    assert (joined["input_tokens"] == joined["input_tokens_call"]).all()


def test_load_calls_reads_every_whole_line_of_rotated_gzipped_and_torn_logs(logs, records):
    with pytest.warns(UserWarning, match=r"calls\.jsonl: " + TORN) as warned:
        frame = load_calls(str(logs / "calls*.jsonl*")).to_pandas()
    assert warned[0].filename == __file__  # the warning points at the notebook's line
    assert len(frame) == len(records)
    assert frame["timestamp"].is_monotonic_increasing
    first = records[0]
    assert frame.iloc[0]["timestamp"] == calllogs.when(first)
    assert frame.iloc[0]["prompt_id"] == first["prompt_id"]
    assert sorted(frame["latency_ms"].dropna()) == sorted(r["latency_ms"] for r in records if "latency_ms" in r)
    assert frame["kind"].isna().sum() == sum("kind" not in r for r in records)  # old lines without kind
    assert set(frame["prompt_id"]) == {"support", "요약", "classify"}


def test_load_calls_reads_a_gzip_cut_short_up_to_the_cut_with_a_warning(logs, records):
    whole = calllogs.cut_gzip(logs / "calls.2025-03-01.jsonl.gz")
    with pytest.warns(UserWarning, match="the gzip file ends early|" + TORN) as warned:
        rows = load_calls(logs).rows()
    cut = [w for w in warned if "the gzip file ends early" in str(w.message)]
    assert len(cut) == 1
    assert cut[0].filename == __file__
    assert f"read the {whole:,} lines before the cut" in str(cut[0].message)
    assert len(rows) == whole + len(records) - len(records) // 3


def test_a_pandas_p95_on_the_calls_is_monitors(logs, records):
    with pytest.warns(UserWarning, match=TORN):
        calls = load_calls([logs], calls_only=True).to_pandas()
    assert len(calls) == len(calllogs.calls(records))
    p95 = calls[~calls["cached"]].groupby("model")["latency_ms"].quantile(0.95)
    for row in calllogs.expected(records, by=("model",)):
        assert p95[row["model"]] == pytest.approx(row["p95_ms"], rel=1e-12)


def test_since_and_until_bound_the_lines(logs, records):
    with pytest.warns(UserWarning, match=TORN):
        rows = load_calls(logs, since="2025-03-02", until=datetime(2025, 3, 2, 12)).rows()
    since, until = datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 2, 12, tzinfo=UTC)
    assert len(rows) == sum(since <= calllogs.when(r) < until for r in records)
    assert all(since <= r["timestamp"] < until for r in rows)
    assert list(rows[0]) == list(CALL_FIELDS)


def test_a_parquet_export_of_the_calls_loads_back_the_same(logs, tmp_path):
    with pytest.warns(UserWarning, match=TORN):
        frame = load_calls(logs).to_pandas()
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(f"COPY frame TO '{tmp_path / 'calls.parquet'}' (FORMAT parquet)")
    again = load_calls(tmp_path / "calls.parquet").to_pandas()
    pd.testing.assert_frame_equal(again, frame)


def test_to_pandas_without_pandas_names_the_fix_and_rows_still_work(logs, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    table = load_calls(logs / "calls.2025-03-02.jsonl")
    with pytest.raises(PromstackError, match=r"^to_pandas\(\) needs pandas, which promstack does not install: "
                                             r"pip install pandas$"):
        table.to_pandas()
    assert table.rows()[0]["timestamp"].tzinfo is not None


def test_a_file_that_is_not_a_results_json_is_one_line(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(PromstackError, match=r"x\.json: schema None is not 'promstack-results/1'"):
        load_results(tmp_path / "x.json")
    with pytest.raises(PromstackError, match=r"nothing\.jsonl: no call log there"):
        load_calls(tmp_path / "nothing.jsonl")


def test_importing_the_loaders_loads_neither_pandas_nor_duckdb(logs):
    out = run_python(f"""
        import sys
        from pytest_promstack import load_calls, load_results
        table = load_calls({str(logs / "calls.2025-03-02.jsonl")!r})
        print(sorted(m for m in ("pandas", "duckdb", "pytest", "litellm") if m in sys.modules))
        table.rows()
        print(sorted(m for m in ("pandas", "duckdb") if m in sys.modules))
    """).check()
    assert out.lines == ["[]", "['duckdb']"]


def test_monitor_exports_the_figures_as_parquet(logs, records, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["monitor", str(logs), "--window", "day", "--by", "model", "--format", "parquet",
                 "--output", "f.parquet"]) == 0
    expected = calllogs.expected(records, window="day", by=("model",), prices={})
    assert capsys.readouterr().out.endswith(f"promstack monitor: wrote f.parquet ({len(expected)} rows)\n")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cur = con.execute("SELECT * FROM 'f.parquet'")
    names, types = [d[0] for d in cur.description], [str(d[1]) for d in cur.description]
    got = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert names == [*expected[0]]
    assert types[:2] == ["TIMESTAMP WITH TIME ZONE"] * 2
    assert len(got) == len(expected)
    for g, w in zip(got, expected, strict=True):
        assert g["window_start"] == datetime.fromisoformat(w["window_start"])
        for key in names[2:]:
            assert g[key] == (pytest.approx(w[key], rel=1e-9) if isinstance(w[key], float) else w[key]), key
    assert not list(tmp_path.glob(".f.parquet*"))


def test_a_parquet_output_that_cannot_be_written_is_one_line(logs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["monitor", str(logs / "calls.2025-03-02.jsonl"), "--format", "parquet",
                 "--output", "no/such/f.parquet"]) == 4
    line = one_error_line(capsys)
    assert line.startswith("promstack monitor: --output no/such/f.parquet: cannot write it (")
    assert line.endswith("); give a path in a folder you can write")
