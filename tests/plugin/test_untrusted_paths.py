"""promstack.yaml, prompt ids and test files from someone else's pull request: what the config
makes the run write stays inside the project, prompt ids never share a registry folder and a
version file is checked on read, URL credentials are redacted in every form, and an encoding
guess that may be wrong is refused."""

from __future__ import annotations

import base64
import json
import shutil
from urllib.parse import unquote

import pytest
import yaml

from tests.support.project import config

CASE = {"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"}


def _artefacts(project) -> list:
    return [p for p in project.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


# -- P17: paths the config writes -------------------------------------------------------------


@pytest.mark.parametrize("key", ["log", "cache.dir", "cache.cassettes"])
def test_a_config_path_that_writes_outside_the_project_is_refused_and_the_file_there_is_untouched(
        project, tmp_path_factory, key):
    victim = tmp_path_factory.mktemp("elsewhere") / "victim"
    victim.write_text("precious\n", encoding="utf-8")  # an existing file: the cache would move it aside
    target = str(victim if key != "cache.cassettes" else victim.parent)
    extra = {"log": target} if key == "log" else {"cache": {key.split(".")[1]: target}}
    project.write(CASE, **extra)
    result = project.run("--promstack-record")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*promstack.yaml: {key}: '{target}' resolves to {target}, outside the project (*); "
                                 "paths the config writes stay inside the repository*: use a relative path such as *"])
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]  # nothing renamed, nothing written
    assert project.server.count == 0


@pytest.mark.parametrize("link", [".promstack", "cassettes"])
def test_a_symlinked_output_folder_leading_out_of_the_project_is_refused(project, tmp_path_factory, link):
    outside = tmp_path_factory.mktemp("elsewhere")
    (project.path / link).symlink_to(outside, target_is_directory=True)
    project.write(CASE)
    result = project.run("--promstack-record")
    assert result.ret == 4
    keys = ["cache.dir", "log"] if link == ".promstack" else ["cache.cassettes"]
    result.stderr.fnmatch_lines_random([f"*promstack.yaml: {k}: * resolves to {outside}*, outside the project*"
                                        for k in keys])
    assert list(outside.iterdir()) == []


def test_output_paths_on_the_command_line_may_point_anywhere(project, tmp_path_factory):
    """Command-line paths are the CI author's, not the pull request's."""
    outside = tmp_path_factory.mktemp("artefacts")
    project.write(CASE)
    result = project.run(f"--promstack-log={outside}/calls.jsonl", f"--promstack-json={outside}/r.json",
                         f"--promstack-report={outside}/r.html", f"--junitxml={outside}/j.xml")
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in outside.iterdir()) == ["calls.jsonl", "j.xml", "r.html", "r.json"]
    assert not (project.path / ".promstack/calls.jsonl").exists()


def test_a_file_inside_where_the_cache_folder_goes_is_still_moved_aside(project):
    project.write({**CASE, ".promstack/cachefile": "not a folder"}, cache={"dir": ".promstack/cachefile"})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["promstack: warning: cache * was damaged (*); moved aside to cachefile.damaged-*, a "
                                 "new one is used"])
    assert (project.path / ".promstack/cachefile/cache.db").is_file()


def test_the_cache_folder_cannot_be_the_project_folder_itself(project):
    project.write(CASE, cache={"dir": "."})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*promstack.yaml: cache.dir: '.' is the project folder itself; the cache needs a "
                                 "folder of its own, such as .promstack/cache"])


# -- P19: cache.mode off, unquoted ------------------------------------------------------------


def test_an_unquoted_cache_mode_off_means_off_and_on_is_one_line_saying_to_quote(project):
    base = config(project.server.url)
    project.write({**CASE, "promstack.yaml": base + "cache: {mode: off}\n"})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["promstack: * cache off*"])
    assert not (project.path / ".promstack/cache").exists()
    project.write({"promstack.yaml": base + "cache: {mode: on}\n"})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*promstack.yaml: cache.mode: true is not a mode (YAML reads an unquoted on/yes as "
                                 "true); write one of use, off, refresh, replay, record, quoted if in doubt*"])


# -- P3: prompt ids and registry folders ------------------------------------------------------


def _two_prompts(project, monkeypatch, ids):
    files = {f"prompts/p{i}.yaml": f"id: '{pid}'\ntemplate: 'prompt {i}: {{{{ input }}}}'\n"
             for i, pid in enumerate(ids)}
    project.write({**files, **CASE}, suites={"s": {"prompts": sorted(files), "tests": ["prompt_tests/*"]}})
    monkeypatch.chdir(project.path)


