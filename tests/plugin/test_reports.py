"""Results JSON (schema, totals), baselines (new / fixed / regressed / still failing), the
cheapest passing model, and `promstack report` regenerating the HTML from the JSON."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from tests.plugin.test_judges import judge_config, verdict
from tests.support.run import run_promstack


def schema():
    return json.loads(files("pytest_promstack.results").joinpath("results.schema.json").read_text(encoding="utf-8"))


def read(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
    return doc


ROWS = "input,__expected\n환불,contains:환불\nb,contains:b\nc,contains:zz\n"


def test_results_json_is_valid_and_its_totals_are_the_sums_of_its_cases(project):
    project.write({"prompt_tests/a.csv": ROWS}, models=["m1", "m2"],
                  gates={"max_tokens": 1000})
    result = project.run("--promstack-json=out/r.json")
    assert result.ret == 1
    doc = read(project.path / "out/r.json")
    cases = doc["cases"]
    assert len(cases) == 6
    assert {c["model"] for c in cases} == {"m1", "m2"}
    for row in doc["summary"]:
        mine = [c for c in cases if c["model"] == row["model"]]
        assert row["cases"] == len(mine)
        assert row["passed"] == sum(c["outcome"] == "passed" for c in mine) == 2
        assert row["input_tokens"] == sum(c["input_tokens"] for c in mine)
        assert row["output_tokens"] == sum(c["output_tokens"] for c in mine)
    first = next(c for c in cases if c["vars"] == {"input": "환불"} and c["model"] == "m1")
    assert first["output"] == "echo: 환불"
    assert first["messages"][-1] == {"role": "user", "content": "환불"}
    assert first["assertions"] == [{"type": "contains", "passed": True, "score": 1.0,
                                    "reason": first["assertions"][0]["reason"]}]
    assert doc["gates"] == [{"scope": "overall", "key": "max_tokens", "value": 18.0, "limit": 1000.0, "passed": True,
                             "note": "input + output"}]
    # no prompt file: the input is the prompt, a template of its own
    assert [(p["id"], p["messages"]) for p in doc["prompts"]] == [("input", [{"role": "user", "content": "{{ input }}"}])]
    assert doc["baseline"] is None
    assert all((row["model_calls"], row["tool_calls"]) == (3, 0) for row in doc["summary"])
    assert "promstack: steps" not in result.stdout.str()  # a one-shot run's summary is as it was
    assert oct((project.path / "out/r.json").stat().st_mode & 0o777) == "0o644"  # readable by CI artifact viewers


def crafted(project, answers: dict[str, str], extra_rows: str = "") -> None:
    """Four cases whose pass/fail is decided by the server's scripted answers."""
    project.server.replies = answers
    project.write({"prompt_tests/a.csv": "input,__expected\nkeep,contains:ok\nbreak,contains:ok\n"
                                         f"mend,contains:ok\nstay,contains:ok\n{extra_rows}"})


def test_baseline_marks_new_fixed_regressed_and_still_failing_regressions_first(project):
    crafted(project, {"keep": "ok", "break": "ok", "mend": "no", "stay": "no"})
    assert project.run("--promstack-save-baseline=base.json").ret == 1
    crafted(project, {"keep": "ok", "break": "no", "mend": "ok", "stay": "no", "fresh": "ok"}, "fresh,contains:ok\n")
    result = project.run("--promstack-cache=off", "--promstack-baseline=base.json", "--promstack-json=now.json")
    assert result.ret == 1
    lines = result.stdout.lines
    top = lines.index(next(x for x in lines if "promstack summary" in x))
    assert lines[top + 1].startswith("promstack: REGRESSED: prompt_tests/a.csv::row-3[mine] [regression]: passed -> "
                                     "failed: ✗ contains: 'ok' in 'no'")
    result.stdout.fnmatch_lines(["promstack: baseline base.json (run *): 1 regressed, 1 fixed, 1 still failing, "
                                 "1 new, 1 still passing"])
    doc = read(project.path / "now.json")
    status = {k.split("::", 1)[1]: v["status"] for k, v in doc["baseline"]["cases"].items()}
    assert status == {"prompt_tests/a.csv::row-2[mine]": "still passing", "prompt_tests/a.csv::row-3[mine]": "regressed",
                      "prompt_tests/a.csv::row-4[mine]": "fixed", "prompt_tests/a.csv::row-5[mine]": "still failing",
                      "prompt_tests/a.csv::row-6[mine]": "new"}
    assert doc["baseline"]["regressions"] == ["regression::prompt_tests/a.csv::row-3[mine]"]


