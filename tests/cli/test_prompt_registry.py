"""The prompt registry and the promstack command, run as the installed console script in a
temporary git repository against the loopback server: auto-versioning, read-only in CI,
log/diff/rollback, labels behind evaluations, evaluate's bare score, merge, A/B."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.project import KEY_ENV, config, write
from tests.support.run import Ran, run, run_promstack, run_pytest

V1 = "id: support\nmessages:\n  - {role: system, content: 정중하게 답하세요.}\n  - {role: user, content: '{{ input }}'}\n"
V2 = "id: support\nmessages:\n  - {role: system, content: 아주 짧게 답하세요.}\n  - {role: user, content: 'bye'}\n"
CASES = "input,__expected\n" + "\n".join(f"질문{i},contains:질문{i}" for i in range(10)) + "\n"


class Repo:
    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.env = {KEY_ENV: "k", "PROMSTACK_USER": "민지"}
        suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*.csv"]}}
        write(path, {"promstack.yaml": config(url, suites=suites, gates={"min_pass_rate": 100}),
                     "prompts/support.yaml": V1, "prompt_tests/a.csv": CASES})
        run(["git", "init", "-q"], cwd=path).check()

    def run(self, *args: str, ci: bool = False, check: bool = False) -> Ran:
        done = run_promstack(*args, cwd=self.path, env={**self.env, **({"CI": "true"} if ci else {})})
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def pytest(self, *args: str, ci: bool = False) -> Ran:
        return run_pytest(*args, cwd=self.path, env={**self.env, **({"CI": "true"} if ci else {})})

    @property
    def index(self) -> dict:
        return json.loads((self.path / ".promstack/prompts/index.json").read_text(encoding="utf-8"))

    def versions(self) -> list[int]:
        return [v["number"] for v in self.index["prompts"]["support"]["versions"]]

    def edit(self, text: str) -> None:
        (self.path / "prompts/support.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path, server) -> Repo:
    return Repo(tmp_path / "repo", server.url)


def test_every_new_content_is_a_version_and_unchanged_content_is_not(repo):
    repo.run("prompt", "list", check=True)
    assert repo.versions() == [1]
    first = repo.index["prompts"]["support"]["versions"][0]
    assert first["author"] == "민지"
    assert first["hash"]
    assert first["time"].endswith("Z")
    repo.run("prompt", "list", check=True)
    assert repo.pytest().returncode == 0
    assert repo.versions() == [1]  # same content: no new number
    repo.edit(V1.replace("content: 정중하게", "content:   정중하게"))  # YAML formatting only
    repo.run("prompt", "list", check=True)
    assert repo.versions() == [1]
    repo.edit(V2)
    run = repo.pytest()
    assert repo.versions() == [1, 2]  # a run sees new content: recorded
    assert "promstack: recorded prompt support version 2" in run.stdout
    assert "support@v2 " in run.stdout  # the summary names the number
    listed = repo.run("prompt", "list", check=True).stdout
    assert "support   v2" in listed
    assert "prompts/support.yaml" in listed


def test_ci_never_writes_the_registry_and_reports_the_unrecorded_prompt(repo):
    repo.run("prompt", "list", check=True)
    before = (repo.path / ".promstack/prompts/index.json").read_bytes()
    repo.edit(V2)
    run = repo.pytest(ci=True)
    assert (repo.path / ".promstack/prompts/index.json").read_bytes() == before
    assert "prompt support content" in run.stdout
    assert "is not in the prompt registry (read-only: CI is set)" in run.stdout
    run = repo.pytest("--promstack-registry=readonly")
    assert (repo.path / ".promstack/prompts/index.json").read_bytes() == before
    assert "support@" in run.stdout  # no number to show: the hash
    assert "(read-only: --promstack-registry readonly)" in run.stdout


def test_a_label_that_reads_as_a_version_number_is_refused(repo):
    repo.run("prompt", "list", check=True)
    for label in ("12", "007"):
        refused = repo.run("prompt", "label", "support", label, "--version", "1")
        assert refused.returncode == 4
        assert refused.stderr.strip() == (f"promstack prompt: label '{label}': a label needs a name that is not a "
                                          "version number (it would read as one); use a word such as production, "
                                          "staging or rc-12")
    assert "labels" not in repo.index["prompts"]["support"] or repo.index["prompts"]["support"]["labels"] == {}
    assert repo.run("prompt", "label", "support", "rc-12", "--version", "1").returncode == 0
    deploy = repo.run("deploy", "--prompt", "support", "--to", "12")  # refused before it evaluates anything
    assert deploy.returncode == 4
    assert deploy.stderr.startswith("promstack deploy: label '12': a label needs a name")
    assert not repo.index["prompts"]["support"]["versions"][0].get("evaluations")


def test_an_unknown_prompt_id_in_prompt_version_is_named(repo):
    run = repo.pytest("--promstack-prompt-version=suport=1")
    assert run.returncode == 0
    assert ("--promstack-prompt-version suport=1: no prompt file of the suites has id 'suport' (prompt ids: support); "
            "nothing was swapped") in run.stdout


def test_log_diff_and_rollback_round_trip_byte_for_byte(repo):
    original = V1.encode("utf-8")
    repo.run("prompt", "list", check=True)
    repo.edit(V2)
    repo.run("prompt", "list", check=True)
    log = repo.run("prompt", "log", "support", check=True).stdout.splitlines()
    assert log[0].startswith("v2 ")
    assert "(file)" in log[0]
    assert "민지" in log[0]
    assert "not evaluated" in log[0]
    assert log[2].startswith("v1 ")
    diff = repo.run("prompt", "diff", "support", "1", "2", check=True).stdout
    assert diff.splitlines()[:2] == ["--- support v1", "+++ support v2"]
    assert "-  - {role: system, content: 정중하게 답하세요.}" in diff
    assert "+  - {role: user, content: 'bye'}" in diff
    assert repo.run("prompt", "show", "support", "--version", "1", check=True).stdout == V1
    done = repo.run("prompt", "rollback", "support", "--to", "1", check=True)
    assert (repo.path / "prompts/support.yaml").read_bytes() == original
    assert "restored to support v1 (the file is v1)" in done.stdout
    assert repo.versions() == [1, 2]  # known content: no new number
    bad = repo.run("prompt", "show", "support", "--version", "9")
    assert bad.returncode == 4
    assert "prompt 'support' has no version 9 (versions 1 to 2)" in bad.stderr


def test_evaluate_prints_only_the_score_and_deploy_follows_the_evaluation(repo):
    out = repo.run("evaluate", "--prompt", "support")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "100\n"  # score=$(promstack evaluate --prompt support) works in bash
    assert "pass rate (no judged case) 100, passed" in out.stderr
    ev = repo.index["prompts"]["support"]["versions"][0]["evaluations"][0]
    assert ev["score"] == 100
    assert ev["passed"]
    assert ev["run_id"]
    done = repo.run("deploy", "--prompt", "support", check=True)  # --to defaults to production
    assert "support production: none -> v1" in done.stdout
    repo.edit(V2)  # "bye" fails every case: the min_pass_rate gate fails
    out = repo.run("evaluate", "--prompt", "support")
    assert out.returncode == 6
    assert out.stdout == "0\n"
    refused = repo.run("deploy", "--prompt", "support")
    assert refused.returncode == 1
    assert "refused: support v2's last evaluation" in refused.stderr
    assert "min_pass_rate" in refused.stderr
    assert repo.index["prompts"]["support"]["labels"] == {"production": 1}
    forced = repo.run("deploy", "--prompt", "support", "--to", "staging", "--force", "--reason", "hotfix", check=True)
    assert "FORCED by 민지: hotfix" in forced.stdout
    audit = repo.index["prompts"]["support"]["audit"]
    assert [(a["label"], a["from"], a["to"], a.get("forced", False)) for a in audit] == [
        ("production", None, 1, False), ("staging", None, 2, True)]
    log = repo.run("prompt", "log", "support", check=True).stdout
    assert "deploy production: none -> v1" in log
    assert "deploy staging: none -> v2 FORCED: hotfix" in log
    assert "v1 " in log
    assert "[production]" in log
    repo.run("prompt", "label", "support", "staging", "--version", "production", check=True)
    assert repo.index["prompts"]["support"]["labels"] == {"production": 1, "staging": 1}


def test_deploy_without_an_evaluation_runs_the_suites_now(repo):
    done = repo.run("deploy", "--prompt", "support", "--to", "staging")
    assert done.returncode == 0, done.stderr
    assert "has no evaluation; running its suites" in done.stderr
    assert repo.index["prompts"]["support"]["labels"] == {"staging": 1}


def test_merge_promotes_a_branch_as_a_new_version(repo):
    repo.run("prompt", "list", check=True)
    branch = V1.replace("정중하게 답하세요.", "간결하게 답하세요.")
    write(repo.path, {"prompts/support@concise.yaml": branch})
    run = repo.pytest("--promstack-prompt-branches")
    assert run.returncode == 0, run.stdout
    assert "20 passed" in run.stdout  # the file and its branch side by side
    assert "support@concise@v1 " in run.stdout
    done = repo.run("prompt", "merge", "support", "concise", check=True)
    assert "support new version v2" in done.stdout
    assert (repo.path / "prompts/support.yaml").read_text(encoding="utf-8") == branch
    assert repo.index["prompts"]["support"]["versions"][1]["message"] == "merged branch concise"


def test_ab_reports_a_significant_difference_and_its_absence(repo):
    repo.run("prompt", "list", check=True)
    repo.edit(V2)
    repo.run("prompt", "list", check=True)
    out = repo.run("ab", "support", "1", "2", check=True)
    lines = out.stdout.splitlines()
    assert lines[-1] == "A better (p = 0.002)"  # 10 discordant pairs, all for A: 2 / 2^10
    assert any("McNemar exact p = 0.00195 (A only 10, B only 0)" in line for line in lines)
    same = repo.run("ab", "support", "1", "1", check=True)
    assert same.stdout.splitlines()[-1] == "no significant difference (n = 10)"


def test_a_deploy_is_never_easier_than_a_test(repo, server):
    """A latency gate alone does not let failing cases reach production; a min_pass_rate gate
    that passes says how many failures are acceptable."""
    suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/*.csv"]}}
    cases = CASES.replace("질문8,contains:질문8", "질문8,contains:없음").replace("질문9,contains:질문9", "질문9,contains:없음")
    write(repo.path, {"promstack.yaml": config(server.url, suites=suites, gates={"max_p95_latency_ms": 60000}),
                      "prompt_tests/a.csv": cases})
    out = repo.run("evaluate", "--prompt", "support")
    assert out.returncode == 1, out.stderr
    assert out.stdout == "80\n"
    refused = repo.run("deploy", "--prompt", "support")
    assert refused.returncode == 1
    assert "(a case failed)" in refused.stderr
    assert repo.index["prompts"]["support"]["labels"] == {}
    write(repo.path, {"promstack.yaml": config(server.url, suites=suites,
                                               gates={"max_p95_latency_ms": 60000, "min_pass_rate": 80})})
    assert repo.run("evaluate", "--prompt", "support").returncode == 0  # 8 of 10 pass: allowed by the gate
    done = repo.run("deploy", "--prompt", "support", check=True)
    assert "support production: none -> v1" in done.stdout
