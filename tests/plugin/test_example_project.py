"""The README's commands on a fresh copy of the example project (no cache, no key, no
network): the main job replays the committed cassettes, and the CI recipe's test step runs
as written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.run import run, run_shell

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of example_project as a clean clone has it: the committed prompt registry, no
    local cache or call log."""
    project = tmp_path / "example"
    shutil.copytree(ROOT / "example_project", project,
                    ignore=shutil.ignore_patterns("cache", "calls.jsonl", "__pycache__", ".pytest_cache", ".benchmarks"))
    return project


def test_the_main_job_replays_the_committed_cassettes(example):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(cd example_project && pytest --promstack)" in readme
    done = run_shell("pytest --promstack", cwd=example)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "40 passed, 25 xfailed" in done.stdout.splitlines()[-1]
    assert "cache miss" not in done.stdout


def test_the_readme_ci_recipe_runs_as_written(example):
    readme = (ROOT / "docs/ci.md").read_text(encoding="utf-8")  # the README's reference moved to docs/
    recipe = readme.split("## CI recipe (GitHub Actions)", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = yaml.safe_load(recipe)["jobs"]["prompts"]["steps"]
    command = next(s["run"] for s in steps if s.get("name") == "Run the prompt suites")
    uploaded = next(s["with"]["path"] for s in steps if s.get("name") == "Reports").split()
    first = run_shell(command, cwd=example)  # no baseline yet: a warning, and the run goes on
    assert first.returncode == 6, first.stdout[-4000:]  # every case as expected; the quality gate fails
    assert "40 passed, 25 xfailed" in first.stdout.splitlines()[-1]
    assert "promstack: gate min_quality_score [overall]: 18.2, limit 80.0: FAILED" in first.stdout
    assert "baseline/results.json: baseline not found" in first.stdout
    assert sorted(uploaded) == ["junit.xml", "report.html", "results.json"]
    assert all((example / name).is_file() for name in uploaded)
    (example / "baseline").mkdir()
    shutil.copy(example / "results.json", example / "baseline/results.json")
    second = run_shell(command, cwd=example)
    assert second.returncode == 6
    assert "promstack: baseline baseline/results.json (run " in second.stdout
    assert "40 still passing, 25 not compared" in second.stdout
    assert "REGRESSED" not in second.stdout


def deployment_pipeline() -> dict:
    readme = (ROOT / "docs/ci.md").read_text(encoding="utf-8")
    block = readme.split("## A prompt deployment pipeline in GitHub Actions", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_the_deployment_pipeline_runs_as_written(example):
    """The README's GitHub Actions deployment steps, each run with GitHub's `bash -e` and PROMPT_ID=support."""
    run(["git", "init", "-q"], cwd=example).check()
    jobs = deployment_pipeline()["jobs"]
    steps = {s["name"]: s["run"].replace("${{ env.PROMPT_ID }}", "support")
             for job in jobs.values() for s in job["steps"]}
    tests = run_shell(steps["Run batch tests"], cwd=example)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "11 passed" in tests.stdout.splitlines()[-1]  # the regression suite
    check = run_shell(steps["Check quality score"], cwd=example)
    # the example's 270M judge scores 18: a bare integer, so bash's -lt works, and the step fails
    assert check.returncode == 1, check.stderr[-3000:]
    assert "support v1: quality score 18, passed" in check.stderr
    deploy = run_shell(steps["Deploy to production"], cwd=example)
    assert deploy.returncode == 0, deploy.stderr
    assert "support production: v1 -> v1" in deploy.stdout  # no gate configured: the evaluation passed
