"""A real OpenAI-compatible server, not our mock: llama-cpp-python's ``llama_cpp.server`` with
the bundled Gemma 3 270M, keyless, refusing ``response_format: json_schema`` with HTTP 500
as it does. A small project with an LLM judge and a server-specific sampling param runs
through it under both transports; its answers are cut at max_tokens, and a rerun replays
them from the cache."""

from __future__ import annotations

import json

import pytest

from tests.support.llama_server import ALIAS, llama_server  # noqa: F401  (a session fixture)

CASES = ("What is the capital of France?", "Name a colour.", "Say hello in Korean.")


def llama_project(url: str, transport: str) -> dict[str, str]:
    model = {"model": f"openai/{ALIAS}", "api_base": url}  # no api_key_env: the server needs no key
    return {
        "promstack.yaml": json.dumps({
            "models": [
                {"name": "gemma", **model, "params": {"repeat_penalty": 1.1, "top_k": 20, "min_p": 0.05}},
                # a server-specific param of the wrong type: proof that it reaches the server
                {"name": "gemma-bad", **model, "params": {"repeat_penalty": "high"}},
            ],
            "defaults": {"temperature": 0, "max_tokens": 6},  # every answer is cut at max_tokens
            "judges": {"sanity": {"model": "gemma", "criteria": ["Is the reply in English?"], "scale": [1, 5],
                                  "pass_score": 1, "language": "en", "params": {"max_tokens": 96}}},
            "transport": transport,
            "concurrency": 2,
            "max_retries": 4,
            "retry_backoff": 0.01,
            "suites": {"s": {"tests": ["prompt_tests/*"]}},
        }),
        "prompt_tests/a.csv": "input,__expected\n" + "".join(f"{q},judge:sanity\n" for q in CASES),
    }


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_judged_project_runs_against_llama_cpp_server_under_both_transports(
        project, llama_server, transport, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-server")  # not needed (test_engine checks it is never sent)
    project.write(llama_project(llama_server.url, transport))
    result = project.run("--promstack-json=r.json")
    outcomes = {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "failed", "errors")}
    # gemma-bad's three cases error (its param is refused); gemma's pass, unless the 270M judge
    # answers a verdict outside its scale (llama.cpp builds differ on it): that case errors saying so
    assert outcomes.get("errors", 0) >= 3
    assert outcomes.get("passed", 0) + outcomes["errors"] == 6
    judged = [line for line in result.stdout.lines if line.startswith("prompt_tests/a.csv:") and " [gemma]: " in line]
    assert len(judged) == outcomes["errors"] - 3
    assert all(" [gemma]: judge sanity gave no usable verdict: " in line for line in judged), judged
    result.stdout.fnmatch_lines(["promstack: 3 of 6 cases have an answer cut at max_tokens (finish_reason length*"])
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert sorted(c["truncated"] for c in doc["cases"]) == [0, 0, 0, 1, 1, 1]
    # a server-specific param reached the server, whose refusal (a 500 validation error) is not retried
    result.stdout.fnmatch_lines(["*[[]gemma-bad[]]: model call failed: *HTTP 500*repeat_penalty*(after 1 attempt)"])
    warnings = [line for line in result.stdout.lines if "refused response_format json_schema" in line]
    assert len(warnings) == 1, result.stdout.str()
    assert warnings[0].startswith(f"promstack: warning: judge model gemma at {llama_server.url} refused ")
    assert "asked for json_object with the schema instead" in warnings[0]
    calls = [json.loads(x) for x in (project.path / ".promstack/calls.jsonl").read_text().splitlines()]
    judge = [c for c in calls if c["kind"] == "judge"]
    # one refused judge call, remembered: every other judge call asked json_object first time (a
    # verdict outside the scale is asked for once more, so there may be a fourth)
    assert [c["status"] for c in judge] == ["retry"] + ["ok"] * (len(judge) - 1)
    assert len(judge) - 1 >= 3
    assert [c["attempts"] for c in judge if c["status"] == "ok"].count(2) == 1
    good = [c for c in calls if c["kind"] == "model" and c["model"] == "gemma"]
    assert [(c["status"], c["attempts"]) for c in good] == [("ok", 1)] * 3
    assert [c["attempts"] for c in calls if c["model"] == "gemma-bad"] == [1] * 3
    rerun = project.run()  # the cut answers and the verdicts were cached: nothing reaches the server again
    rerun.assert_outcomes(passed=outcomes.get("passed", 0), errors=outcomes["errors"])
    again = [json.loads(x) for x in (project.path / ".promstack/calls.jsonl").read_text().splitlines()][len(calls):]
    replayed = [c for c in again if c["model"] == "gemma"]
    assert len(replayed) == 3 + len(judge) - 1  # 3 answers, and the verdicts
    assert all(c["cached"] for c in replayed)
