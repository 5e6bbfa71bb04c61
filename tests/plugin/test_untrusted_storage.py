"""Stored data from someone else's hands (a restored CI cache, a pull request's cassettes,
results JSONs, the prompt registry): it is validated, never followed outside its folder, and a
bad piece is one line naming where it is, never a traceback."""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from pytest_promstack.cli import main
from tests.support.project import config, one_error_line, write

# the exact row of the attack: an expired entry whose file is anywhere on the disk
ROW = ("INSERT INTO Cache(key,raw,store_time,expire_time,access_time,access_count,size,mode,filename) "
       "VALUES('zz',1,0,1,0,0,0,3,?)")
SECURITY = "promstack: warning: security: the cache * names a file *, which promstack never writes*"


def _sql(project, statement: str, *args: object) -> None:
    db = sqlite3.connect(project.path / ".promstack/cache/cache.db")
    with db:
        db.execute(statement, args)
    db.close()


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_an_expired_cache_row_naming_a_file_elsewhere_never_deletes_it(project, tmp_path_factory, where):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run().assert_outcomes(passed=1)
    victim = (tmp_path_factory.mktemp("elsewhere") / "victim") if where == "absolute" else project.path / "victim"
    victim.write_text("precious", encoding="utf-8")
    _sql(project, ROW, str(victim) if where == "absolute" else "../../victim")
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\ny,contains:y\n"})  # one miss: a write
    result = project.run()
    result.assert_outcomes(passed=2)
    assert victim.read_text(encoding="utf-8") == "precious"
    result.stdout.fnmatch_lines([SECURITY])
    assert sum("security:" in line for line in result.stdout.lines) == 1  # one warning, not one per row


@pytest.mark.parametrize(("mode", "name"), [(3, "absolute"), (3, "cache.db"), (2, "ours"), (1, "ours")])
def test_a_cache_row_pointing_at_a_file_is_read_only_when_it_is_one_we_write(project, tmp_path_factory, mode, name):
    """mode 3 (text in a file) with a forged file outside, a file inside that is not a value
    file, or a mode we never write: a miss with one security warning, the model is called."""
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:echo\n"})
    project.run().assert_outcomes(passed=1)
    forged = json.dumps({"text": "forged", "input_tokens": 1, "output_tokens": 1})
    if name == "absolute":
        path = tmp_path_factory.mktemp("elsewhere") / "forged.json"
        filename = str(path)
    else:
        filename = "cache.db" if name == "cache.db" else "ab/cd/0123456789abcdef0123456789ab.val"
        path = project.path / ".promstack/cache" / filename
    if name != "cache.db":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(forged, encoding="utf-8")
    value = forged if mode == 1 else None
    _sql(project, "UPDATE Cache SET mode=?, filename=?, value=?", mode, filename, value)
    project.server.reset()
    result = project.run("-rA")
    result.assert_outcomes(passed=1)
    assert project.server.count == 1  # a miss: called again, the forged text was not used
    result.stdout.fnmatch_lines([SECURITY])


def test_a_settings_row_that_is_not_diskcache_s_cannot_open_a_database_elsewhere(project, tmp_path_factory):
    """diskcache sets every Settings row as an attribute of the cache: ``_directory`` would
    move its database anywhere. Such a cache is moved aside and a new one is used."""
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run().assert_outcomes(passed=1)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    _sql(project, "INSERT INTO Settings VALUES ('_directory', ?)", str(elsewhere))
    result = project.run()
    result.assert_outcomes(passed=1)
    assert list(elsewhere.iterdir()) == []
    result.stdout.fnmatch_lines(["promstack: warning: cache * was damaged (security: the Settings table has "
                                 "'_directory', which is not a diskcache setting); moved aside to cache.damaged-*"])


def test_a_stored_answer_of_the_right_kind_is_still_a_hit(project):
    """Answers of 32 KiB and more are files of diskcache's own naming: those are read."""
    project.server.respond = lambda body: __import__("tests.support.fake_openai", fromlist=["Reply"]).Reply(
        text="long " * 10_000)
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:long\n"})
    project.run().assert_outcomes(passed=1)
    assert list((project.path / ".promstack/cache").rglob("*.val"))
    project.server.reset()
    result = project.run()
    result.assert_outcomes(passed=1)
    assert project.server.count == 0
    result.stdout.no_fnmatch_line("*security*")