def test_prompt_ids_x_slash_y_and_x_underscore_y_get_folders_of_their_own(project, monkeypatch, capsys):
    from pytest_promstack.cli import main

    _two_prompts(project, monkeypatch, ["x/y", "x_y"])
    assert main(["prompt", "list"]) == 0
    registry = project.path / ".promstack/prompts"
    assert (registry / "x%2Fy/1.yaml").read_text(encoding="utf-8").startswith("id: 'x/y'")
    assert (registry / "x_y/1.yaml").read_text(encoding="utf-8").startswith("id: 'x_y'")
    capsys.readouterr()
    assert main(["prompt", "show", "x_y", "--version", "1"]) == 0
    assert "prompt 1:" in capsys.readouterr().out
    assert main(["prompt", "show", "x/y", "--version", "1"]) == 0
    assert "prompt 0:" in capsys.readouterr().out


def test_a_version_file_holding_other_content_than_its_index_entry_is_refused_on_read(project, monkeypatch, capsys):
    from pytest_promstack.cli import main

    _two_prompts(project, monkeypatch, ["x/y", "x_y"])
    assert main(["prompt", "list"]) == 0
    registry = project.path / ".promstack/prompts"
    index = json.loads((registry / "index.json").read_text(encoding="utf-8"))
    expected = index["prompts"]["x_y"]["versions"][0]["hash"]
    shutil.copy(registry / "x%2Fy/1.yaml", registry / "x_y/1.yaml")  # the intruder's text in x_y's file
    capsys.readouterr()
    assert main(["prompt", "show", "x_y", "--version", "1"]) == 4
    captured = capsys.readouterr()
    assert "prompt 0:" not in captured.out
    assert captured.err.splitlines() == [
        f"promstack prompt: .promstack/prompts/x_y/1.yaml: holds prompt 'x/y' content "
        f"{index['prompts']['x/y']['versions'][0]['hash']}, but the index records prompt 'x_y' v1 as {expected} "
        "(edited, or another prompt's file); restore the registry from git (git checkout -- .promstack/prompts)"]
    (registry / "x_y/1.yaml").unlink()
    assert main(["prompt", "show", "x_y", "--version", "1"]) == 4
    assert capsys.readouterr().err.startswith("promstack prompt: .promstack/prompts/x_y/1.yaml: missing, the file of "
                                              "prompt 'x_y' v1; restore")


def test_a_registry_with_the_folder_names_of_before_is_still_read(project, monkeypatch, capsys):
    from pytest_promstack.cli import main

    _two_prompts(project, monkeypatch, ["a b"])
    assert main(["prompt", "list"]) == 0
    registry = project.path / ".promstack/prompts"
    (registry / "a%20b").rename(registry / "a_b")  # where `a b` used to be stored
    capsys.readouterr()
    assert main(["prompt", "show", "a b", "--version", "1"]) == 0
    assert "prompt 0:" in capsys.readouterr().out
    _two_prompts(project, monkeypatch, ["a b", "a_b"])  # a new id whose folder is that old one
    assert main(["prompt", "list"]) == 4
    assert capsys.readouterr().err.splitlines()[-1] == (
        "promstack prompt: prompt 'a_b' would share the folder .promstack/prompts/a_b with prompt 'a b': a_b/ still "
        "holds the versions of 'a b' (stored before ids were encoded); rename one of them (id:)")
    assert (registry / "a_b/1.yaml").read_text(encoding="utf-8").startswith("id: 'a b'")


def test_prompt_ids_differing_only_in_case_are_refused_before_they_share_a_folder(project, monkeypatch, capsys):
    from pytest_promstack.cli import main

    _two_prompts(project, monkeypatch, ["Support", "support"])
    capsys.readouterr()
    assert main(["prompt", "list"]) == 4
    assert capsys.readouterr().err.splitlines()[-1:] == [
        "promstack prompt: prompt 'support' would share the folder .promstack/prompts/support with prompt 'Support': "
        "their ids differ only in case or Unicode form, which macOS and Windows do not tell apart; rename one of them "
        "(id:)"]
    assert (project.path / ".promstack/prompts/Support/1.yaml").is_file()
    assert not (project.path / ".promstack/prompts/support").exists()


