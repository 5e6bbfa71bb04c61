"""The model arena: blind pairwise judging in both orders, ties on disagreement, ratings."""

from __future__ import annotations

import json

from tests.support.fake_openai import Reply


def arena_config(project, models=("m1", "m2", "m3")):
    def model(name, litellm):
        return {"name": name, "model": litellm, "api_base": project.server.url, "api_key_env": "PROMSTACK_TEST_KEY"}
    return json.dumps({
        "models": [model(m, f"openai/{m}") for m in models] + [model("judge", "openai/judge-model")],
        "judges": {"pref": {"model": "judge", "criteria": ["응답이 질문에 적절한가?"]}},
        "arena": {"models": list(models), "judge": "pref", "tests": ["arena/*.csv"], "seed": 7, "bootstrap": 200},
        "max_retries": 0,
        "suites": {},
    }, ensure_ascii=False)


def replies_by_model(body):
    if body["model"] == "judge-model":
        return None
    return Reply(text=f"{body['model']} says {body['messages'][-1]['content']}")


def judge_reply(choose):
    def respond(body):
        if body["model"] != "judge-model":
            return replies_by_model(body)
        prompt = body["messages"][0]["content"]
        a = prompt.split("[응답 A]\n", 1)[1].split(" says", 1)[0]
        b = prompt.split("[응답 B]\n", 1)[1].split(" says", 1)[0]
        return Reply(text=json.dumps({"winner": choose(a, b), "reason": "r"}))
    return respond


CASES = "input\n" + "\n".join(f"질문 {i}" for i in range(8)) + "\n"


def test_a_judge_that_always_prefers_position_a_gives_ties_and_full_flip_rate(project):
    project.server.respond = judge_reply(lambda a, b: "A")
    project.write({"promstack.yaml": arena_config(project), "arena/a.csv": CASES})
    result = project.run()
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([
        "promstack arena: 24 games, judge order-flip rate 100.0% *",
        "*m1 vs m2: 0 wins, 8 ties, 0 losses",
    ])
    rates = [line for line in result.stdout.lines if line.startswith(("m1 ", "m2 ", "m3 "))]
    assert all(" 50.0% " in line for line in rates), rates
    judge_prompts = [b["messages"][0]["content"] for b in project.server.requests if b["model"] == "judge-model"]
    assert len(judge_prompts) == 48  # 8 cases x 3 pairs x 2 orders
    assert not any(name in p.split("[응답 A]")[0] for p in judge_prompts for name in ("m1", "m2", "m3"))


def test_a_judge_that_prefers_one_model_ranks_it_first(project):
    rank = {"m3": 3, "m1": 2, "m2": 1}
    project.server.respond = judge_reply(lambda a, b: "A" if rank[a] > rank[b] else "B")
    project.write({"promstack.yaml": arena_config(project), "arena/a.csv": CASES})
    result = project.run()
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["promstack arena: 24 games, judge order-flip rate 0.0% *"])
    table = [line.split() for line in result.stdout.lines if line.startswith(("m1 ", "m2 ", "m3 "))]
    assert [row[0] for row in table] == ["m3", "m1", "m2"]  # by Bradley-Terry rating
    assert [row[1] for row in table] == ["100.0%", "50.0%", "0.0%"]
    result.stdout.fnmatch_lines(["*m1 vs m3: 0 wins, 0 ties, 8 losses"])
    # seeded: the same run gives the same intervals
    again = project.run()
    assert [x for x in again.stdout.lines if "[" in x and "%" in x] == [x for x in result.stdout.lines if "[" in x and "%" in x]


def test_an_unusable_pairwise_verdict_errors_the_case(project):
    def respond(body):
        if body["model"] == "judge-model":
            return Reply(text="A is better")
        return replies_by_model(body)

    project.server.respond = respond
    project.write({"promstack.yaml": arena_config(project, models=("m1", "m2")), "arena/a.csv": "input\nq\n"})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*arena judge gave no usable verdict for m1 vs m2: *not JSON*raw answer*"])


