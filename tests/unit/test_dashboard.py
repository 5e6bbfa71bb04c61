"""The monitoring dashboard (report/dashboard.py, `promstack monitor --html`): its figures checked
against the plain-Python aggregates of tests/support/calllogs.py, the page's sections, its
escaping of hostile prompt ids and error texts, its CSP, and the CLI's options."""

from __future__ import annotations

import html
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_promstack.cli import main
from pytest_promstack.config.settings import AlertsSpec
from pytest_promstack.report import dashboard
from tests.support import calllogs
from tests.support.project import one_error_line

START = calllogs.START
UNTIL = START + timedelta(hours=72)
HOSTILE_ID = '</script><script>window.__pwned=1</script>'
HOSTILE_ERROR = '<img src=x onerror="window.__pwned=2"> & "quoted"'


def hostile(records: list[dict]) -> list[dict]:
    """The generated log with one prompt renamed to markup and one error text made markup."""
    out = []
    for r in records:
        r = dict(r)
        if r.get("prompt_id") == "classify":
            r["prompt_id"] = HOSTILE_ID
        if r.get("error") == calllogs.ERRORS[2]:
            r["error"] = HOSTILE_ERROR
        out.append(r)
    return out


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return hostile(list(calllogs.generate()))


@pytest.fixture(scope="module")
def logs(tmp_path_factory, records) -> Path:
    folder = tmp_path_factory.mktemp("logs")
    calllogs.write(folder, records)
    return folder


ALERTS = AlertsSpec(max_tokens=400_000, max_cost_usd=5, max_p95_latency_ms=3000, max_error_rate=2)


@pytest.fixture(scope="module")
def data(logs) -> dict:
    return dashboard.collect([str(logs)], until=UNTIL, prices=calllogs.PRICES, alerts=ALERTS)


def close(a, b) -> bool:
    return (a is None and b is None) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_three_days_are_drawn_by_the_hour_with_every_hour_on_the_axis(data):
    assert data["window"] == "hour"
    assert len(data["axis"]) == 72
    assert data["axis"][0] == "2025-03-01T00:00:00Z"
    assert data["axis"][-1] == "2025-03-03T23:00:00Z"


def test_totals_and_cost_by_model_add_up_the_priced_calls(data, records):
    rows = calllogs.expected(records, by=("model",))
    assert data["totals"]["calls"] == sum(r["calls"] for r in rows)
    assert data["totals"]["errors"] == sum(r["errors"] for r in rows)
    assert data["totals"]["tokens"] == sum(r["tokens"] for r in rows)
    by_model = {s["name"]: s for s in data["cost_by_model"]}
    for r in rows:
        s = by_model[r["model"]]
        assert close(s["total"], r["cost_usd"] or 0.0)
        assert s["unpriced"] == r["unpriced"]
        assert close(sum(s["values"]), s["total"])
    assert by_model["mystery-llm"]["unpriced"] > 0  # nobody prices it: left out, and said so
    hourly = {r["window_start"]: r["cost_usd"] for r in calllogs.expected(records, window="hour", by=("model",))
              if r["model"] == "claude-haiku"}
    assert all(close(v, hourly.get(w, 0.0)) for w, v in zip(data["axis"], by_model["claude-haiku"]["values"],
                                                             strict=True))


def test_cost_by_prompt_version_shows_the_version_change(data, records):
    names = {s["name"] for s in data["cost_by_version"]}
    assert {"support@a1b2c3d4", "support@e5f6a7b8", "요약@9c8d7e6f"} <= names
    old = next(s for s in data["cost_by_version"] if s["name"] == "support@a1b2c3d4")
    assert all(v == 0 for v in old["values"][36:])  # the new version took over halfway
    assert any(v > 0 for v in old["values"][:36])


def test_latency_and_error_rate_per_window_are_the_overall_figures(data, records):
    expected = {r["window_start"]: r for r in calllogs.expected(records, window="hour", by=())}
    p50, p95, p99 = data["latency"]
    assert [p50["name"], p95["name"], p99["name"]] == ["P50", "P95", "P99"]
    for i, w in enumerate(data["axis"]):
        assert close(p95["values"][i], expected[w]["p95_ms"])
        assert close(p99["values"][i], expected[w]["p99_ms"])
        assert close(data["error_rate"][0]["values"][i], expected[w]["error_rate"])
    assert max(data["error_rate"][0]["values"]) > 10  # the rate-limit burst shows


def test_tokens_per_day_against_the_daily_limit(data, records):
    days = calllogs.expected(records, window="day", by=())
    assert data["tokens"]["axis"] == [r["window_start"] for r in days]
    assert data["tokens"]["values"] == [r["tokens"] for r in days]
    assert data["tokens"]["limit"] == 400_000
    assert data["tokens"]["over"] == [r["window_start"] for r in days if r["tokens"] > 400_000]


