"""The promstack fixture inside an ordinary test suite (no --promstack)."""

from __future__ import annotations

import json


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
    result.stdout.fnmatch_lines(["*reply did not pass (score 0.00):*", "*✗ contains: '3일' in '2일'*"])
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
