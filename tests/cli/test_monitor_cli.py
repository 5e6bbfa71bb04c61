"""`promstack monitor`: the config's call log and its rotated files by default, tables, JSON and
CSV checked against the plain-Python aggregates of tests/support/calllogs.py, a log the SDK
really wrote, and every bad input as one line with exit 4."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pytest_promstack import Client
from pytest_promstack.cli import main
from tests.support import calllogs, tables
from tests.support.project import KEY_ENV, config, one_error_line, write
from tests.support.run import run_python


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(calllogs.generate())


@pytest.fixture
def project(tmp_path, records, monkeypatch) -> Path:
    """A project whose config prices acme-llm by its params and logs to logs/calls.jsonl."""
    calllogs.project(tmp_path, (calllogs.ACME, calllogs.MYSTERY))
    calllogs.write(tmp_path / "logs", records)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def figures_json(capsys, *args: str) -> dict:
    assert main(["monitor", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def approx_rows(rows: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def test_default_reads_the_configured_log_and_its_rotated_files(project, records, capsys):
    doc = figures_json(capsys)
    assert [Path(f).name for f in doc["files"]] == ["calls.2025-03-01.jsonl.gz", "calls.2025-03-02.jsonl",
                                                    "calls.jsonl"]
    assert doc["figures"] == approx_rows(calllogs.expected(records))  # acme-llm priced by the config's params
    assert doc["top_errors"] == calllogs.expected_top_errors(records)


def test_day_windows_grouped_by_model_in_json(project, records, capsys):
    doc = figures_json(capsys, "--window", "day", "--by", "model")
    assert (doc["window"], doc["by"]) == ("day", ["model"])
    assert doc["figures"] == approx_rows(calllogs.expected(records, window="day", by=("model",)))


def test_since_and_until_bound_the_figures_and_the_errors(project, records, capsys):
    doc = figures_json(capsys, "--since", "2025-03-02", "--until", "2025-03-03T12:00Z", "--by", "none",
                       "--top-errors", "2")
    since, until = (calllogs.START.replace(day=2), calllogs.START.replace(day=3, hour=12))
    assert (doc["since"], doc["until"]) == ("2025-03-02T00:00:00Z", "2025-03-03T12:00:00Z")
    assert doc["figures"] == approx_rows(calllogs.expected(records, by=(), since=since, until=until))
    assert doc["top_errors"] == calllogs.expected_top_errors(records, since=since, until=until, limit=2)


def test_csv_has_one_row_per_window_and_key(project, records, capsys):
    assert main(["monitor", "--format", "csv", "--window", "hour", "--by", "prompt"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    want = calllogs.expected(records, window="hour", by=("prompt_id",))
    assert len(rows) == len(want)
    assert list(rows[0]) == list(want[0])
    for got, exp in zip(rows, want, strict=True):
        assert (got["window_start"], got["prompt_id"], int(got["calls"])) == (exp["window_start"], exp["prompt_id"],
                                                                             exp["calls"])
        for key in ("p95_ms", "cost_usd"):  # an hour of cache hits only has no latency; an unpriced one no cost
            assert got[key] == "" if exp[key] is None else float(got[key]) == pytest.approx(exp[key], rel=1e-9)


def test_the_table_shows_every_figure_and_the_top_errors(project, records, capsys):
    assert main(["monitor"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "promstack monitor: 3 files, the first call to the last (UTC)"
    assert lines[1].split() == ["prompt", "version", "model", "calls", "errors", "%", "p50", "ms", "p95", "ms", "p99",
                                "ms", "tokens", "in", "tokens", "out", "cost", "USD", "cache", "%"]
    want = {(r["prompt_id"], r["model"]): r for r in calllogs.expected(records, by=("prompt_id", "model"))}
    korean = next(line for line in lines if line.startswith("요약") and "gpt-4o-mini" in line)
    assert korean.split()[3] == str(sum(r["calls"] for r in calllogs.expected(records)
                                        if (r["prompt_id"], r["model"]) == ("요약", "gpt-4o-mini")))
    mystery = next(line for line in lines if "mystery-llm" in line)
    assert f"n/a ({want['classify', 'mystery-llm']['unpriced']} unpriced)" in mystery
    top = lines[lines.index("top errors") + 3]
    assert top.split()[0] == str(calllogs.expected_top_errors(records)[0]["count"])
    assert top.endswith("RateLimitError: 429 Too Many Requests")
    assert "<EMAIL_1>" in out
    assert calllogs.EMAIL not in out
    assert err.splitlines() == [f"promstack monitor: warning: {project / 'logs/calls.jsonl'}: 1 line is not a whole "
                                "call record (torn, not JSON, or no timestamp); skipped"]


def test_korean_prompt_ids_keep_the_table_columns_aligned_on_a_terminal(project, capsys):
    assert main(["monitor", "--top-errors", "0"]) == 0
    table = capsys.readouterr().out.splitlines()[1:]
    assert any(line.startswith("요약") for line in table)
    assert tables.misaligned(table) == []


def test_hour_windows_in_the_table_show_the_hour(project, capsys):
    assert main(["monitor", "--window", "hour", "--by", "none", "--top-errors", "0",
                 "--since", "2025-03-01T10:00", "--until", "2025-03-01T12:00"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("promstack monitor: 3 files, 2025-03-01T10:00:00Z to 2025-03-01T12:00:00Z (UTC)")
    assert [line.split()[:2] for line in out.splitlines()[3:]] == [["2025-03-01", "10:00"], ["2025-03-01", "11:00"]]
    assert "top errors" not in out


@pytest.mark.parametrize("span", [["--since", "-30000d"], ["--since=-30000d"], ["--since", "30000d"]])
def test_a_span_with_a_minus_reaches_back_like_one_without(project, records, capsys, span):
    doc = figures_json(capsys, *span, "--until", "-0d", "--by", "none")
    assert doc["figures"][0]["calls"] == len(calllogs.calls(records))
    since = datetime.fromisoformat(doc["since"].replace("Z", "+00:00"))
    assert abs(since - (datetime.now(UTC) - timedelta(days=30000))) < timedelta(minutes=5)


def test_an_empty_range_says_so(project, capsys):
    assert main(["monitor", "--since", "2030-01-01"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no calls in this range"


def test_paths_given_on_the_command_line_replace_the_config_log(project, records, capsys):
    doc = figures_json(capsys, "logs/calls.jsonl", "logs/calls.jsonl", "--by", "none")
    assert [Path(f).name for f in doc["files"]] == ["calls.jsonl"]
    third = len(records) // 3
    assert doc["figures"][0]["calls"] == len(calllogs.calls(records[2 * third:]))


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere/*.jsonl"], "promstack monitor: nowhere/*.jsonl: no call log there (no file matches); pass a log file*"),
    (["--since", "last tuesday"], "promstack monitor: --since last tuesday: not a time; give an ISO date*"),
    (["--until", "2025-13-01"], "promstack monitor: --until 2025-13-01: not a time*"),
    (["--format", "xml"], "promstack monitor: --format xml: choose one of table, json, csv, parquet"),
    (["--window", "week"], "promstack monitor: --window week: choose one of hour, day"),
    (["--by", "prompt,colour"], "promstack monitor: --by prompt,colour: colour is not a grouping; give *"),
    (["--top-errors", "-1"], "promstack monitor: --top-errors -1: give 0 or more"),
    (["t.csv"], "promstack monitor: */t.csv: not a call log (read: .jsonl*"),
])
def test_bad_input_is_one_line_and_exit_4(project, capsys, args, message):
    import fnmatch

    assert main(["monitor", *args]) == 4
    line = one_error_line(capsys)
    assert fnmatch.fnmatch(line, message), line


def test_no_log_yet_names_the_configured_path(tmp_path, monkeypatch, capsys):
    write(tmp_path, {"promstack.yaml": yaml.safe_dump({"models": ["openai/x"], "suites": {"s": {"tests": ["t.csv"]}}}),
                     "t.csv": "input\nx\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["monitor"]) == 4
    line = one_error_line(capsys)
    assert line.startswith(f"promstack monitor: {tmp_path / '.promstack/calls.jsonl'}: no call log yet (log: in ")


def test_log_off_asks_for_paths(tmp_path, monkeypatch, capsys):
    write(tmp_path, {"promstack.yaml": yaml.safe_dump({"models": ["openai/x"], "log": None,
                                                       "suites": {"s": {"tests": ["t.csv"]}}}),
                     "t.csv": "input\nx\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["monitor"]) == 4
    assert one_error_line(capsys) == "promstack monitor: no call log: log: is off in promstack.yaml; pass the log " \
                                     "files as PATH"


def test_figures_of_a_log_the_sdk_wrote(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "k")
    monkeypatch.delenv("CI", raising=False)  # a developer's machine: `prompt list` records the version
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/support.yaml",
                                                                       "tests": ["t.csv"]}}),
                     "prompts/support.yaml": "id: support\ntemplate: '안내 {{ input }}'\n", "t.csv": "input\nx\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["prompt", "list"]) == 0  # records v1 in the registry
    with Client(tmp_path) as client:
        prompt = client.get_prompt("support")
        for text in ("환불", "배송", "환불"):  # the third is a cache hit
            client.complete(prompt, input=text, model="mine")
    capsys.readouterr()
    (row,) = figures_json(capsys)["figures"]
    assert (row["prompt_id"], row["model"], row["calls"], row["cached"], row["errors"]) == ("support", "mine", 3, 1, 0)
    assert row["input_tokens"] > 0
    assert row["p95_ms"] is not None


def test_building_the_parser_does_not_import_duckdb():
    done = run_python("import sys; from pytest_promstack.cli import build_parser; "
                      "print('monitor' in build_parser().format_help(), 'duckdb' in sys.modules)")
    assert done.stdout.split() == ["True", "False"]


def test_check_judges_the_alerts_on_the_logs_posts_once_and_exits_1_on_an_alert(project, capsys, monkeypatch):
    from tests.support.webhook import Webhook

    start = (datetime.now(UTC) - timedelta(hours=71, minutes=50)).replace(minute=0, second=0, microsecond=0)
    records = list(calllogs.generate(start=start))  # three days up to a few minutes ago
    for old in (project / "logs").iterdir():
        old.unlink()
    calllogs.write(project / "logs", records)
    now = datetime.now(UTC)
    last_hour = calllogs.expected(records, by=(), since=now - timedelta(hours=1), until=now)[0]
    p95 = last_hour["p95_ms"]
    # one rule just above the last hour's P95 (ok), one just below it (alert)
    doc = yaml.safe_load((project / "promstack.yaml").read_text(encoding="utf-8"))
    doc["alerts"] = {"webhook_url_env": "HOOK", "min_requests": 1,
                     "max_p95_latency_ms": {"limit": p95 * 0.9, "window": "1h"},
                     "max_error_rate": {"limit": 100, "window": "1h"}}
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with Webhook() as hook:
        monkeypatch.setenv("HOOK", hook.url)
        assert main(["monitor", "--check"]) == 1
        first = capsys.readouterr().out
        assert main(["monitor", "--check"]) == 1  # still firing: printed, not posted again
        second = capsys.readouterr().out
        past = (start + timedelta(hours=30)).isoformat()
        assert main(["monitor", "--check", "--until", past, "--format", "json"]) in (0, 1)
        judged = json.loads(capsys.readouterr().out)
    assert len(hook.posts) == 1  # the past moment judged only
    assert judged["notes"][-1].startswith(f"promstack: --until {past}: judged at that moment only (nothing posted")
    assert [v["key"] for v in judged["verdicts"]] == ["max_p95_latency_ms", "max_error_rate"]
    assert "max_p95_latency_ms" in json.dumps(hook.posts[0], ensure_ascii=False)
    assert "s3cr3t-token" not in first + second
    assert f"{last_hour['calls']} calls)" in first
    assert "posted 1 alert" in first
    assert "posted" not in second
    doc["alerts"]["max_p95_latency_ms"]["limit"] = p95 * 1.5
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["monitor", "--check"]) == 0


def test_a_check_whose_log_cannot_be_read_is_an_alert_not_a_quiet_night(project, capsys):
    doc = yaml.safe_load((project / "promstack.yaml").read_text(encoding="utf-8"))
    doc["alerts"] = {"max_error_rate": 1}
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (project / "broken.parquet").write_bytes(b"PAR1 not parquet")
    assert main(["monitor", "--check", "broken.parquet", "--format", "json"]) == 1
    judged = json.loads(capsys.readouterr().out)
    assert judged["exit_code"] == 1
    assert judged["verdicts"][0]["level"] == "no-data"
    assert judged["notes"][0].startswith(f"promstack monitor: warning: {project / 'broken.parquet'}: cannot be read")
    assert judged["notes"][1] == ("promstack: ALERT: 1 log file could not be read (see the warnings); the verdicts "
                                  "leave their calls out")


def test_two_spellings_of_one_log_share_one_alert_state(project, capsys, monkeypatch):
    from tests.support.webhook import Webhook

    doc = yaml.safe_load((project / "promstack.yaml").read_text(encoding="utf-8"))
    doc["alerts"] = {"max_tokens": 1, "webhook_url_env": "HOOK", "window": "1000w"}
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with Webhook() as hook:
        monkeypatch.setenv("HOOK", hook.url)
        assert main(["monitor", "--check", "logs/calls.jsonl"]) == 1
        assert main(["monitor", "--check", "./logs/../logs/calls.jsonl"]) == 1
        assert main(["monitor", "--check", str(project / "logs/calls.jsonl")]) == 1
    assert len(hook.posts) == 1


def test_a_writers_unfinished_gzip_named_alone_is_no_log(project, capsys):
    (project / "logs/calls.2025-03-04.jsonl.gz.part").write_bytes(b"\x1f\x8b")
    assert main(["monitor", "logs/calls.2025-03-04.jsonl.gz.part"]) == 4
    assert "no call log there (only a log writer's lock or unfinished gzip)" in one_error_line(capsys)


def test_a_check_of_a_past_moment_says_it_posted_nothing(project, capsys):
    doc = yaml.safe_load((project / "promstack.yaml").read_text(encoding="utf-8"))
    doc["alerts"] = {"max_error_rate": 0.001, "min_requests": 1}
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["monitor", "--check", "--until", "2025-03-02T13:00"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("promstack: --until 2025-03-02T13:00: judged at that moment only (nothing posted, the "
                       "alerts state left as it was)")
    assert not (project / ".promstack/alerts.json").exists()


def test_check_without_alerts_is_one_line_and_exit_4(project, capsys):
    assert main(["monitor", "--check"]) == 4
    assert "--check: no alerts: in promstack.yaml" in one_error_line(capsys)


@pytest.mark.parametrize(("args", "expected"), [
    (["--since", "99999999d"], "--since 99999999d: reaches back before the year 1; give a shorter span"),
    (["--since", "2025-03-05", "--until", "2025-03-01"],
     "--since 2025-03-05 is not before --until 2025-03-01: give the earlier time to --since"),
])
def test_an_impossible_range_is_one_line_and_exit_4(project, capsys, args, expected):
    assert main(["monitor", *args]) == 4
    assert expected in one_error_line(capsys)


def test_an_empty_alerts_section_watches_the_guides_latency_and_error_rate(project, capsys):
    doc = yaml.safe_load((project / "promstack.yaml").read_text(encoding="utf-8"))
    doc["alerts"] = {}
    (project / "promstack.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["monitor", "--check", "--until", "2025-03-02T13:00"]) in (0, 1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[2] for line in lines[:2]] == ["max_p95_latency_ms", "max_error_rate"]
    assert "5,000 ms" in lines[0]
    assert "1 %" in lines[1]


@pytest.mark.parametrize(("option", "named"), [
    (["--format", "csv"], "--format csv"), (["--html", "d.html"], "--html"), (["--since", "1d"], "--since"),
    (["--results", "r.json"], "--results"), (["--window", "day"], "--window"),
    (["--prometheus-textfile", "m.prom"], "--prometheus-textfile"), (["--by", "model"], "--by"),
    (["--top-errors", "3"], "--top-errors")])
def test_check_refuses_the_options_of_other_outputs_in_one_line(project, capsys, option, named):
    assert main(["monitor", "--check", *option]) == 4
    assert one_error_line(capsys).startswith(f"promstack monitor: --check with {named}: --check judges each rule")


@pytest.mark.parametrize(("args", "expected"), [
    (["--top-errors", "abc"], "--top-errors abc: not a whole number; write e.g. --top-errors 5"),
    (["--html", "d.html", "--budget", "lots"], "--budget lots: not a number; write e.g. --budget 500"),
    (["--html", "d.html", "--prometheus-textfile", "m.prom"], "--html and --prometheus: choose one"),
])
def test_a_bad_option_value_is_one_line_and_exit_4_not_argparse_usage(project, capsys, args, expected):
    assert main(["monitor", *args]) == 4
    assert expected in one_error_line(capsys)


def test_every_field_of_the_log_can_group_the_figures(project, capsys):
    doc = figures_json(capsys, "--by", "session,provider_model,finish,http")
    assert doc["by"] == ["session_id", "litellm_model", "finish_reason", "status_code"]
    assert sum(r["calls"] for r in doc["figures"]) == sum(
        r["calls"] for r in figures_json(capsys, "--by", "none")["figures"])