def test_the_most_expensive_prompt_versions_first(data, records):
    priced: dict[tuple, float] = {}  # the priced calls' cost per prompt x version (mystery-llm's left out)
    for r in calllogs.expected(records):
        key = (r["prompt_id"], r["prompt_version"])
        priced[key] = priced.get(key, 0.0) + (r["cost_usd"] or 0.0)
    ranked = sorted(priced, key=lambda k: -priced[k])
    top = data["expensive"]
    assert [(e["prompt_id"], e["prompt_version"]) for e in top] == ranked
    assert all(close(e["cost_usd"], priced[e["prompt_id"], e["prompt_version"]]) for e in top)
    assert next(e for e in top if e["prompt_id"] == HOSTILE_ID)["unpriced"] > 0
    assert close(sum(e["share"] for e in top), 100.0)


def test_top_errors_are_the_monitors(data, records):
    assert data["top_errors"] == calllogs.expected_top_errors(records)


def test_budget_burn_and_its_straight_line_forecast(data, records):
    b = data["budget"]
    priced = sum(r["cost_usd"] or 0.0 for r in calllogs.expected(records, by=("model",)))
    assert (b["source"], b["limit"], b["month"], b["days"], b["today"]) == ("alerts.max_cost_usd", 5, "2025-03", 31, 3)
    assert close(b["spent"], priced)
    assert close(b["forecast"], priced * 31 / 3)  # three days of 31 gone
    assert close(b["cumulative"][2], priced)
    assert b["cumulative"][3] is None


def test_budget_option_wins_and_a_cost_rule_of_another_window_is_no_budget(logs):
    given = dashboard.collect([str(logs)], until=UNTIL, prices=calllogs.PRICES, alerts=ALERTS, budget=20.0)
    assert (given["budget"]["source"], given["budget"]["limit"]) == ("--budget", 20.0)
    daily = AlertsSpec(max_cost_usd={"limit": 5, "window": "1d"})
    assert dashboard.collect([str(logs)], until=UNTIL, prices=calllogs.PRICES, alerts=daily)["budget"] is None


def test_alert_verdicts_are_judged_on_the_window_ending_now(data, records):
    verdicts = {v["key"]: v for v in data["alerts"]}
    assert list(verdicts) == ["max_p95_latency_ms", "max_error_rate", "max_tokens", "max_cost_usd"]
    day = calllogs.expected(records, by=(), since=UNTIL - timedelta(days=1), until=UNTIL)[0]
    assert verdicts["max_tokens"]["value"] == day["tokens"]
    assert verdicts["max_tokens"]["level"] == "alert"  # ~780k tokens against 400k


def test_more_than_three_days_are_drawn_by_the_day(logs, records):
    data = dashboard.collect([str(logs)], since=START, until=START + timedelta(days=5), prices=calllogs.PRICES)
    assert data["window"] == "day"
    assert len(data["axis"]) == 5
    days = calllogs.expected(records, window="day", by=())
    assert [close(v, r["p95_ms"]) for v, r in zip(data["latency"][1]["values"], days, strict=False)] == [True] * 3
    assert data["latency"][1]["values"][3:] == [None, None]  # no call: a gap, not 0
    assert data["alerts"] is None
    assert data["budget"] is None


def test_ci_figures_pass_rate_p95_and_cost_per_call():
    cases = [{"outcome": "passed", "called": True, "latencies": [100.0], "cost_usd": 0.002},
             {"outcome": "failed", "called": True, "latencies": [300.0], "cost_usd": 0.004},
             {"outcome": "skipped", "called": False, "latencies": []},
             {"outcome": "error", "called": True, "latencies": [200.0], "error": "boom", "cost_usd": None}]
    f = dashboard.ci_figures(cases)
    assert f["pass_pct"] == pytest.approx(100 / 3)
    assert f["ci_p95_ms"] == pytest.approx(290.0)
    assert f["ci_cost_per_call"] == pytest.approx(0.002)  # the failed call cost nothing
    assert dashboard.ci_figures([{**cases[0], "cost_usd": None}])["ci_cost_per_call"] is None  # unpriced: n/a


# -- the page ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(data) -> str:
    return dashboard.render(data)


def test_the_page_has_every_section(page):
    for section in ("cards", "alerts", "budget", "charts", "expensive", "errors"):
        assert f'<section id="{section}"' in page
    assert page.count("<svg ") == 6  # budget, cost x2, latency, error rate, tokens
    assert "at this pace $" in page
    assert "over budget" in page


def test_the_page_allows_only_its_own_script_and_style(page):
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)[1])
    assert csp.startswith("default-src 'none'; script-src 'sha256-")
    assert "unsafe-inline" not in csp
    assert "http" not in csp
    assert re.findall(r"<script[^>]*>", page) == ['<script type="application/json" id="promstack-dashboard">',
                                                  "<script>"]
    assert "src=" not in "".join(re.findall(r"<(?:script|link|img)[^>]*>", page))


