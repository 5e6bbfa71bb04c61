"""`promstack init`: the starter project it writes passes its first `pytest --promstack`
offline from the recorded cassette, it never overwrites a file, it says what it wrote and
what to run next, and its GitHub Actions workflow runs as written."""

from __future__ import annotations

import glob
import json
import tomllib
from pathlib import Path

import pytest
import yaml

from pytest_promstack.cli import main
from pytest_promstack.cli.init import STARTER
from pytest_promstack.execute import cassettes
from tests.conftest import check_invariants, summary_rows
from tests.support.run import run_promstack, run_shell

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "PROMSTACK_TEST_KEY")
TARGETS = [target for target, _ in STARTER]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*KEYS, "CI"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("offline")
def test_first_run_after_init_passes_offline_from_the_cassette(pytester: pytest.Pytester, capsys):
    assert main(["init"]) == 0
    assert files_under(pytester.path) == sorted(TARGETS)
    capsys.readouterr()
    result = pytester.runpytest("--promstack", "-p", "no:cacheprovider")
    check_invariants(result)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*cache replay*", "promstack: calls 5/5 done, 5 from cache, 0 errors*"])
    result.stdout.no_fnmatch_line("*cache miss*")
    (row,) = summary_rows(result)
    assert (row["suite"], row["model"], row["passed"], row["cache hits"]) == ("facts", "gemma", "5", "5/5")
    log = [json.loads(line) for line in (pytester.path / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(c["cached"], c["status"]) for c in log] == [(True, "ok")] * 5  # answers from the cassette, no model call


def test_the_starter_cassette_holds_real_answers_of_the_local_model(tmp_path):
    """Recorded with --promstack-record on local/gemma-3-270m, one entry per case, and it still
    loads (entries with or without cost_usd/finish_reason)."""
    assert run_promstack("init", cwd=tmp_path).returncode == 0
    entries = cassettes.read(tmp_path / "cassettes/facts.jsonl")
    rows = (tmp_path / "prompt_tests/facts.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(entries) == len(rows) == 5
    assert {e["model"] for e in entries} == {"local/gemma-3-270m"}
    assert {e["request"]["params"]["temperature"] for e in entries} == {0}
    loaded = cassettes.load(tmp_path / "cassettes", ["facts"])
    assert sorted(r.text for r in loaded.values()) == sorted(e["response"] for e in entries)
    assert any("Paris" in r.text for r in loaded.values())


def test_init_names_every_file_it_wrote_and_the_next_command(tmp_path):
    done = run_promstack("init", "--dir", "new project", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[:len(TARGETS)] == [f"promstack: wrote new project/{t}" for t in TARGETS]
    assert "  cd 'new project'" in lines
    assert any(line.startswith("  pytest --promstack ") for line in lines)
    assert files_under(tmp_path / "new project") == sorted(TARGETS)


def test_init_refuses_when_a_starter_file_exists_and_writes_nothing(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/facts.yaml").write_text("id: mine\ntemplate: '{{ q }}'\n", encoding="utf-8")
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/promstack.yml").write_text("name: mine\n", encoding="utf-8")
    done = run_promstack("init", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "promstack init: nothing was written, because these exist already:",
        "  prompts/facts.yaml",
        "  .github/workflows/promstack.yml",
        "remove them or run init in an empty folder",
    ]
    assert files_under(tmp_path) == [".github/workflows/promstack.yml", "prompts/facts.yaml"]
    assert (tmp_path / "prompts/facts.yaml").read_text(encoding="utf-8") == "id: mine\ntemplate: '{{ q }}'\n"
    assert "Traceback" not in done.stderr


def test_init_counts_a_file_where_a_starter_folder_goes_as_existing(tmp_path):
    (tmp_path / "cassettes").write_text("not a folder", encoding="utf-8")
    done = run_promstack("init", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr.splitlines()[1:] == ["  cassettes", "remove them or run init in an empty folder"]
    assert files_under(tmp_path) == ["cassettes"]


def test_init_into_a_file_path_is_a_one_line_error(tmp_path):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    done = run_promstack("init", "--dir", "taken", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr.splitlines() == ["promstack init: taken: not a folder; pass --dir with a folder (it is "
                                        "created if missing)"]


def test_the_generated_workflow_runs_its_test_step_as_written(tmp_path):
    assert run_promstack("init", cwd=tmp_path).returncode == 0
    workflow = yaml.safe_load((tmp_path / ".github/workflows/promstack.yml").read_text(encoding="utf-8"))
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as true
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps if "uses" in s] == [
        "actions/checkout", "actions/setup-python", "actions/upload-artifact"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[0] == "pip install pytest-promstack"
    command = runs[1]
    assert command.startswith("pytest --promstack ")
    upload = steps[-1]
    assert upload["if"] == "always()"
    uploaded = upload["with"]["path"].split()
    assert sorted(uploaded) == sorted(a.split("=", 1)[1] for a in command.split() if a.startswith(("--junitxml=",
                                                                                                    "--promstack-report=")))
    done = run_shell(command, cwd=tmp_path, env={"CI": "true"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "5 passed" in done.stdout.splitlines()[-1]
    assert all((tmp_path / name).is_file() for name in uploaded)


def test_package_data_ships_every_starter_file():
    """The wheel holds what pyproject's package-data globs match (setuptools globs recursively)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    package = ROOT / "pytest_promstack"
    shipped = {p for pattern in globs["pytest_promstack"] for p in glob.glob(pattern, root_dir=package, recursive=True)}
    assert {f"templates/init/{source}" for _, source in STARTER} <= shipped


def test_the_readme_start_a_project_commands_run_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Start a project", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if not line.startswith("pip ")]
    assert commands == ["promstack init", "pytest --promstack"]
    assert run_shell(commands[0], cwd=tmp_path).returncode == 0
    done = run_shell(commands[1], cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "5 passed" in block
    assert "5 passed in" in done.stdout.splitlines()[-1]


def test_init_refuses_next_to_a_config_its_promstack_yaml_would_shadow(tmp_path):
    (tmp_path / "promstack.yml").write_text("suites: {}\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[tool.promstack]\nconcurrency = 2\n', encoding="utf-8")
    done = run_promstack("init", cwd=tmp_path)
    assert done.returncode == 4
    assert done.stderr.splitlines()[1:3] == ["  promstack.yml", "  pyproject.toml [tool.promstack]"]
    assert not (tmp_path / "promstack.yaml").exists()
