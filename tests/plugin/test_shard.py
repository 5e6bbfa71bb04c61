"""`--promstack-shard I/N` and `promstack report A.json B.json ...`: the shards split the cases by
whole rows, balanced by planned calls, the same with xdist; their results merge into exactly
the document, gate verdicts and exit status a single run gives (an arena too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pytest_promstack.cli import main
from pytest_promstack.plugin.shard import split
from tests.support.fake_openai import Reply
from tests.support.project import KEY_ENV, config, write
from tests.support.redis_server import RedisServer, free_port

# the last row fails, as expected: no case fails the run, and the pass rate gate does
ROWS = ("input,__expected,__marks\n" + "\n".join(f"질문 {i},contains:질문 {i}," for i in range(7))
        + "\n없는 답,contains:다른 말,xfail: the model cannot\n")
ARENA = "input\n" + "\n".join(f"비교 {i}" for i in range(4)) + "\n"
RUN_ONLY = ("id", "started", "finished", "shard", "merged_from")  # what differs between a run and a merge


def sharded_config(url: str) -> str:
    def model(name: str, litellm: str) -> dict:
        return {"name": name, "model": litellm, "api_base": url, "api_key_env": KEY_ENV}

    return json.dumps({
        "models": [model("m1", "openai/m1"), model("m2", "openai/m2"), model("judge", "openai/judge-model")],
        "judges": {"pref": {"model": "judge", "criteria": ["응답이 질문에 적절한가?"]}},
        "arena": {"models": ["m1", "m2"], "judge": "pref", "tests": ["arena/*.csv"], "seed": 3, "bootstrap": 50},
        "gates": {"min_pass_rate": 95},
        "suites": {"qa": {"tests": ["prompt_tests/qa.csv"], "models": ["m1", "m2"], "gates": {"max_error_rate": 10}},
                   "more": {"tests": ["prompt_tests/more.csv"], "models": ["m1"]}},
    }, ensure_ascii=False)


def respond(body: dict) -> Reply | None:
    if body["model"] == "judge-model":  # the arena's judge prefers m2's answers, in either position
        prompt = body["messages"][0]["content"]
        first = prompt.split("[응답 A]\n", 1)[1].split(":", 1)[0]
        return Reply(text=json.dumps({"winner": "A" if first == "m2" else "B", "reason": "m2"}))
    return Reply(text=f"{body['model']}: {body['messages'][-1]['content']}")


@pytest.fixture
def sharded(project):
    project.server.respond = respond
    project.write({"promstack.yaml": sharded_config(project.server.url), "prompt_tests/qa.csv": ROWS,
                   "prompt_tests/more.csv": ROWS.replace("질문", "추가"), "arena/a.csv": ARENA})
    return project


def case_ids(path) -> list[str]:
    return [c["case_id"] for c in json.loads(path.read_text(encoding="utf-8"))["cases"]]


def without_run_ids(doc: dict) -> dict:
    return {**doc, "run": {k: v for k, v in doc["run"].items() if k not in RUN_ONLY}}


def test_the_merged_shards_are_the_document_and_verdict_of_one_run(sharded, capsys):
    sharded.run()  # the answers into the cache: the whole run and the shards read the same ones
    whole = sharded.run("--promstack-json=all.json")
    assert whole.ret == 6  # every case ran; the overall pass rate gate failed
    for i in (1, 2):
        shard = sharded.run(f"--promstack-shard={i}/2", f"--promstack-json=s{i}.json")
        assert shard.ret == 0  # the gates wait for the merge
        shard.stdout.fnmatch_lines([f"promstack: * cases from *, shard {i}/2 (gates, baseline and cheapest model wait *"])
    first, second = case_ids(sharded.path / "s1.json"), case_ids(sharded.path / "s2.json")
    assert not set(first) & set(second)
    assert sorted(first + second) == case_ids(sharded.path / "all.json")
    for ids in (first, second):  # a row's variants stay together (m1 and m2 of each qa row)
        rows = {i.rsplit("[", 1)[0] for i in ids if i.startswith("prompt_tests/qa.csv")}
        assert all(f"{row}[m1]" in ids and f"{row}[m2]" in ids for row in rows)

    capsys.readouterr()
    status = main(["report", str(sharded.path / "s1.json"), str(sharded.path / "s2.json"),
                   "--json", str(sharded.path / "merged.json"), "-o", str(sharded.path / "merged.html")])
    out = capsys.readouterr().out
    assert status == whole.ret
    assert "promstack: gate min_pass_rate [overall]: 89.3%, limit 95.0%: FAILED (passed / cases)" in out
    assert "promstack: merged 2 files: 28 cases, 0 failed" in out
    single = json.loads((sharded.path / "all.json").read_text(encoding="utf-8"))
    merged = json.loads((sharded.path / "merged.json").read_text(encoding="utf-8"))
    assert single["arena"]["games"] == 4  # what is compared is there
    assert len(single["gates"]) == 2
    assert without_run_ids(merged) == without_run_ids(single)
    assert [m["shard"] for m in merged["run"]["merged_from"]] == [[1, 2], [2, 2]]
    assert (sharded.path / "merged.html").stat().st_size > 10_000


def test_a_shard_is_the_same_with_xdist(sharded):
    sharded.run("--promstack-shard=2/2", "--promstack-json=plain.json")
    sharded.run("--promstack-shard=2/2", "--promstack-json=xdist.json", "-n", "2")
    assert case_ids(sharded.path / "xdist.json") == case_ids(sharded.path / "plain.json")


def test_rows_go_to_the_shard_with_the_fewest_planned_calls():
    rows = [("a", 4), ("b", 1), ("c", 1), ("d", 1), ("e", 1), ("f", 3)]
    assert split(rows, 2) == [["a", "f"], ["b", "c", "d", "e"]]
    assert split(rows, 3) == [["a"], ["b", "d", "f"], ["c", "e"]]  # a tie goes to the lower index
    assert split(rows[:1], 3) == [["a"], [], []]  # more shards than rows: the others run nothing


@pytest.mark.parametrize("value", ["3/2", "0/2", "1", "a/b", "1/0", "²/3"])
def test_a_bad_shard_is_one_usage_error(sharded, value):
    result = sharded.run(f"--promstack-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--promstack-shard: '{value}': write I/N, this job's shard of N, from 1/N to N/N*"])


def test_merging_refuses_overlaps_other_configs_other_splits_and_a_missing_shard(sharded, capsys):
    for i in (1, 2, 3):
        sharded.run(f"--promstack-shard={i}/3", f"--promstack-json=s{i}.json")
    sharded.run("--promstack-shard=1/2", "--promstack-json=half.json")
    s1, s2, s3, half = (str(sharded.path / name) for name in ("s1.json", "s2.json", "s3.json", "half.json"))
    html = str(sharded.path / "x.html")
    other = json.loads((sharded.path / "s3.json").read_text(encoding="utf-8"))
    other["run"]["settings"]["gates"]["overall"] = [["min_pass_rate", 50.0]]
    (sharded.path / "other.json").write_text(json.dumps(other, ensure_ascii=False), encoding="utf-8")
    refusals = [
        ([s1, s1], f"{s1} is given twice; merge each shard's file once"),
        ([s1, s2], "shard 3 of 3 missing: gates judged on a subset say the wrong thing; merge every shard's file"),
        ([s2], "shards 1, 3 of 3 missing"),  # one file of a split is merged (and refused) too
        ([s1, s2, half], "these files are not the shards of one split (s1.json: 1/3, s2.json: 2/3, half.json: 1/2)"),
        ([s1, s2, str(sharded.path / "other.json")], "are not shards of one run: their suites, gates or arena differ"),
    ]
    capsys.readouterr()
    for files, words in refusals:
        assert main(["report", *files, "-o", html]) == 4, words
        err = capsys.readouterr().err
        assert words in err
        assert len(err.strip().splitlines()) == 1
    assert main(["report", s1, s2, s3, "-o", html]) == 6  # the whole, merged: the pass rate gate fails


def test_a_merge_exits_as_the_single_run_would(sharded, capsys):
    sharded.run("--promstack-json=base.json")  # before the change: the baseline
    failing = ROWS.replace("contains:질문 3,", "contains:없는 말,")  # a failed case, and the pass rate gate fails
    (sharded.path / "prompt_tests/qa.csv").write_text(failing, encoding="utf-8")
    assert sharded.run().ret == 1  # a failed case outranks a failed gate
    for i in (1, 2):
        sharded.run(f"--promstack-shard={i}/2", f"--promstack-json=f{i}.json")
    capsys.readouterr()
    assert main(["report", str(sharded.path / "f1.json"), str(sharded.path / "f2.json"), "-o",
                 str(sharded.path / "x.html"), "--baseline", str(sharded.path / "base.json"),
                 "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "gate min_pass_rate [overall]: " in out
    assert "promstack: REGRESSED: prompt_tests/qa.csv::row-5[m1] [qa]: passed -> failed" in out  # as a run prints
    alone = sharded.run("--promstack-shard=1/1", "--promstack-json=one.json")  # its gates wait too
    assert alone.ret == 1
    assert main(["report", str(sharded.path / "one.json"), "-o", str(sharded.path / "x.html")]) == 1
    out = capsys.readouterr().out
    assert "promstack: gate min_pass_rate [overall]" in out  # one shard's file is judged, not passed through
    assert "promstack: merged 1 file: 28 cases, 2 failed" in out


def test_a_shard_with_nothing_to_run_passes(sharded):
    empty = sharded.run("--promstack-shard=30/30", "--promstack-json=empty.json")
    assert empty.ret == 0  # more shards than rows: the job has nothing to do
    assert json.loads((sharded.path / "empty.json").read_text(encoding="utf-8"))["cases"] == []


def test_shards_on_separate_machines_share_their_answers_through_redis(project, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        shared = config(project.server.url, cache={"backend": "redis", "url": redis.url, "ttl": 3600},
                        suites={"qa": {"tests": ["qa.csv"]}})
        rows = "input,__expected\n" + "\n".join(f"질문 {i},contains:질문 {i}" for i in range(10)) + "\n"
        checkouts = []
        for name in ("job-1", "job-2", "later"):  # each its own folder and disk cache
            write(tmp_path / name, {"promstack.yaml": shared, "qa.csv": rows})
            checkouts.append(tmp_path / name)

        def run(folder, *args):
            return project.pytester.runpytest("--promstack", "-p", "no:cacheprovider", f"--rootdir={folder}",
                                              str(folder), *args)

        run(checkouts[0], "--promstack-shard=1/2").assert_outcomes(passed=5)
        run(checkouts[1], "--promstack-shard=2/2").assert_outcomes(passed=5)
        assert project.server.count == 10
        run(checkouts[2], "--promstack-cache=replay").assert_outcomes(passed=10)  # every answer from Redis
        assert project.server.count == 10
    finally:
        redis.stop()


def test_xdist_across_hosts_runs_on_two_execnet_socket_gateways(project, tmp_path):
    """`--tx socket=HOST:PORT` workers (here two socket servers on 127.0.0.1, each what a
    remote host runs): the cases spread over both, each answer called once, and a shard too."""
    rows = "input,__expected\n" + "\n".join(f"질문 {i},contains:질문 {i}" for i in range(12)) + "\n"
    project.write({"prompt_tests/qa.csv": rows})
    ports, servers = [free_port(), free_port()], []
    env = {**os.environ, KEY_ENV: "test-key", "NO_PROXY": "127.0.0.1"}
    try:
        for i, port in enumerate(ports):
            log = open(tmp_path / f"gateway-{i}.log", "w", encoding="utf-8")  # noqa: SIM115 - the server's life
            servers.append((subprocess.Popen([sys.executable, "-u", "-m", "execnet.script.socketserver",
                                              f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
                                             env=env), log))
        deadline = time.monotonic() + 15
        while not all("Entering Accept loop" in (tmp_path / f"gateway-{i}.log").read_text(encoding="utf-8")
                      for i in range(2)):  # listening: a worker's connection is not retried
            assert time.monotonic() < deadline, "the socket servers did not start"
            time.sleep(0.05)
        hosts = [f"--tx=socket=127.0.0.1:{port}//chdir={project.path}" for port in ports]
        whole = project.run("--dist=load", *hosts, "--promstack-json=tx.json")
        whole.assert_outcomes(passed=12)
        assert project.server.count == 12
        shard = project.run("--dist=load", *hosts, "--promstack-shard=2/2", "--promstack-json=tx-shard.json")
        shard.assert_outcomes(passed=6)
        assert len(json.loads((project.path / "tx-shard.json").read_text(encoding="utf-8"))["cases"]) == 6
    finally:
        for server, log in servers:
            server.kill()
            server.wait()
            log.close()
    for i in range(2):  # both gateways served the runs
        assert "got new connection" in (tmp_path / f"gateway-{i}.log").read_text(encoding="utf-8")
