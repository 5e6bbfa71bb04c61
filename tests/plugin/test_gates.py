"""Gates: each passing and failing with its exit status and line; budget warnings."""

from __future__ import annotations

import pytest

ROWS = "input,__expected\n" + "\n".join(f"q{i},contains:{'q' if i < 9 else 'zz'}{i}" for i in range(10)) + "\n"


@pytest.mark.parametrize(("gate", "ret", "line"), [
    ("min_pass_rate=90", 1, "promstack: gate min_pass_rate [[]overall[]]: 90.0%, limit 90.0%: passed (passed / cases)"),
    ("min_pass_rate=95", 1, "promstack: gate min_pass_rate [[]overall[]]: 90.0%, limit 95.0%: FAILED (passed / cases)"),
    # 10 inputs of 1 word, 10 answers "echo: qN" of 2 words: 30 tokens
    ("max_tokens=30", 1, "promstack: gate max_tokens [[]overall[]]: 30, limit 30: passed (input + output)"),
    ("max_tokens=29", 1, "promstack: gate max_tokens [[]overall[]]: 30, limit 29: FAILED (input + output)"),
    ("max_error_rate=0", 1, "promstack: gate max_error_rate [[]overall[]]: 0.0%, limit 0.0%: passed*"),
    ("max_p95_latency_ms=60000", 1, "promstack: gate max_p95_latency_ms [[]overall[]]: *, limit 60000: passed"),
    ("max_p95_latency_ms=1", 1, "promstack: gate max_p95_latency_ms [[]overall[]]: *, limit 1: FAILED"),
])
def test_each_gate_prints_value_limit_and_verdict(project, gate, ret, line):
    project.write({"prompt_tests/a.csv": ROWS})
    result = project.run(f"--promstack-gate={gate}")
    assert result.ret == ret  # one case fails anyway: pytest's 1 wins over the gate's 6
    result.stdout.fnmatch_lines([line])


def test_failed_gate_has_its_own_exit_status_when_tests_pass(both_modes):
    for project in both_modes:
        project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\nb,contains:b\n"})
        assert project.run("--promstack-gate=max_tokens=100").ret == 0
        result = project.run("--promstack-gate=max_tokens=5")
        assert result.ret == 6
        result.stdout.fnmatch_lines(["promstack: gate max_tokens [[]overall[]]: 6, limit 5: FAILED*"])


@pytest.mark.parametrize(("gate", "why"), [("min_pass_rate=150", "less than or equal to 100"),
                                          ("max_tokens=-5", "greater than or equal to 0")])
def test_a_command_line_gate_out_of_bounds_is_a_usage_error_like_in_the_config(project, gate, why):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\n"})
    result = project.run(f"--promstack-gate={gate}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--promstack-gate*{gate}*{why}*"])


def test_a_command_line_gate_adds_to_the_config_gate_of_the_same_key(project):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\nb,contains:b\n"},  # 6 tokens
                  gates={"max_tokens": 5})
    result = project.run("--promstack-gate=max_tokens=100")
    assert result.ret == 6  # the looser command-line gate does not replace the config's
    result.stdout.fnmatch_lines(["promstack: gate max_tokens [[]overall[]]: 6, limit 5: FAILED*",
                                 "promstack: gate max_tokens [[]overall[]]: 6, limit 100: passed*"])


def test_budget_warnings_at_80_and_90_percent(project):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\nb,contains:b\n"})  # 6 tokens
    result = project.run("--promstack-gate=max_tokens=7")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["promstack: warning: max_tokens [[]overall[]] at 86% of its budget (6 of 7; warns at 80%)"])
    result = project.run("--promstack-gate=max_tokens=6.5")
    result.stdout.fnmatch_lines(["*at 92% of its budget (6 of 6; warns at 90%)"])