def test_results_json_carries_cases_summary_and_arena(project):
    rank = {"m2": 2, "m1": 1}
    project.server.respond = judge_reply(lambda a, b: "A" if rank[a] > rank[b] else "B")
    project.write({"promstack.yaml": arena_config(project, models=("m1", "m2")), "arena/a.csv": "input\n하나\n둘\n"})
    result = project.run("--promstack-json=out/results.json")
    result.stdout.fnmatch_lines(["promstack: wrote out/results.json"])
    doc = json.loads((project.path / "out/results.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "promstack-results/1"
    assert [c["case_id"] for c in doc["cases"]] == ["arena/a.csv::row-2[arena]", "arena/a.csv::row-3[arena]"]
    assert doc["cases"][0]["vars"] == {"input": "하나"}
    assert doc["arena"]["win_rate"] == {"m1": 0.0, "m2": 1.0}
    assert doc["arena"]["pairs"] == {"m1 vs m2": {"win": 0, "tie": 0, "loss": 2}}
    assert sum(r["cases"] for r in doc["summary"]) == len(doc["cases"])


def test_record_captures_judge_and_arena_calls_so_a_fresh_clone_replays_them(both_modes):
    """Cassettes hold every call a case needs: its own, its judges' and its arena games'."""
    for project in both_modes:
        from tests.plugin.test_judges import CRITERIA, verdict

        def respond(body):
            if body["model"] == "judge-model" and "[응답 A]" not in body["messages"][0]["content"]:
                return Reply(text=verdict(5, 5, 5))
            return judge_reply(lambda a, b: "A" if a < b else "B")(body)

        project.server.respond = respond
        config = json.loads(arena_config(project, models=("m1", "m2")))
        config["judges"]["pref"]["criteria"] = CRITERIA
        config["suites"] = {"judged": {"tests": ["judged/*.csv"], "models": ["m1"]}}
        project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False), "arena/a.csv": "input\n하나\n둘\n",
                       "judged/a.csv": "input,__expected\n셋,judge:pref\n"})
        recorded = project.run("--promstack-record", "--promstack-json=before.json")
        recorded.assert_outcomes(passed=3)
        made = project.server.count
        arena = [json.loads(x) for x in (project.path / "cassettes/arena.jsonl").read_text(encoding="utf-8").splitlines()]
        assert sum(e["model"] == "openai/judge-model" for e in arena) == 4  # 2 cases x 1 pair x 2 orders
        judged = [json.loads(x) for x in (project.path / "cassettes/judged.jsonl").read_text(encoding="utf-8").splitlines()]
        assert sorted(e["model"] for e in judged) == ["openai/judge-model", "openai/m1"]
        assert made == 4 + 4 + 2  # contenders, arena judge, case + its judge
        import shutil

        shutil.rmtree(project.path / ".promstack")
        project.server.reset()
        replayed = project.run("--promstack-cache=replay", "--promstack-json=after.json")
        replayed.assert_outcomes(passed=3)
        assert project.server.count == 0
        before, after = (json.loads((project.path / n).read_text(encoding="utf-8")) for n in ("before.json", "after.json"))
        assert after["quality"] == before["quality"] == 100.0
        assert after["arena"]["win_rate"] == before["arena"]["win_rate"] == {"m1": 1.0, "m2": 0.0}


def test_the_estimate_counts_the_arena_games_and_bounds_what_the_run_spends(project):
    """Two cases, three contenders: 6 answers and 12 judge calls (3 pairs x 2 orders each)."""
    config = json.loads(arena_config(project))
    config["defaults"] = {"max_tokens": 40}
    for m in config["models"]:
        m["params"] = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    project.server.respond = judge_reply(lambda a, b: "A")
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False), "arena/a.csv": "input\n질문 1\n질문 2\n"})
    result = project.run("--promstack-estimate")
    assert result.ret == 0
    assert project.server.count == 0
    result.stdout.fnmatch_lines(["m1 * 2 * 0 *", "judge * 12 * 0 *"])
    bound = float(next(x for x in result.stdout.lines if x.startswith("promstack estimate: at most")).split()[4])
    real = project.run("--promstack-json", "out.json")
    real.assert_outcomes(passed=2)
    assert project.server.count == 18
    cases = json.loads((project.path / "out.json").read_text(encoding="utf-8"))["cases"]
    spent = sum(c["cost_usd"] + c["eval_cost_usd"] for c in cases)
    assert 0 < spent <= bound