def test_fail_on_regression_exits_7_when_the_quality_score_drops_past_the_margin(project):
    scores = {"now": (5, 5, 5)}
    project.server.respond = lambda body: (None if body["model"] != "gpt-4o-mini"
                                           else __import__("tests.support.fake_openai", fromlist=["Reply"]).Reply(
                                               text=verdict(*scores["now"])))
    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"]["support_quality"]["pass_score"] = 1  # every case passes; only the score moves
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False),
                   "prompt_tests/a.csv": "input,__expected\na,judge:support_quality\nb,judge:support_quality\n"})
    assert project.run("--promstack-save-baseline=base.json").ret == 0
    scores["now"] = (4, 4, 4)  # 100 -> 75: a 25-point drop
    args = ("--promstack-cache=off", "--promstack-baseline=base.json", "--promstack-fail-on-regression")
    result = project.run(*args, "--promstack-regression-margin=30")
    assert result.ret == 0  # within the margin
    result = project.run(*args)
    assert result.ret == 7
    result.stdout.fnmatch_lines(["promstack: REGRESSED: quality score 100.0 -> 75.0 (drop 25.0 > margin 5.0)"])
    result = project.run("--promstack-cache=off", "--promstack-baseline=base.json")
    assert result.ret == 0  # reported, not failed, without --promstack-fail-on-regression