def test_cost_gate_without_a_price_fails_naming_the_model_and_the_fix(project):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\n"})
    result = project.run("--promstack-gate=max_cost_usd=1")
    assert result.ret == 6
    result.stdout.fnmatch_lines(["promstack: gate max_cost_usd [[]overall[]]: n/a, limit $1.00: FAILED (no price for model "
                                 "openai/mine: add input_cost_per_token and output_cost_per_token*"])


def test_custom_prices_in_model_params_make_the_cost_gate_work(project):
    project.write({
        "promstack.yaml": f"""
            models:
              - name: mine
                model: openai/mine
                api_base: {project.server.url}
                api_key_env: PROMSTACK_TEST_KEY
                params: {{input_cost_per_token: 0.001, output_cost_per_token: 0.002}}
            gates: {{max_cost_usd: 0.01}}
            suites:
              s: {{tests: [prompt_tests/a.csv], gates: {{min_pass_rate: 100}}}}
        """,
        "prompt_tests/a.csv": "input,__expected\na,contains:a\n",
    })
    result = project.run()
    assert result.ret == 0
    # 1 word in, 2 words out ("echo: a"): 0.001 + 0.004
    result.stdout.fnmatch_lines(["promstack: gate max_cost_usd [[]overall[]]: $0.005000, limit $0.01: passed (app + eval)",
                                 "promstack: gate min_pass_rate [[]suite s[]]: 100.0%, limit 100.0%: passed*"])


def test_bad_gate_option_is_a_usage_error(project):
    project.write({"prompt_tests/a.csv": "input,__expected\na,contains:a\n"})
    result = project.run("--promstack-gate=max_speed=3")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*max_speed=3*KEY one of min_quality_score*"])


def test_estimate_calls_nothing_and_bounds_the_real_cost(project):
    def model(name, litellm):
        return {"name": name, "model": litellm, "api_base": project.server.url, "api_key_env": "PROMSTACK_TEST_KEY"}
    import json

    project.server.respond = lambda body: (
        __import__("tests.support.fake_openai", fromlist=["Reply"]).Reply(
            text=json.dumps({"scores": [{"criterion": "c", "score": 5, "reason": "r"}]}))
        if body["messages"][0]["content"].startswith("You are a strict") else None)
    project.write({"promstack.yaml": json.dumps({
        "models": [model("mini", "openai/gpt-4o-mini")],
        "defaults": {"max_tokens": 64},
        "judges": {"j": {"model": "mini", "criteria": ["polite?"], "language": "en"}},
        "suites": {"s": {"tests": ["prompt_tests/a.csv"]}},
    }), "prompt_tests/a.csv": "input,__expected\n환불하고 싶어요,judge:j\nhello there,contains:hello\n"})
    result = project.run("--promstack-estimate")
    assert result.ret == 0
    assert project.server.count == 0
    result.stdout.fnmatch_lines(["promstack estimate: an upper bound*", "mini * 3 * 0 *",
                                 "promstack estimate: at most * USD for this run"])
    bound = float(next(x for x in result.stdout.lines if x.startswith("promstack estimate: at most")).split()[4])
    real = project.run()
    real.assert_outcomes(passed=2)
    from tests.conftest import summary_rows

    (row,) = summary_rows(real)
    spent = float(row["cost USD"]) + float(row["eval USD"])
    assert 0 < spent <= bound
    again = project.run("--promstack-estimate")
    # the two model answers are cached now; the judge call is counted anyway (its prompt
    # depends on an answer the estimate does not look at), so the bound stays an upper bound
    again.stdout.fnmatch_lines(["mini * 1 * 2 *"])
    assert project.server.count == 3


def test_estimate_is_the_same_under_xdist(both_modes):
    for project in both_modes:
        project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\ny,contains:y\n"}, models=["gpt-4o-mini"])
        result = project.run("--promstack-estimate")
        assert result.ret == 0
        result.stdout.fnmatch_lines(["promstack estimate: an upper bound*", "gpt-4o-mini * 2 * 0 *"])
        result.stdout.no_fnmatch_line("promstack estimate: at most 0.000000 USD for this run")
        assert project.server.count == 0