def test_hostile_prompt_ids_and_errors_stay_text(page, data):
    assert "<script>window.__pwned" not in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;window.__pwned=2&#34;&gt; &amp; &#34;quoted&#34;" in page  # the table
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page  # tables and SVG titles
    embedded = re.search(r'id="promstack-dashboard">(.*?)</script>', page, re.S)[1]
    assert "<" not in embedded
    assert "\\u003c/script\\u003e" in embedded
    assert json.loads(embedded)["top_errors"] == data["top_errors"]


def test_an_empty_range_says_so(logs):
    data = dashboard.collect([str(logs)], since=START + timedelta(days=30), prices=calllogs.PRICES)
    page = dashboard.render(data)
    assert data["totals"]["calls"] == 0
    assert data["axis"] == []
    assert "No calls in this range." in page
    assert "No failed call in this range." in page


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture
def configured(tmp_path, logs, monkeypatch) -> Path:
    calllogs.project(tmp_path, alerts={"max_cost_usd": 5, "max_tokens": 400000})
    shutil.copytree(logs, tmp_path / "logs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_monitor_html_writes_the_page_from_the_configured_log(configured, capsys):
    assert main(["monitor", "--html", "out/dash.html", "--until", "2025-03-04"]) == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"promstack: wrote out/dash\.html \(\d+ KiB, 2,890 calls\)", out)
    page = (configured / "out/dash.html").read_text(encoding="utf-8")
    assert "2025-03: $" in page
    assert "alerts.max_cost_usd" in page
    assert not list((configured / "out").glob("*.tmp"))  # written through a temp file, renamed


@pytest.mark.parametrize(("args", "says"), [
    (["--budget", "10"], "--budget goes with --html PATH (the dashboard); add --html dashboard.html"),
    (["--results", "r.json", "--format", "csv"], "--results with --format csv: the test run beside production is in "
                                                 "the table, --format json and --html"),
    (["--html", "d.html", "--budget", "0"], "--budget 0: give the monthly budget in USD, more than 0"),
    (["--html", "d.html", "--budget", "nan"], "--budget nan: give the monthly budget in USD"),
    (["--html", "d.html", "--results", "missing.json"], "missing.json: results JSON not found"),
    (["--html", "d.html", "--window", "week"], "--window week: choose one of hour, day"),
    (["--html", "."], "--html .: cannot write the page there (a folder); give a file path such as dashboard.html"),
])
def test_bad_dashboard_options_are_one_line(configured, capsys, args, says):
    assert main(["monitor", *args]) == 4
    assert says in one_error_line(capsys)
    assert not (configured / "d.html").exists()


def test_results_put_the_test_runs_figures_beside_the_live_ones(project, capsys, monkeypatch):
    """A real run writes its results JSON and, through log:, the call log; the application's
    calls (the SDK's) to the same log are the live side, the run's own lines are not."""
    from pytest_promstack import Client

    project.server.replies = {"환불": "환불은 7일 이내", "배송": "배송은 3일"}
    project.write({"prompt_tests/a.csv": "input,__expected\n환불,contains:7일\n배송,contains:없는말\n"},
                  log="logs/calls.jsonl")
    project.run("--promstack-json=r.json").assert_outcomes(passed=1, failed=1)
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    case = doc["cases"][0]
    monkeypatch.chdir(project.path)
    with Client(project.path) as app:
        prompt = app._get_runner().prompt(case["prompt_id"])
        assert prompt.version == case["prompt_version"]
        for text in ("문의 1", "문의 2", "문의 3"):
            app.complete(prompt, model="mine", input=text)
    assert main(["monitor", "--results", "r.json", "--top-errors", "0"]) == 0
    table = capsys.readouterr().out.splitlines()
    beside = table[table.index(next(x for x in table if x.startswith("test run "))):]
    assert beside[0].endswith("(r.json) beside production (the calls the application made; test runs' lines left "
                              "out)")
    assert beside[3].split()[:5] == [case["prompt_id"], case["prompt_version"], "mine", "2", "50.0"]
    assert beside[3].split()[9] == "3"
    assert main(["monitor", "--html", "d.html", "--results", "r.json"]) == 0
    assert "promstack: wrote d.html" in capsys.readouterr().out
    page = (project.path / "d.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="promstack-dashboard">(.*?)</script>', page, re.S)[1])
    [row] = data["ci"]["rows"]
    assert (row["prompt_id"], row["prompt_version"], row["model"]) == (case["prompt_id"], case["prompt_version"],
                                                                       "mine")
    assert (row["cases"], row["pass_pct"], row["live_calls"]) == (2, 50.0, 3)
    assert row["live_p95_ms"] is not None
    assert row["ci_p95_ms"] is not None
    assert '<section id="ci">' in page
    assert "r.json" in page