@pytest.mark.parametrize(("content", "problem"), [
    (None, "baseline not found; write one with --promstack-save-baseline"),
    ("{not json", "not a readable results JSON"),
    ('{"schema": "other/1", "cases": []}', "schema 'other/1' is not 'promstack-results/1'"),
])
def test_a_bad_baseline_is_a_warning_and_the_run_goes_on(project, content, problem):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\n",
                   **({"base.json": content} if content else {})})
    result = project.run("--promstack-baseline=base.json", "--promstack-fail-on-regression", "--promstack-json=r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"promstack: warning: base.json: {problem}*; this run is not compared"])
    assert read(project.path / "r.json")["cases"][0]["outcome"] == "passed"


def test_the_summary_names_the_cheapest_model_that_passes_every_gate(project):
    prices = {"cheap": 0.001, "mid": 0.002, "dear": 0.004}
    project.server.replies = {"b": "bad"}
    models = [{"name": n, "model": f"openai/{n}", "api_base": project.server.url, "api_key_env": "PROMSTACK_TEST_KEY",
               "params": {"input_cost_per_token": p, "output_cost_per_token": p}} for n, p in prices.items()]
    project.write({
        "promstack.yaml": json.dumps({"models": models, "gates": {"min_pass_rate": 50},
                                      "suites": {"s": {"tests": ["prompt_tests/*"]}}}),
        # "cheap" fails both of its cases: the server answers it badly
        "prompt_tests/a.csv": "input,__expected\na,contains:a\nb,icontains:B\n",
    })
    project.server.respond = lambda body: (__import__("tests.support.fake_openai", fromlist=["Reply"]).Reply(text="no")
                                           if body["model"] == "cheap" else None)
    result = project.run("--promstack-json=r.json")
    # per case: 1 word in, 2 words out: 3 tokens; "bad" answers 1 word: 2 tokens
    result.stdout.fnmatch_lines(["promstack: suite s: cheapest model passing every gate: mid, $5.00 per 1,000 cases "
                                 "(cheap failed min_pass_rate; dear $10.00 per 1,000 cases)"])
    sel = read(project.path / "r.json")["selection"]
    assert sel[0]["cheapest"] == "mid"
    assert sel[0]["criterion"] == "every gate"


def test_promstack_report_regenerates_the_html_from_the_json(project):
    crafted(project, {"keep": "ok", "break": "ok", "mend": "no", "stay": "no"})
    project.run("--promstack-json=base.json")
    crafted(project, {"keep": "ok", "break": "no", "mend": "ok", "stay": "no"})
    project.run("--promstack-cache=off", "--promstack-json=r.json", "--promstack-report=direct.html",
                "--promstack-baseline=base.json")
    out = run_promstack("report", "r.json", "-o", "again.html", cwd=project.path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("promstack: wrote again.html (")
    assert out.stdout.endswith(", 4 cases)\n")
    direct = (project.path / "direct.html").read_text(encoding="utf-8")
    assert (project.path / "again.html").read_text(encoding="utf-8") == direct  # the JSON alone makes the report
    assert "1 regressed" in direct
    bad = run_promstack("report", "missing.json", cwd=project.path)
    assert bad.returncode == 4
    assert "missing.json: results JSON not found; write one with --promstack-json missing.json on a run" in bad.stderr
    (project.path / "other.json").write_text('{"schema": "x", "cases": []}', encoding="utf-8")
    other = run_promstack("report", "other.json", cwd=project.path)
    assert "other.json: schema 'x' is not " in other.stderr
    assert ": not a results JSON as --promstack-json or --promstack-save-baseline write it" in other.stderr



def test_a_huge_output_is_cut_in_the_html_with_a_note_and_kept_whole_in_the_json(project):
    project.server.replies = {"long": "가" * 30_000}
    project.write({"prompt_tests/a.csv": "input,__expected\nlong,contains:가\n"})
    project.run("--promstack-json=r.json", "--promstack-report=r.html").assert_outcomes(passed=1)
    case = read(project.path / "r.json")["cases"][0]
    assert case["output"] == "가" * 30_000
    assert case["attempts"] == 1
    page = (project.path / "r.html").read_text(encoding="utf-8")
    assert "가" * 20_000 + "\\n… [cut: 10,000 more characters; the results JSON has all]" in page
    assert "가" * 20_001 not in page


def test_an_xfail_that_hides_an_error_is_named_in_the_summary(project):
    """xfail also swallows errors: a case that could not even be scored is called out."""
    project.server.faults = {"mine": 500}
    project.write({"prompt_tests/a.csv": "input,__expected,__marks\na,contains:a,xfail: not yet\n"}, max_retries=0)
    result = project.run("--promstack-json=r.json")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["promstack: warning: xfail hides an error, not a failure: prompt_tests/a.csv::row-2[[]mine[]]: "
                                 "prompt_tests/a.csv:2 [[]mine[]]: model call failed: InternalServerError (HTTP 500)*"])
    case = read(project.path / "r.json")["cases"][0]
    assert case["phase"] == "setup"
    assert case["setup_error"].startswith("prompt_tests/a.csv:2 [mine]: model call failed")
    project.server.faults = {}
    project.write({"prompt_tests/a.csv": "input,__expected,__marks\nb,contains:zz,xfail: not yet\n"})
    quiet = project.run()
    quiet.assert_outcomes(xfailed=1)
    quiet.stdout.no_fnmatch_line("*xfail hides an error*")  # a plain failure under xfail is what xfail is for


def test_without_gates_the_cheapest_model_is_the_cheapest_that_passes_every_case(project):
    models = [{"name": n, "model": f"openai/{n}", "api_base": project.server.url, "api_key_env": "PROMSTACK_TEST_KEY",
               "params": {"input_cost_per_token": p, "output_cost_per_token": p}} for n, p in (("a", 0.001), ("b", 0.002))]
    project.write({"promstack.yaml": json.dumps({"models": models, "suites": {"s": {"tests": ["prompt_tests/*"]}}}),
                   "prompt_tests/a.csv": "input,__expected\nx,contains:x\ny,contains:y\n"})
    project.server.respond = lambda body: (__import__("tests.support.fake_openai", fromlist=["Reply"]).Reply(text="no")
                                           if body["model"] == "a" and "y" in str(body["messages"]) else None)
    result = project.run()
    result.stdout.fnmatch_lines(["promstack: suite s: cheapest model passing every case: b, $6.00 per 1,000 cases "
                                 "(a failed 1 case)"])


VARIANTS = {"prompts/classify.yaml": "id: classify\ntemplate: 'classify: {{ input }}'\n",
            "prompts/terse.yaml": "id: terse\ntemplate: 'terse: {{ input }}'\n",
            "prompt_tests/a.csv": "input,__expected\none,contains:one\ntwo,contains:two\nthree,contains:zz\n"}


def test_editing_a_prompt_variant_keeps_ids_and_shows_its_regressions(both_modes):
    """Variant ids name the prompt, not its content hash: after an edit the baseline still
    pairs every case, reports the version change, and finds the regression."""
    for project in both_modes:
        suites = {"regression": {"prompts": ["prompts/classify.yaml", "prompts/terse.yaml"], "tests": ["prompt_tests/*"]}}
        project.write(VARIANTS, suites=suites)
        project.run("--promstack-save-baseline=base.json").assert_outcomes(passed=4, failed=2)
        assert {c["case_id"] for c in read(project.path / "base.json")["cases"]} == {
            f"prompt_tests/a.csv::row-{i}[{p}-mine]" for i in (2, 3, 4) for p in ("classify", "terse")}
        project.write({"prompts/terse.yaml": "id: terse\ntemplate: 'terse: {{ input | upper }}'\n"}, suites=suites)
        result = project.run("--promstack-baseline=base.json", "--promstack-json=now.json")
        result.assert_outcomes(passed=2, failed=4)
        result.stdout.fnmatch_lines([
            "*prompt_tests/a.csv:2 [[]terse-mine[]]: 1 of 1 assertions failed*",  # the failure header names the variant
            "promstack: REGRESSED: prompt_tests/a.csv::row-2[[]terse-mine[]] [[]regression[]]: passed -> failed*",
            "promstack: baseline base.json (run *): 2 regressed, 2 still failing, 2 still passing; "
            "3 compared across a prompt change",
            "promstack:   regression / mine / terse: prompt * -> *; pass % -66.7*",
        ])
        result.stdout.no_fnmatch_line("*removed*")
        doc = read(project.path / "now.json")
        assert doc["baseline"]["counts"]["new"] == 0
        result = project.run("--promstack-baseline=base.json", "-k", "classify")
        result.stdout.fnmatch_lines(["promstack: baseline base.json (run *): 1 still failing, 2 still passing, "
                                     "3 not run (deselected)"])
        result = project.run("--promstack-baseline=base.json", "-k", "row-2 and classify")
        result.stdout.fnmatch_lines(["promstack: baseline base.json (run *): 1 still passing, 5 not run (deselected)"])
        result.stdout.no_fnmatch_line("promstack:   regression / mine / *pass %*")  # same selection both sides: no false delta


def test_a_row_refused_when_read_keeps_its_reason_in_the_results(project):
    import json

    project.write({"prompt_tests/a.csv": "input,__expected\nx,javascript:output.length < 3\ny,contains:y\n"})
    project.run("--promstack-json=r.json").assert_outcomes(passed=1, failed=1)
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    refused = next(c for c in doc["cases"] if c["row"] == 2)
    assert refused["error"].startswith("prompt_tests/a.csv:2: __expected: javascript assertions are not run here")


def test_a_run_whose_model_calls_tools_shows_its_steps_in_the_summary_json_and_report(project):
    from tests.plugin.test_tool_calls import respond
    from tests.plugin.test_tool_calls import write as weather

    project.server.respond = respond
    weather(project, "auto")
    result = project.run("-p", "no:randomly", "--promstack-json=r.json", "--promstack-report=r.html")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["promstack: steps mine: 4 cases, 4 model calls, 3 tool calls "
                                 "(get_weather 2, book_flight 1)"])
    doc = read(project.path / "r.json")
    assert [(r["model_calls"], r["tool_calls"]) for r in doc["summary"]] == [(4, 3)]
    seoul = next(c for c in doc["cases"] if "서울" in json.dumps(c["vars"], ensure_ascii=False))
    assert seoul["steps"] == [{"turn": 1, "step": 1, "name": "get_weather",
                               "arguments": {"city": "서울", "unit": "celsius"}, "result": None}]
    page = (project.path / "r.html").read_text(encoding="utf-8")
    assert '"steps":[[1,1,"get_weather",' in page
