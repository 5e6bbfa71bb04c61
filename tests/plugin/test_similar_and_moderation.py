"""promptfoo's similar (embeddings) and moderation checks over real HTTP: the loopback server's
/v1/embeddings (a bag-of-words vector: texts sharing words are close) and /v1/moderations
(trigger words flag a category). Their calls are cached like the model's, counted as eval
cost apart from it, and fail closed."""

from __future__ import annotations

import json

import pytest

from tests.support.fake_openai import embed


def config(project, **extra):
    return json.dumps({
        "models": [
            {"name": "mine", "model": "openai/mine", "api_base": project.server.url,
             "api_key_env": "PROMSTACK_TEST_KEY"},
            {"name": "embedder", "model": "openai/text-embedding-3-small", "api_base": project.server.url,
             "api_key_env": "PROMSTACK_TEST_KEY"},
            {"name": "moderator", "model": "openai/omni-moderation-latest", "api_base": project.server.url,
             "api_key_env": "PROMSTACK_TEST_KEY"},
        ],
        "embedding_model": "embedder", "moderation_model": "moderator", "max_retries": 0,
        "suites": {"s": {"tests": ["prompt_tests/*"], "models": ["mine"]}}, **extra,
    }, ensure_ascii=False)


def cosine(a: str, b: str) -> float:
    return sum(x * y for x, y in zip(embed(a), embed(b), strict=True))


def calls(server, path_key):
    return [b for b in server.requests if path_key in b and "messages" not in b]


def test_similar_passes_on_shared_meaning_and_fails_far_from_it_with_the_measured_similarity(project):
    # the loopback model echoes: "echo: <input>"
    near, far = "환불 정책 안내", "배송 조회 방법"
    expected = "echo: 환불 정책 안내 드립니다"
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": near}, "assert": [{"type": "similar", "value": expected, "threshold": 0.7}]},
        {"vars": {"input": far}, "assert": [{"type": "similar", "value": expected, "threshold": 0.7}]},
    ], ensure_ascii=False)})
    result = project.run("-v", "--promstack-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    measured = cosine(f"echo: {far}", expected)
    assert measured < 0.7 <= cosine(f"echo: {near}", expected)
    result.stdout.fnmatch_lines([f"*similar: cosine similarity {measured:.2f} < threshold 0.7*"])
    embeddings = calls(project.server, "input")
    assert len(embeddings) == 3  # two replies and the one expected text, asked once
    assert {b["model"] for b in embeddings} == {"text-embedding-3-small"}
    doc = json.loads((project.path / "out.json").read_text(encoding="utf-8"))
    scores = [c["assertions"][0]["score"] for c in doc["cases"]]
    assert scores == pytest.approx([cosine(f"echo: {near}", expected), measured])
    assert [c["judge_calls"] for c in doc["cases"]] == [2, 2]  # each case counts its reply's and the expected's
    assert all(c["judges"] == [] and c["quality"] is None for c in doc["cases"])  # a measure is not a judge

    project.server.reset()
    again = project.run()
    again.assert_outcomes(passed=1, failed=1)
    assert project.server.count == 0  # the model's and the embeddings' answers come from the cache


def test_similar_metrics_lists_negation_and_the_csv_form(project):
    reply = "echo: 서울 날씨 맑음"
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "서울 날씨 맑음"}, "assert": [
            {"type": "similar:dot", "value": reply},  # unit vectors: the dot product is 1
            {"type": "similar:euclidean", "value": reply, "threshold": 0.01},
            {"type": "similar", "value": ["전혀 다른 말", "서울 날씨 맑음"], "threshold": 0.8},
            {"type": "not-similar", "value": ["전혀 다른 말", "완전히 무관"]},
        ]},
    ], ensure_ascii=False), "prompt_tests/b.csv": "input,__expected\n서울 날씨 맑음,similar(0.99):echo: 부산 날씨\n"})
    result = project.run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*cosine similarity {cosine(reply, 'echo: 부산 날씨'):.2f} < threshold 0.99*"])


def test_moderation_flags_fail_only_the_categories_listed(project):
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "안녕하세요"}, "assert": [{"type": "moderation"}]},
        {"vars": {"input": "I will kill the process"}, "assert": [{"type": "moderation"}]},
        {"vars": {"input": "I will kill the process"}, "assert": [{"type": "moderation", "value": ["harassment"]}]},
        {"vars": {"input": "너는 바보야"}, "assert": [{"type": "not-moderation"}]},
    ], ensure_ascii=False)})
    result = project.run("-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*moderation: flagged: violence*"])
    moderated = calls(project.server, "input")
    assert sorted(b["input"] for b in moderated) == sorted(
        ["echo: 안녕하세요", "echo: I will kill the process", "echo: 너는 바보야"])