def test_a_cassette_entry_whose_request_does_not_match_its_key_errors_naming_the_line(project):
    project.write({"prompt_tests/a.csv": "input,__expected\n하나,contains:하나\n둘,contains:둘\n"})
    project.run("--promstack-record").assert_outcomes(passed=2)
    cassette = project.path / "cassettes/regression.jsonl"
    lines = cassette.read_text(encoding="utf-8").splitlines()
    edited = json.loads(lines[1])
    edited["request"]["messages"][0]["content"] = "something else"  # the key left as it was
    edited["response"] = "echo: 하나 둘"  # a forged answer that would pass either case
    cassette.write_text("\n".join([lines[0], json.dumps(edited, ensure_ascii=False)]) + "\n", encoding="utf-8")
    shutil.rmtree(project.path / ".promstack/cache")  # a fresh clone in CI
    result = project.run("--promstack-cache=replay")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*model call failed: cassettes/regression.jsonl:2: its request does not match its "
                                 "key (request.messages differ from the request this case makes); record the case "
                                 "again with --promstack-record*"])
    project.run("--promstack-record").assert_outcomes(passed=2)  # recording replaces the line
    shutil.rmtree(project.path / ".promstack/cache")
    project.run("--promstack-cache=replay").assert_outcomes(passed=2)


def test_a_params_key_left_out_of_the_cache_key_does_not_break_an_old_cassette(project):
    """Only what the key covers is compared: an entry recorded with ``drop_params`` (left out
    of the key) still replays."""
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run("--promstack-record").assert_outcomes(passed=1)
    cassette = project.path / "cassettes/regression.jsonl"
    entry = json.loads(cassette.read_text(encoding="utf-8"))
    entry["request"]["params"]["drop_params"] = True
    cassette.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    shutil.rmtree(project.path / ".promstack/cache")
    project.run("--promstack-cache=replay").assert_outcomes(passed=1)


@pytest.mark.parametrize(("field", "raw", "problem"), [
    ("latency_ms", "NaN", "latency_ms nan is not a finite number"),
    ("latency_ms", "Infinity", "latency_ms inf is not a finite number"),
    ("latency_ms", "1e400", "latency_ms inf is not a finite number"),
    ("latency_ms", "1e12", "latency_ms 1000000000000.0 is beyond 1,000,000,000 ms"),
    ("input_tokens", str(10**400), "input_tokens 1000000000… is beyond 1,000,000,000,000 tokens"),
    ("output_tokens", str(10**13), "output_tokens 10000000000000 is beyond 1,000,000,000,000 tokens"),
])
def test_a_cassette_entry_with_a_non_finite_or_absurd_number_errors_its_case(project, field, raw, problem):
    priced = {"temperature": 0, "max_tokens": 64, "input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
    project.write({"prompt_tests/a.csv": "input,__expected\n하나,contains:하나\n둘,contains:둘\n"}, defaults=priced)
    project.run("--promstack-record").assert_outcomes(passed=2)
    cassette = project.path / "cassettes/regression.jsonl"
    lines = cassette.read_text(encoding="utf-8").splitlines()
    marker = "__HERE__"
    bad = json.loads(lines[1])
    if field == "latency_ms":
        bad["latency_ms"] = marker
    else:
        bad["usage"][field] = marker
    lines[1] = json.dumps(bad, ensure_ascii=False).replace(f'"{marker}"', raw)
    cassette.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.rmtree(project.path / ".promstack/cache")
    result = project.run("--promstack-cache=replay", "--promstack-report=r.html", "--promstack-json=r.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*cassettes/regression.jsonl:2: {problem}; record the case again*"])
    result.stdout.fnmatch_lines(["promstack: wrote r.html*"])


@pytest.mark.parametrize("raw", ['{"text": "echo: x", "latency_ms": NaN}',
                                 '{"text": "echo: x", "cost_usd": Infinity}',
                                 '{"text": "echo: x", "input_tokens": 10000000000000}'])
def test_a_cache_row_with_a_non_finite_or_absurd_number_is_a_miss(project, raw):
    import diskcache

    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run().assert_outcomes(passed=1)
    with diskcache.Cache(str(project.path / ".promstack/cache")) as cache:
        (key,) = list(cache)
        cache.set(key, raw)
    project.server.reset()
    result = project.run("--promstack-report=r.html")
    result.assert_outcomes(passed=1)
    assert project.server.count == 1
    result.stdout.fnmatch_lines(["promstack: warning: a row of the cache * is not a stored answer of ours*"])


