"""pytest --promstack end to end against the loopback server."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import summary_rows

SEED_CSV = """
input,expected_output
"이 제품의 장점은?","긍정적 답변"
"환불하고 싶어요","환불 절차 안내"
"욕설 포함 입력","정중한 거절"
"""


def test_seed_csv_loads_and_natural_language_expectation_fails_saying_judge_needed(project):
    project.write({"prompt_tests/seed.csv": SEED_CSV})
    result = project.run()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*seed.csv:2 [[]mine[]]*", "*needs an LLM judge*"])
    assert project.server.count == 3


def test_rows_become_items_with_korean_ids_and_k_selects_them(project):
    project.server.replies = {"환불하고 싶어요": "환불 절차를 안내해 드리겠습니다."}
    project.write({"prompt_tests/refunds.csv": """
        input,__expected,__description
        환불하고 싶어요,icontains:환불,환불 절차
        배송은 언제 오나요?,contains:echo,
    """})
    result = project.run("-v", "-k", "환불")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*prompt_tests/refunds.csv::환불 절차[[]mine[]] PASSED*"])
    assert project.server.count == 1  # deselected cases make no call


def test_row_without_description_gets_row_id_and_reportinfo_names_file_and_row(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nhello,contains:nope\n"})
    result = project.run("-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*prompt_tests/a.csv::row-2[[]mine[]] FAILED*",
        "*_ prompt_tests/a.csv:2 [[]mine[]] _*",
        "prompt_tests/a.csv:2 [[]mine[]]: 1 of 1 assertions failed",
        "*✗ contains: 'nope' in 'echo: hello'",
    ])


def test_one_item_per_case_model_and_prompt_variant(project):
    project.write({
        "prompts/short.yaml": "id: short\ntemplate: 'Q: {{ input }}'\n",
        "prompts/long.yaml": "id: long\nmessages:\n  - {role: system, content: 친절하게}\n"
                             "  - {role: user, content: '질문: {{ input }}'}\n",
        "prompt_tests/a.csv": "input,__expected\nhi,contains:echo\nyo,contains:echo\n",
    }, models=["m1", "m2"], suites={"s": {"prompts": ["prompts/short.yaml", "prompts/long.yaml"],
                                          "tests": ["prompt_tests/a.csv"]}})
    result = project.run("--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert len(ids) == 8
    assert "prompt_tests/a.csv::row-2[long-m2]" in ids  # the prompt by its id, never its content hash
    assert project.server.count == 0  # --collect-only calls nothing
    result = project.run()
    result.assert_outcomes(passed=8)
    sent = [r["messages"][-1]["content"] for r in project.server.requests]
    assert sorted(set(sent)) == ["Q: hi", "Q: yo", "질문: hi", "질문: yo"]
    assert {r["model"] for r in project.server.requests} == {"m1", "m2"}


def test_second_identical_run_makes_zero_requests(project):
    project.write({"prompt_tests/a.csv": "input,__expected\n하나,contains:하나\n둘,contains:둘\n"})
    project.run().assert_outcomes(passed=2)
    assert project.server.count == 2
    project.server.reset()
    result = project.run()
    result.assert_outcomes(passed=2)
    assert project.server.count == 0
    (row,) = summary_rows(result)
    assert row["cache hits"] == "2/2"
    assert (project.path / ".promstack/cache/CACHEDIR.TAG").is_file()
    assert (project.path / ".promstack/cache/.gitignore").read_text().strip().endswith("*")


def test_cache_off_and_refresh_call_again(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run()
    project.server.reset()
    project.run("--promstack-cache=off").assert_outcomes(passed=1)
    project.run("--promstack-cache=refresh").assert_outcomes(passed=1)
    assert project.server.count == 2


def test_errors_are_not_cached_and_the_run_says_why(project):
    from tests.support.fake_openai import Reply

    project.server.respond = lambda body: Reply(status=400) if "bad" in str(body["messages"]) else None
    project.write({"prompt_tests/a.csv": "input,__expected\nbad,contains:x\nok,contains:ok\n"})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["promstack: 1 of 2 new answers were not cached: their calls failed, and errors "
                                 "are never cached (the next run calls them again)"])
    project.server.reset()
    project.run().assert_outcomes(passed=1, errors=1)
    assert project.server.count == 1  # only the failed call is made again


def test_truncated_answers_are_cached_marked_and_can_be_failed(project):
    from tests.support.fake_openai import Reply

    project.server.respond = lambda body: Reply(text="cut off mid", finish_reason="length")
    project.write({"prompt_tests/a.csv": "input,__expected\nlong,contains:cut\nstrict,not-finish-reason:length\n"})
    result = project.run("--junitxml=junit.xml", "--promstack-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*✗ not-finish-reason: finish reason 'length'",  # negated: a cut answer fails
        "promstack: 2 of 2 cases have an answer cut at max_tokens (finish_reason length; suites regression): cached "
        "and marked truncated; raise max_tokens, or fail them with not-finish-reason:length"])
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert [(c["finish_reason"], c["truncated"]) for c in doc["cases"]] == [("length", 1), ("length", 1)]
    assert doc["summary"][0]["truncated"] == 2
    props = {p.get("name"): p.get("value") for p in ET.parse(project.path / "junit.xml").iter("property")}
    assert (props["finish_reason"], props["truncated"]) == ("length", "true")
    project.server.reset()
    project.run().assert_outcomes(passed=1, failed=1)
    assert project.server.count == 0  # the rerun is answered from the cache


def test_provider_failure_errors_that_item_and_other_model_passes(project):
    project.server.faults = {"down": 503}
    project.write({"prompt_tests/a.csv": "input,__expected\nhi,contains:hi\n"}, models=["up", "down"])
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/a.csv:2 [[]down[]]: model call failed: *503*"])


def test_missing_api_key_env_errors_with_its_name(project, monkeypatch):
    project.write({"prompt_tests/a.csv": "input,__expected\nhi,contains:hi\n"})
    monkeypatch.delenv("PROMSTACK_TEST_KEY")
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*environment variable PROMSTACK_TEST_KEY is not set*"])
    assert project.server.count == 0


def test_calls_run_concurrently_up_to_the_limit(project):
    project.server.latency = 0.3
    rows = "\n".join(f"q{i},contains:q{i}" for i in range(24))
    project.write({"prompt_tests/a.csv": f"input,__expected\n{rows}\n"}, concurrency=8)
    project.run("--promstack-cache=off").assert_outcomes(passed=24)
    assert project.server.max_in_flight == 8
    project.server.reset()
    project.run("--promstack-cache=off", "--promstack-concurrency=3").assert_outcomes(passed=24)
    assert project.server.max_in_flight == 3


def test_summary_figures_come_from_the_responses(project):
    project.server.replies = {"one two": "a b c", "three": "d"}
    project.write({"prompt_tests/a.csv": "input,__expected\none two,contains:a\nthree,contains:zzz\n"})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    (row,) = summary_rows(result)
    assert row["cases"] == "2"
    assert row["passed"] == "1"
    assert row["failed"] == "1"
    assert row["pass %"] == "50.0"
    assert row["tokens in"] == "3"  # the server counts words: 2 + 1
    assert row["tokens out"] == "4"
    assert row["cost USD"] == "n/a"
    result.stdout.fnmatch_lines(["promstack: warning: litellm has no price for openai/mine*"])


def test_known_price_gives_a_cost(project):
    project.write({
        "promstack.yaml": f"""
            models:
              - name: mini
                model: openai/gpt-4o-mini
                api_base: {project.server.url}
                api_key_env: PROMSTACK_TEST_KEY
            suites:
              s: {{tests: [prompt_tests/a.csv]}}
        """,
        "prompt_tests/a.csv": "input,__expected\none two three,cost:0.01\n",
    })
    result = project.run()
    result.assert_outcomes(passed=1)
    (row,) = summary_rows(result)
    # gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output; 3 words in, 4 words ("echo: one two three") out
    assert float(row["cost USD"]) == pytest.approx(3 * 0.15e-6 + 4 * 0.6e-6, rel=0.01)


def test_header_line_states_cases_files_cache_and_concurrency(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n",
                   "prompt_tests/b.json": '[{"input": "y", "__expected": "contains:y"}]'})
    result = project.run()
    result.stdout.fnmatch_lines([
        "promstack: 2 cases from 2 files, suites regression, cache use (.promstack/cache), concurrency 8"])


def test_junit_properties_per_item(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run("--junitxml=junit.xml").assert_outcomes(passed=1)
    case = ET.parse(project.path / "junit.xml").find(".//testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["model"] == "mine"
    assert props["prompt_id"] == "input"
    assert len(props["prompt_version"]) == 8
    assert float(props["latency_ms"]) > 0
    assert props["input_tokens"] == "1"
    assert props["output_tokens"] == "2"
    assert props["cost_usd"] == "n/a"
    assert props["cached"] == "false"
    assert (props["finish_reason"], props["truncated"]) == ("stop", "false")
    assert (props["model_calls"], props["tool_calls"]) == ("1", "0")


def test_marks_and_metadata_become_markers(project):
    project.write({"pytest.ini": "[pytest]\nmarkers =\n    slow: slow\n",
                   "prompt_tests/a.csv": """
        input,__expected,__metadata:topic,__marks
        a,contains:a,refund,
        b,contains:b,shipping,slow
        c,contains:zzz,refund,xfail: the model cannot do this yet
    """})
    result = project.run("-m", "slow")
    result.assert_outcomes(passed=1, deselected=2)
    result = project.run("-k", "refund", "-rx")  # -m by value (pytest 8.3+): tests/plugin/test_pytest_options.py
    result.assert_outcomes(passed=1, xfailed=1, deselected=1)
    result.stdout.fnmatch_lines(["*XFAIL*the model cannot do this yet*"])
    project.run("-k", "shipping").assert_outcomes(passed=1, deselected=2)


def test_unregistered_mark_under_strict_markers_fails_that_case(project):
    # on the command line: pytest 9.0 does not apply --strict-markers given in addopts
    project.write({"prompt_tests/a.csv": "input,__expected,__marks\na,contains:a,slwo\nb,contains:b,\n"})
    result = project.run("--strict-markers")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]: __marks: 'slwo' is not a registered marker*"])


def test_unregistered_mark_warns_at_its_row_or_errors_only_that_case(project):
    project.write({"prompt_tests/a.csv": "input,__expected,__marks\na,contains:a,slwo\nb,contains:b,\n"})
    result = project.run("-W", "default::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*a.csv:2: PytestUnknownMarkWarning: __marks: 'slwo' is not a registered marker*"])
    # warnings made errors (as in this project's own config): that row errors, the file still runs;
    # on every model of the row (the warning is issued once per row)
    result = project.run("-W", "error::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=1, errors=1)
    project.write({"prompt_tests/a.csv": "input,__expected,__marks\na,contains:a,slwo\nb,contains:b,\n"},
                  models=["mine", "other"])
    project.run("-W", "error::pytest.PytestUnknownMarkWarning").assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]: __marks: 'slwo' is not a registered marker*"])


def test_provider_output_is_scored_without_a_call(project):
    project.write({"prompt_tests/a.csv": 'input,__providerOutput,__expected\nx,"{""a"": 1}",is-json\n'})
    project.run().assert_outcomes(passed=1)
    assert project.server.count == 0


def test_prefix_suffix_and_suite_vars_reach_the_prompt(project):
    project.write({"prompts/p.yaml": "id: p\ntemplate: '{{ greeting }} {{ input }}'\n",
                   "prompt_tests/a.csv": "input,__prefix,__suffix,__expected\n고객,[,],contains:[안녕 고객]\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/a.csv"],
                                "vars": {"greeting": "안녕"}}})
    project.run().assert_outcomes(passed=1)
    assert project.server.requests[0]["messages"][-1]["content"] == "[안녕 고객]"


def test_sampling_params_reach_the_provider(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run()
    body = project.server.requests[0]
    assert body["temperature"] == 0
    assert body["max_tokens"] == 64


def test_model_option_overrides_configured_models(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"}, models=["m1", "m2"])
    result = project.run("--promstack-model=m2", "-v")
    result.assert_outcomes(passed=1)
    assert {r["model"] for r in project.server.requests} == {"m2"}


def test_a_price_added_after_recording_prices_cached_and_replayed_answers(project):
    """Cost comes from the recorded tokens and today's price, not from the moment of the call."""
    files = {"prompt_tests/a.csv": "input,__expected\none two three,contains:one\n"}
    project.write(files)
    project.run("--promstack-record", "--promstack-report=r0.html").assert_outcomes(passed=1)
    html = (project.path / "r0.html").read_text(encoding="utf-8")
    assert '<div class="t">cost (app)</div><div class="v">n/a</div>' in html  # no price yet: n/a, never $0
    assert 'class="val">n/a</text>' in html
    entry = json.loads((project.path / "cassettes/regression.jsonl").read_text(encoding="utf-8"))
    assert "cost_usd" not in entry  # tokens are stored, a stale cost is not
    assert entry["usage"] == {"input_tokens": 3, "output_tokens": 4}
    price = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}
    project.write(files, models=["mine"])  # the config again, now with a price:
    config = (project.path / "promstack.yaml").read_text(encoding="utf-8")
    (project.path / "promstack.yaml").write_text(config.replace("api_key_env", f"params: {json.dumps(price)}\n  api_key_env"),
                                                 encoding="utf-8")
    project.server.reset()
    for mode in ("use", "replay"):
        result = project.run(f"--promstack-cache={mode}", "--promstack-json=r.json", "--promstack-report=r.html")
        result.assert_outcomes(passed=1)
        (row,) = summary_rows(result)
        assert float(row["cost USD"]) == pytest.approx(3 * 0.001 + 4 * 0.002)
        assert row["cache hits"] == "1/1"
        doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
        assert doc["cases"][0]["cost_usd"] == pytest.approx(0.011)
        html = (project.path / "r.html").read_text(encoding="utf-8")
        assert '<div class="t">cost (app)</div><div class="v">$0.01</div>' in html  # the card ...
        assert 'class="val">$0.01</text>' in html  # ... and the cost-by-model chart agree
    assert project.server.count == 0