def test_safe_name_keeps_plain_ids_and_never_maps_two_ids_to_one_folder():
    from pytest_promstack.util.paths import safe_name

    for plain in ("support", "42", "support@concise", "환불_v2", "a.b-c", "x_y"):
        assert safe_name(plain) == plain
    ids = ["x/y", "x_y", "x%2Fy", "x%y", "..", ".", "_..", "%2E.", "", "%", "a b", "a_b", "a\\b", "a:b", "a\x00b",
           "C:", "x/../y", ".hidden", "%2Ehidden", "über", "u\u0308ber", "\ud800"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert name not in ("", ".", "..")
        assert not name.startswith(".")
        assert not set(name) & set("/\\:\x00 ")
    assert [safe_name(i) for i in ("..", "x/y", "%")] == ["%2E.", "x%2Fy", "%25"]


# -- P4, P5: URL credentials ------------------------------------------------------------------


@pytest.mark.parametrize("password", ["pw-secret-42", "pw%21secret%2F42"], ids=["plain", "percent-encoded"])
def test_basic_auth_credentials_echoed_by_a_hostile_server_are_written_nowhere(project, password):
    """The direct transport sends `user:password@` as Basic auth; a server that echoes the
    Authorization header (in a 401 body and in an answer) must not get its base64 anywhere."""
    from tests.support.fake_openai import Reply

    def echo_auth(body):
        auth = project.server.headers[-1].get("Authorization", "")
        if "error" in str(body["messages"]):
            return Reply(status=401, text=f"bad credentials: {auth}")
        return Reply(text=f"you sent {auth}")

    project.server.respond = echo_auth
    url = project.server.url.replace("http://", f"http://bob:{password}@")
    project.write({"promstack.yaml": yaml.safe_dump({
        "models": [{"name": "mine", "model": "openai/mine", "api_base": url}], "max_retries": 0,
        "suites": {"regression": {"tests": ["prompt_tests/*"]}}}),
        "prompt_tests/a.csv": "input,__expected\nerror,contains:x\nanswer,contains:sent\n"})
    result = project.run("--promstack-record", "--junitxml=junit.xml", "--promstack-json=r.json",
                         "--promstack-report=r.html")
    result.assert_outcomes(passed=1, errors=1)
    token = base64.b64encode(f"bob:{unquote(password)}".encode()).decode()
    assert {h["Authorization"] for h in project.server.headers} == {f"Basic {token}"}
    result.stdout.fnmatch_lines(["*bad credentials: Basic *…[[]redacted[]]*"])
    out = result.stdout.str() + result.stderr.str()
    assert token not in out
    leaked = [str(p.relative_to(project.path)) for p in _artefacts(project) if token.encode() in p.read_bytes()]
    assert leaked == []
    assert any(p.name == "cache.db" for p in _artefacts(project))  # the cache was written, and scanned


def test_a_redis_password_in_the_query_is_never_shown(project):
    project.write(CASE)
    url = "redis://127.0.0.1:9/0?password=hunter2-secret&db=0"  # nothing listens: the warning names the URL
    result = project.run(f"--promstack-cache-url={url}")
    result.assert_outcomes(passed=1)
    assert "hunter2-secret" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*+ redis redis://127.0.0.1:9/0?password=…[[]redacted[]]&db=0*",
                                 "promstack: warning: Redis cache at redis://127.0.0.1:9/0?password=…[[]redacted[]]&db=0"
                                 " is unreachable*"])


def test_the_missing_redis_client_warning_shows_no_password(project, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)  # the optional client not installed
    project.write(CASE)
    result = project.run("--promstack-cache-url=redis://:hunter2-secret@127.0.0.1:9/0")
    result.assert_outcomes(passed=1)
    assert "hunter2-secret" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["promstack: warning: Redis cache at redis://:…[[]redacted[]]@127.0.0.1:9/0 needs the "
                                 "redis client*"])


# -- P16: an encoding guess that may be wrong --------------------------------------------------


def test_a_shift_jis_file_is_not_read_as_cp949_while_korean_with_a_rare_syllable_is(project):
    project.write({"prompt_tests/ja.csv": "input,__expected\nこんにちは世界,contains:こんにちは\n".encode("shift_jis"),
                   "prompt_tests/ko.csv": "input,__expected\n똠방각하 배송 문의,contains:배송\n".encode("cp949")})
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "promstack: * from *; prompt_tests/ko.csv read as CP949",
        "prompt_tests/ja.csv: is not UTF-8, and as CP949 12 of its 12 Hangul syllables are outside EUC-KR (KS X 1001), "
        "which Korean text seldom uses: it is probably in another encoding (Shift-JIS kana read this way); save it as "
        "UTF-8, or name its encoding in promstack.yaml (encoding: shift_jis, cp949, ...)",
    ])
    project.write({}, encoding="shift_jis", suites={"ja": {"tests": ["prompt_tests/ja.csv"]}})
    project.run().assert_outcomes(passed=1)  # named, it is read as what it is


def test_a_cache_dir_naming_a_folder_of_other_files_is_left_untouched_and_the_run_is_uncached(project):
    project.write({"src/app.py": "print('mine')\n", "prompt_tests/a.csv": "input,__expected\nx,contains:x\n"},
                  cache={"dir": "src"})
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*cache */src is a folder of other files, not a promstack cache*not cached*"])
    assert sorted(p.name for p in (project.path / "src").iterdir()) == ["app.py"]  # no .gitignore hiding it