@pytest.mark.parametrize("source", ["provider", "python"])
def test_a_fresh_answer_with_absurd_numbers_errors_and_is_not_cached(project, source):
    from tests.support.fake_openai import Reply

    body = {"id": "x", "object": "chat.completion", "model": "mine",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: x"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10**13, "completion_tokens": 1, "total_tokens": 10**13 + 1}}
    project.server.respond = lambda _: Reply(body=body)
    files = {"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"}
    if source == "python":
        files["app.py"] = "def answer(messages, vars):\n    return {'text': 'echo: x', 'cost_usd': float('nan')}\n"
        files["promstack.yaml"] = ('models: [{name: app, model: "python:app:answer"}]\n'
                                   'suites: {s: {tests: ["prompt_tests/*"]}}\n')
    project.write(files)
    for _ in range(2):  # nothing was cached: the second run errors the same way
        result = project.run()
        result.assert_outcomes(errors=1)
        problem = ("cost_usd nan is not a finite number" if source == "python"
                   else "input_tokens 10000000000000 is beyond 1,000,000,000,000 tokens")
        result.stdout.fnmatch_lines([f"*model call failed: the answer cannot be used: {problem}*"])


def test_stored_answers_refuse_non_finite_and_absurd_numbers():
    from pytest_promstack.execute.stored import problem

    ok = {"text": "t", "input_tokens": 10**12, "output_tokens": 0, "latency_ms": 5.0, "cost_usd": 0.5}
    assert problem(ok) is None
    for key, value in [("input_tokens", 10**12 + 1), ("latency_ms", math.nan), ("latency_ms", math.inf),
                       ("cost_usd", -math.inf), ("cost_usd", 10**400), ("latency_ms", 10**400)]:
        assert problem({**ok, key: value}) is not None, (key, value)


def test_pricing_and_the_html_report_take_non_finite_and_huge_numbers_without_failing():
    from pytest_promstack.execute.pricing import price, priced
    from pytest_promstack.model.types import Request, Response
    from pytest_promstack.report import html
    from pytest_promstack.results.metrics import summarise

    req = Request(model="m", litellm_model="openai/m", messages=(), key="k",
                  params={"input_cost_per_token": 0.001, "output_cost_per_token": 0.001})
    assert priced(req, Response(text="t", input_tokens=10**400, output_tokens=1)).cost_usd is None
    assert price("openai/m", {"input_cost_per_token": "inf", "output_cost_per_token": 0}) is None
    assert price("openai/m", {"input_cost_per_token": -1, "output_cost_per_token": 0}) is None
    doc = _document({"latencies": [math.nan, math.inf, 10**400, 5.0], "input_tokens": 10**400,
                     "cost_usd": math.inf, "eval_cost_usd": math.nan, "quality": math.nan})
    doc["summary"] = summarise(_document()["cases"])  # what a run computes from answers it validated
    doc["quality"] = math.inf
    page = html.render(doc)
    assert "latency distribution of 1 replies" in page  # 5.0 only
    shown = page.replace(html._asset("report.js"), "").replace(html._asset("sortable.js"), "")  # the scripts' own words
    assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", shown), re.search(r".{40}\b(nan|NaN|inf|Infinity)\b.{40}", shown)


# -- promstack report and --promstack-baseline ------------------------------------------------------

def _document(case: dict[str, object] | None = None) -> dict[str, object]:
    run = {"id": "r", "started": "", "finished": "", "git_commit": None, "settings": {}}
    one = {"case_id": "c", "suite": "s", "model": "m", "prompt_id": "p", "prompt_version": "v", "file": "a.csv",
           "row": 2, "outcome": "passed", "called": True, "latencies": [5.0], "input_tokens": 1,
           "output_tokens": 1, "cost_usd": None, "cached": False, "error": None, "repeats": 1, "passes": None,
           **(case or {})}
    return {"schema": "promstack-results/1", "run": run, "cases": [one], "summary": [], "quality": None,
            "calibration": [], "arena": None, "gates": [], "gate_warnings": [], "selection": [], "baseline": None,
            "prompts": []}


def _results(path: Path, latency: str = "5.0") -> Path:
    """A results JSON whose one latency is written as ``latency`` (NaN, 1e400: JSON text)."""
    path.write_text(json.dumps(_document({"latencies": ["__L__"]})).replace('"__L__"', latency), encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "problem"), [
    ("[" * 100_000, "nested deeper than 100 levels"),
    (None, "cases[0].latencies[0]: NaN is not a number a run writes"),
    ("inf", "cases[0].latencies[0]: Infinity is not a number a run writes"),
])
def test_report_of_a_deep_or_non_finite_results_json_exits_4_in_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "b.json"
    if content == "inf":
        _results(path, "1e400")
    elif content is None:
        _results(path, "NaN")
    else:
        path.write_text(content, encoding="utf-8")
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 4
    line = one_error_line(capsys)
    assert line.startswith(f"promstack report: {path}"), line
    assert problem in line
    assert not (tmp_path / "r.html").exists()
    assert main(["report", str(_results(tmp_path / "ok.json")), "-o", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize(("content", "problem"), [
    ("[" * 100_000, "nested deeper than 100 levels"),
    ("NaN", "NaN is not a number a run writes"),
])
def test_a_deep_or_non_finite_baseline_is_one_warning_and_the_run_goes_on(project, content, problem):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\n"})
    if content == "NaN":
        _results(project.path / "base.json", "NaN")
    else:
        (project.path / "base.json").write_text(content, encoding="utf-8")
    result = project.run("--promstack-baseline=base.json", "--promstack-fail-on-regression")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"promstack: warning: base.json*{problem}*; this run is not compared"])


