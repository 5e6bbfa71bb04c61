"""`promstack prompt cost ID`: per registry version, fixed against logged input tokens, volumes and
cost per call from the configured call log, the two versions' cost difference beside their recorded
quality, the cheapest passing model of a results JSON at live volumes, JSON and the table, and every
bad input as one line with exit 4. No network: the tokenizer's files are bundled with litellm."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pytest_promstack.cli import main
from pytest_promstack.versions import PromptRegistry
from tests.support.project import one_error_line, write

V1 = ("id: support\nmessages:\n  - {role: system, content: 'You are a polite support agent for ACME. Answer in "
      "Korean, in at most three sentences, and never promise refunds.'}\n  - {role: user, content: '{{ question }}'}\n")
V2 = "id: support\nmessages:\n  - {role: system, content: 'You are ACME support. Answer briefly in Korean.'}\n" \
     "  - {role: user, content: '{{ question }}'}\n"
START = datetime(2025, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """Two recorded versions of `support` (v1 evaluated 80, v2 evaluated 84), and a call log where v1
    ran 10 days at 50 calls a day and v2 then 5 days at 100 a day."""
    models = [{"name": "mini", "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}]
    write(tmp_path, {"promstack.yaml": yaml.safe_dump({"models": models, "log": "logs/calls.jsonl", "suites": {
        "s": {"prompt": "prompts/support.yaml", "tests": ["t.csv"]}}}), "prompts/support.yaml": V1,
        "t.csv": "question\nx\n"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMSTACK_USER", "민지")
    monkeypatch.delenv("CI", raising=False)
    assert main(["prompt", "list"]) == 0
    (tmp_path / "prompts/support.yaml").write_text(V2, encoding="utf-8")
    assert main(["prompt", "list"]) == 0
    registry = PromptRegistry(tmp_path)
    h1, h2 = (v["hash"] for v in registry.versions("support"))
    registry.record_evaluation("support", 1, {"score": 80, "passed": True, "run_id": "r1", "status": 0})
    registry.record_evaluation("support", 2, {"score": 84, "passed": True, "run_id": "r2", "status": 0})
    lines = [_line(START + timedelta(days=d, minutes=i), h1, 0.0003) for d in range(10) for i in range(50)]
    lines += [_line(START + timedelta(days=10 + d, minutes=i), h2, 0.0002) for d in range(5) for i in range(100)]
    # a test run's lines in the same log (a suite's cases, a fixture test): not live traffic
    lines += [{**_line(START + timedelta(days=3, minutes=i), h1, 0.0003), "suite": "s", "case_id": f"c{i}"}
              for i in range(70)]
    lines += [{**_line(START + timedelta(days=12), h2, 0.0002), "suite": "fixture", "case_id": "tests/test_a.py::t"}]
    write(tmp_path, {"logs/calls.jsonl": "".join(json.dumps(x) + "\n" for x in lines)})
    return tmp_path


def _line(when: datetime, version: str, cost: float) -> dict:
    return {"timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "kind": "model",
            "prompt_id": "support", "prompt_version": version, "model": "mini", "input_tokens": 200,
            "output_tokens": 40, "cost_usd": cost, "latency_ms": 600.0, "cached": False, "status": "ok"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no network in these tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def cost_json(capsys, *args: str) -> dict:
    assert main(["prompt", "cost", "support", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_logged_version_with_its_volume_cost_and_the_comparison(project, capsys):
    doc = cost_json(capsys)
    v1, v2 = doc["versions"]
    assert (v1["number"], v1["calls"], v1["days"], v1["calls_per_day"]) == (1, 500, 10, 50.0)
    assert (v2["number"], v2["calls"], v2["days"], v2["calls_per_day"]) == (2, 500, 5, 100.0)
    assert (v1["model"], v1["litellm_model"]) == ("mini", "openai/gpt-4o-mini")  # the most logged, by its alias
    assert v1["cost_per_call"] == pytest.approx(0.0003)
    assert v2["fixed_tokens"] < v1["fixed_tokens"]
    assert v1["variable_tokens"] == pytest.approx(200 - v1["fixed_tokens"])
    assert v1["fixed_share"] == pytest.approx(100 * v1["fixed_tokens"] / 200)
    assert v1["input_price"] == pytest.approx(0.15e-6)  # gpt-4o-mini in litellm's price map
    c = doc["comparison"]
    assert (c["a"], c["b"], c["calls_per_day"]) == (1, 2, pytest.approx(1000 / 15))
    assert c["cost_per_1000"] == pytest.approx(-0.1)
    assert c["cost_per_month"] == pytest.approx(-0.0001 * 1000 / 15 * 30)
    assert c["fixed_cost_per_1000"] == pytest.approx(c["fixed_tokens"] * 0.15e-6 * 1000)
    assert (c["quality_a"], c["quality_b"], c["quality"]) == (80, 84, 4)
    assert [Path(f).name for f in doc["files"]] == ["calls.jsonl"]


def test_versions_in_the_given_order_by_number_or_label(project, capsys):
    assert main(["prompt", "label", "support", "production", "--version", "1"]) == 0
    capsys.readouterr()
    doc = cost_json(capsys, "--versions", "2", "production")
    assert [v["number"] for v in doc["versions"]] == [2, 1]
    assert doc["versions"][1]["labels"] == ["production"]
    assert (doc["comparison"]["a"], doc["comparison"]["b"], doc["comparison"]["quality"]) == (2, 1, -4)


def test_since_keeps_the_recent_calls_only(project, capsys):
    doc = cost_json(capsys, "--since", "2025-03-11")
    assert [v["number"] for v in doc["versions"]] == [2]  # v1 ran before: not in the logs any more
    assert doc["comparison"] is None


def test_without_logs_the_latest_two_versions_show_their_fixed_text(project, capsys):
    (project / "logs/calls.jsonl").unlink()
    doc = cost_json(capsys, "--model", "openai/gpt-4o-mini")
    assert [v["number"] for v in doc["versions"]] == [1, 2]
    assert all(v["fixed_tokens"] > 0 and v["calls_per_day"] is None for v in doc["versions"])
    assert doc["notes"] == ["no call log (log: of the config, or --logs PATH): no live volumes, fixed text only"]
    assert doc["comparison"]["cost_per_month"] is None


def test_the_cheapest_passing_model_of_a_results_json_at_live_volumes(project, capsys):
    from pytest_promstack.results.document import document
    from pytest_promstack.results.gates import cheapest
    from pytest_promstack.results.records import blank

    records = [blank(suite="s", prompt_id="support", model=model, case_id=f"c{i}", file="t.csv", row=i + 1, called=True,
                     outcome="passed",
                     cost_usd=cost, repeats=1, model_calls=1)
               for model, cost in (("mini", 0.0001), ("big", 0.002)) for i in range(4)]
    run = {"id": "r1", "started": "2025-03-16T00:00:00Z", "git_commit": None, "settings": {}}
    results = project / "results.json"
    results.write_text(json.dumps(document(run, records, None, selection=cheapest(records, {}, {}))),
                       encoding="utf-8")
    doc = cost_json(capsys, "--results", str(results))
    [c] = doc["cheapest"]
    assert (c["model"], c["cost_per_call"]) == ("mini", pytest.approx(0.0001))
    assert c["per_month"] == {"1": pytest.approx(0.0001 * 50 * 30), "2": pytest.approx(0.0001 * 100 * 30)}
    assert main(["prompt", "cost", "support", "--results", str(results)]) == 0
    assert "cheapest model passing every case (suite s): mini, 0.000100 USD per call in the run; at v1's 50.0 " \
           "calls/day 0.15 USD per month" in capsys.readouterr().out


def test_the_table_shows_each_version_and_the_difference(project, capsys):
    assert main(["prompt", "cost", "support"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("promstack prompt cost: support, 1 log file\n")
    header, _, v1, v2 = out.splitlines()[1:5]
    assert header.split() == ["version", "labels", "model", "fixed", "tokens", "mean", "input", "variable", "fixed",
                              "share", "%", "calls/day", "USD/call", "quality"]
    assert v1.split()[:3] == ["v1", "-", "mini"]
    assert v1.split()[-3:] == ["50.0", "0.000300", "80"]
    assert v2.split()[-3:] == ["100.0", "0.000200", "84"]
    assert ("v1 -> v2: logged cost per call -0.000100 USD: -0.10 USD per 1,000 calls, -0.20 USD per month at "
            "66.7 calls/day") in out
    assert "v1 -> v2: quality 80 -> 84 (+4, last evaluations)" in out
    assert "calls/day" in out


@pytest.mark.parametrize(("args", "start"), [
    (["nobody"], "promstack prompt: prompt 'nobody' is not in the registry (known: support)"),
    (["support", "--versions", "7"], "promstack prompt: prompt 'support' has no version 7 (versions 1 to 2)"),
    (["support", "--versions", "staging"], "promstack prompt: prompt 'support' has no label 'staging'"),
    (["support", "--logs", "nowhere/*.jsonl"], "promstack prompt: nowhere/*.jsonl: no call log there"),
    (["support", "--since", "someday"], "promstack prompt: --since someday: not a time"),
    (["support", "--format", "xml"], "promstack prompt: --format xml: choose one of table, json"),
    (["support", "--results", "missing.json"], "promstack prompt: missing.json"),
])
def test_bad_input_is_one_line_and_exit_4(project, capsys, args, start):
    capsys.readouterr()
    assert main(["prompt", "cost", *args]) == 4
    line = one_error_line(capsys)
    assert line.startswith(start), line
