"""The promstack fixture inside an ordinary test suite (no --promstack)."""

from __future__ import annotations

import json
import shutil

import pytest


def test_fixture_runs_prompt_checks_reply_and_caches(project):
    project.server.replies = {"환불하고 싶어요": "환불 절차를 안내해 드릴게요", "질문: 배송": "2일"}
    project.write({
        "prompts/support.yaml": "id: support\ntemplate: '{{ input }}'\n",
        "test_app.py": """
            def test_refund_reply(promstack):
                r = promstack.run("support", vars={"input": "환불하고 싶어요"}, model="mine")
                promstack.check(r, "icontains:환불", {"type": "length", "value": {"max": 100}})
                assert r.latency_ms < 5000 and r.input_tokens == 2

            def test_raw_messages_and_failing_check(promstack):
                r = promstack.run([{"role": "user", "content": "질문: 배송"}], model="mine")
                promstack.check(r, "contains:3일")

            def test_many(promstack):
                replies = promstack.run_many([{"prompt": "support", "vars": {"input": f"q{i}"}, "model": "mine"}
                                              for i in range(5)])
                assert [r.text for r in replies] == [f"echo: q{i}" for i in range(5)]
        """,
    }, suites={"s": {"prompt": "prompts/support.yaml", "tests": ["prompts/*.yaml"]}})
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_app.py")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["promstack: reply: 1 of 1 assertions failed", "  ✗ contains: '3일' in '2일'*", "  output: '2일'",
                                 "  at test_app.py:*: promstack.check(r, \"contains:3일\")"])
    result.stdout.no_fnmatch_line("*pytest_promstack*")  # the test's lines, not the plugin's source
    result.stdout.fnmatch_lines(["*promstack fixture calls*"])
    assert project.server.count == 7
    project.server.reset()
    project.pytester.runpytest("-p", "no:cacheprovider", "test_app.py").assert_outcomes(passed=2, failed=1)
    assert project.server.count == 0
    lines = (project.path / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["case_id"] == "test_app.py::test_refund_reply"


def test_fixture_without_any_config_uses_litellm_names(pytester):
    pytester.makepyfile(test_x="""
        def test_unknown_prompt(promstack):
            import pytest
            with pytest.raises(Exception, match="no prompt 'nope'"):
                promstack.run("nope", model="openai/x")
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


FIXTURE_TESTS = {
    "prompts/support.yaml": "id: support\ntemplate: '{{ input }}'\n",
    "test_app.py": """
        import pytest

        @pytest.mark.parametrize("q", ["환불", "배송", "교환", "취소"], ids=["refund", "ship", "swap", "cancel"])
        def test_reply(promstack, q):
            r = promstack.run("support", vars={"input": q}, model="mine")
            promstack.check(r, f"contains:{q}")
    """,
}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_fixture_records_a_cassette_then_replays_it_with_no_server_and_its_summary_survives_xdist(project, xdist):
    project.write(FIXTURE_TESTS, suites={"s": {"prompt": "prompts/support.yaml", "tests": ["prompts/*.yaml"]}})
    run = project.pytester.runpytest
    result = run("-p", "no:cacheprovider", "--promstack-record", *xdist)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*promstack fixture calls*", "fixture * 4 *", "promstack: wrote cassettes/fixture.jsonl "
                                 "(4 fixture calls recorded)"])
    entries = [json.loads(x) for x in (project.path / "cassettes/fixture.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(e["case"] for e in entries) == sorted(f"test_app.py::test_reply[{q}]"
                                                        for q in ("refund", "ship", "swap", "cancel"))
    shutil.rmtree(project.path / ".promstack/cache")
    project.server.reset()
    project.server.faults = {"mine": 500}  # any live call would now fail
    result = run("-p", "no:cacheprovider", "--promstack-cache=replay", *xdist)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["fixture * 4 * 4/4"])  # four replies, all from the cassette
    assert project.server.count == 0
    project.write({"test_new.py": "def test_new(promstack):\n    promstack.run('support', vars={'input': 'new'}, model='mine')\n"},
                  suites={"s": {"prompt": "prompts/support.yaml", "tests": ["prompts/*.yaml"]}})
    result = run("-p", "no:cacheprovider", "--promstack-cache=replay", "test_new.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*promstack: model call failed: mine, prompt support: cache miss in replay mode*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert project.server.count == 0


def test_a_failed_call_fails_the_test_in_one_line_unless_the_test_takes_the_error(project):
    project.server.faults = {"mine": 400}
    project.write({"test_app.py": """
        def test_forgets_to_check(promstack):
            r = promstack.run([{"role": "user", "content": "hi"}], model="mine")
            assert r.text == "" or True  # would pass on an empty text

        def test_takes_the_error(promstack):
            r = promstack.run([{"role": "user", "content": "hi"}], model="mine", allow_error=True)
            assert "HTTP 400" in r.error and r.text == ""
    """, "prompt_tests/a.csv": "input\nx\n"}, max_retries=0)
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_forgets_to_check*", "promstack: model call failed: mine: BadRequestError (HTTP 400)*"])
    result.stdout.no_fnmatch_line("*runner.py*")


def test_check_asks_the_configured_default_judge_and_names_an_unknown_assertion(project):
    from tests.plugin.test_judges import is_judge, judge_config, verdict
    from tests.support.fake_openai import Reply

    project.server.respond = lambda body: Reply(text=verdict(5 if "echo: 환불" in str(body) else 2)) if is_judge(body) else None
    project.write({**judge_config(project), "test_app.py": """
        def test_judged(promstack):
            r = promstack.run([{"role": "user", "content": "환불"}], model="mine")
            promstack.check(r, "llm-rubric:환불 절차를 안내한다")

        def test_judged_low(promstack):
            r = promstack.run([{"role": "user", "content": "배송"}], model="mine")
            promstack.check(r, "llm-rubric:환불 절차를 안내한다")

        def test_typo(promstack):
            r = promstack.run([{"role": "user", "content": "x"}], model="mine")
            promstack.check(r, "contians:x")
    """, "prompt_tests/a.csv": "input\nx\n"})
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "*✗ llm-rubric: judge support_quality:rubric 25/100*",
        "promstack: check: unknown assertion 'contians' (did you mean 'contains'?)",
    ])
    result.stdout.no_fnmatch_line("*set default_judge*")
    judged = [r for r in project.server.requests if is_judge(r)]
    assert len(judged) == 2
    assert "환불 절차를 안내한다" in judged[0]["messages"][0]["content"]


def test_a_broken_config_errors_fixture_tests_in_a_few_lines(project):
    project.write({"promstack.yaml": "models: [x]\nmodels: [y]\n",
                   "test_app.py": "def test_a(promstack):\n    pass\n"})
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["promstack: invalid configuration", "promstack.yaml:2: duplicate key 'models'*"])
    result.stdout.no_fnmatch_line("*During handling*")


def test_the_fixture_and_the_test_files_share_one_cache_key_for_the_same_call(project):
    """A case run from a CSV and the same prompt, vars and model through the fixture are one
    request (one key: plan/requests.py builds both), so the second answers from the cache."""
    project.write({
        "prompts/support.yaml": "id: support\ntemplate: '질문: {{ input }}'\nparams: {max_tokens: 32}\n",
        "prompt_tests/a.csv": "input,__expected\n환불,contains:환불\n",
        "test_app.py": """
            def test_same_call(promstack):
                r = promstack.run("support", vars={"input": "환불"}, model="mine")
                assert r.cached, r
        """,
    }, suites={"s": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*.csv"]}})
    project.run("prompt_tests").assert_outcomes(passed=1)
    assert project.server.count == 1
    project.pytester.runpytest("-p", "no:cacheprovider", "test_app.py").assert_outcomes(passed=1)
    assert project.server.count == 1