# -- the prompt registry's index ---------------------------------------------------------------

@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*.csv"]}}
    write(tmp_path, {"promstack.yaml": config("http://127.0.0.1:9/v1", suites=suites),
                     "prompts/support.yaml": "id: support\ntemplate: '{{ input }}'\n",
                     "prompt_tests/a.csv": "input,__expected\n질문,contains:질문\n"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PROMSTACK_USER", "민지")
    assert main(["prompt", "list"]) == 0
    return tmp_path


@pytest.mark.parametrize(("change", "problem"), [
    ({"evaluations": [1]}, "versions[0].evaluations[0]: a number, expected an object"),
    ({"evaluations": [{"score": "high"}]}, "versions[0].evaluations[0].score: a string, expected a number or null"),
    ({"evaluations": [{"score": 90, "run_id": "r", "status": 0}]}, "versions[0].evaluations[0].passed: missing"),
    ({"audit": [{"x": 1}]}, "audit[0].time: missing"),
    ({"audit": [{"time": "t", "who": "w", "action": "label", "label": "p", "to": "1"}]},
     "audit[0].to: a string, expected an integer"),
])
@pytest.mark.parametrize("command", [["list"], ["log", "support"]])
def test_prompt_commands_on_evaluations_or_audit_of_wrong_types_exit_4_naming_the_key(repo, capsys, change,
                                                                                       problem, command):
    index = repo / ".promstack/prompts/index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    entry = data["prompts"]["support"]
    if "evaluations" in change:
        entry["versions"][0]["evaluations"] = change["evaluations"]
    else:
        entry["audit"] = change["audit"]
    index.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert main(["prompt", *command]) == 4
    assert one_error_line(capsys) == (f"promstack prompt: .promstack/prompts/index.json: prompts.support.{problem}; "
                                 "restore it from git (git checkout -- .promstack/prompts)")


# -- suite names and the cassettes folder ------------------------------------------------------

@pytest.mark.parametrize("suite", ["../../evilsuite", "a/b", "absolute", "..", "평가/세트"])
def test_a_suite_name_that_is_not_a_file_name_keeps_its_cassette_inside_the_folder(project, tmp_path_factory, suite):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    if suite == "absolute":
        suite = str(elsewhere / "evilsuite")
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"},
                  suites={suite: {"tests": ["prompt_tests/*"]}})
    result = project.run("--promstack-record")
    result.assert_outcomes(passed=1)
    folder = project.path / "cassettes"
    written = [p for p in project.path.rglob("*.jsonl") if p.name != "calls.jsonl"]
    assert [p.parent for p in written] == [folder], written
    for above in (project.path, project.path.parent, project.path.parent.parent, elsewhere):
        assert not list(above.glob("*evilsuite*")), above
    result.stdout.fnmatch_lines([f"promstack: wrote cassettes/{written[0].name} (1 recorded)"])
    shutil.rmtree(project.path / ".promstack/cache")
    project.server.reset()
    project.run("--promstack-cache=replay").assert_outcomes(passed=1)
    assert project.server.count == 0