def test_a_failing_embedding_call_fails_the_case_closed_with_the_reason(project):
    project.server.faults["text-embedding-3-small"] = 400
    project.write({"promstack.yaml": config(project), "prompt_tests/a.csv": "input,__expected\nhi,similar:echo: hi\n"})
    result = project.run()
    result.assert_outcomes(errors=1)  # fail closed: no similarity, no verdict
    result.stdout.fnmatch_lines(["*embedding model embedder gave no usable verdict: the call failed:*400*"])


def test_a_similar_value_that_is_not_text_is_one_line(project):
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "hi"}, "assert": [{"type": "similar", "value": {"a": 1}}]}])})
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*similar: give the expected text (or a list of texts) as its value*"])


def test_a_recorded_cassette_replays_the_embeddings_and_the_moderation_offline(project):
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "환불 정책"}, "assert": [{"type": "similar", "value": "echo: 환불 정책 안내"},
                                                   {"type": "moderation"}]}], ensure_ascii=False)})
    project.run("--promstack-record").assert_outcomes(passed=1)
    entries = [json.loads(line) for line in (project.path / "cassettes/s.jsonl").read_text("utf-8").splitlines()]
    assert sorted(e["request"].get("call", "chat") for e in entries) == ["chat", "embedding", "embedding",
                                                                          "moderation"]
    assert all(len(e["vector"]) == 64 for e in entries if e["request"].get("call") == "embedding")
    project.server.reset()
    project.run("--promstack-cache=replay", "-p", "no:randomly").assert_outcomes(passed=1)
    assert project.server.count == 0


def test_the_estimate_counts_the_embedding_calls(project):
    project.write({"promstack.yaml": config(project),
                   "prompt_tests/a.csv": "input,__expected\n환불,similar:echo: 환불\n"})
    result = project.run("--promstack-estimate")
    result.stdout.fnmatch_lines(["*embedder*2*"])
    assert project.server.count == 0


def test_the_fixture_check_runs_similar_and_moderation(project):
    cfg = json.loads(config(project))
    del cfg["suites"]
    project.write({"promstack.yaml": json.dumps(cfg, ensure_ascii=False), "test_app.py": """
def test_similar(promstack):
    r = promstack.run([{"role": "user", "content": "환불 정책 안내"}], model="mine")
    promstack.check(r, {"type": "similar", "value": "echo: 환불 정책 안내 드립니다", "threshold": 0.7}, "moderation")

def test_far(promstack):
    r = promstack.run([{"role": "user", "content": "배송 조회"}], model="mine")
    promstack.check(r, "similar(0.9):echo: 환불 정책")
"""})
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_app.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*✗ similar: cosine similarity 0.* < threshold 0.9*"])


def test_similar_values_read_files_and_render_the_cases_vars(project):
    project.write({"promstack.yaml": config(project), "data/expected.txt": "echo: 환불 정책 안내\n",
                   "prompt_tests/a.yaml": json.dumps([
                       {"vars": {"input": "환불 정책 안내", "topic": "환불 정책 안내"}, "assert": [
                           {"type": "similar", "value": ["file://../data/expected.txt"], "threshold": 0.99},
                           {"type": "similar", "value": "echo: {{ topic }}", "threshold": 0.99}]}],
                       ensure_ascii=False)})
    project.run().assert_outcomes(passed=1)
    assert {b["input"][0] for b in calls(project.server, "input")} == {"echo: 환불 정책 안내"}


def test_the_embedding_and_the_moderation_see_the_output_after_the_transform(project):
    project.write({"promstack.yaml": config(project), "prompt_tests/a.yaml": json.dumps([
        {"vars": {"input": "환불 정책"}, "options": {"transform": "output.replace('echo: ', '')"}, "assert": [
            {"type": "similar", "value": "환불 정책", "threshold": 0.999},
            {"type": "not-moderation", "transform": "output + ' kill'"}]},
        {"vars": {"input": "x"}, "assert": [{"type": "similar", "value": "x", "transform": "1/0"}]},
    ], ensure_ascii=False)})
    result = project.run("-v")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a.yaml:2*similar check gave no usable verdict: transform '1/0': ZeroDivisionError*"])
    moderated = [b["input"] for b in calls(project.server, "input") if b["model"] == "omni-moderation-latest"]
    assert moderated == ["환불 정책 kill"]
