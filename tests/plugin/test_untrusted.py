"""Files from someone else's pull request: templates cannot run code, and python: targets and
assertions can be refused for CI runs on pull requests."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

ATTACK = "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}"


@pytest.mark.parametrize("args", [[], ["--collect-only"], ["--promstack-estimate"]])
def test_a_prompt_template_cannot_run_a_shell_command(project, args):
    project.write({"prompts/p.yaml": f'id: p\ntemplate: "{ATTACK}"\n',
                   "prompt_tests/a.csv": "input,__expected\nx,contains:x\n"},
                  suites={"s": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run(*args)
    assert not (project.path / "pwned").exists()
    if not args:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*prompt_tests/a.csv:2 [[]mine[]]: prompts/p.yaml: template error: *unsafe*"])
    assert project.server.count == 0


def test_a_judge_template_cannot_run_a_shell_command(project):
    from tests.plugin.test_judges import judge_config

    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"]["support_quality"]["prompt"] = ATTACK
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = project.run()
    assert not (project.path / "pwned").exists()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*judge support_quality gave no usable verdict: judge support_quality's prompt "
                                 "template cannot render: SecurityError: *unsafe*; fix judges.support_quality.prompt"])


def test_no_python_refuses_python_targets_and_assertions_and_runs_the_rest(project):
    project.write({
        "app.py": "import pathlib\n\ndef answer(messages, vars):\n    pathlib.Path('ran').touch()\n    return 'hi'\n",
        "promstack.yaml": f"""
            models:
              - {{name: mine, model: openai/mine, api_base: "{project.server.url}", api_key_env: PROMSTACK_TEST_KEY}}
              - {{name: app, model: "python:app:answer"}}
            suites:
              files: {{tests: [prompt_tests/a.csv], models: [mine]}}
              app: {{tests: [prompt_tests/b.csv], models: [app]}}
        """,
        "prompt_tests/a.csv": "input,__expected\nok,contains:ok\ncode,\"python:__import__('os').system('touch pwned') == 0\"\n",
        "prompt_tests/b.csv": "input,__expected\nhi,contains:hi\n",
    })
    result = project.run("--promstack-no-python")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines_random([
        "*a.csv:3 [[]mine[]]: __expected: a python assertion runs code; python is refused here (--promstack-no-python "
        "or allow_python: false)*",
        "*b.csv:2 [[]app[]]: model app is a python: target (python:app:answer), code from this repository; python is "
        "refused here*",
    ])
    assert not (project.path / "pwned").exists()
    assert not (project.path / "ran").exists()
    assert project.run().ret == 0  # on trusted code, without the switch, both run
    assert (project.path / "ran").exists()


def test_allow_python_false_in_the_config_refuses_them_in_the_fixture_too(project):
    project.write({
        "app.py": "def answer(messages, vars):\n    return 'hi'\n",
        "promstack.yaml": 'allow_python: false\nmodels: [{name: app, model: "python:app:answer"}]\n',
        "test_app.py": """
            def test_target(promstack):
                promstack.run([{"role": "user", "content": "hi"}], model="app")

            def test_assertion(promstack):
                r = promstack.run([{"role": "user", "content": "hi"}], model="openai/x", allow_error=True)
                promstack.check(r, "python:True")
        """,
    })
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(["promstack: model app is a python: target (python:app:answer)*",
                                        "promstack: *a python assertion runs code; python is refused here*"])


def test_test_files_and_prompts_outside_the_project_are_refused(project, tmp_path_factory):
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.csv"
    secret.write_text("input,__expected\nthe secret,contains:x\n", encoding="utf-8")
    (project.path / "prompt_tests").mkdir()
    (project.path / "prompt_tests/link.csv").symlink_to(secret)
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*suites.regression.tests: prompt_tests/link.csv resolves to {secret}, outside the "
                                 "project*a symlink or a '..' may not lead out*"])
    (project.path / "prompt_tests/link.csv").unlink()
    outside_prompt = secret.with_name("p.yaml")
    outside_prompt.write_text("id: p\ntemplate: 'leak {{ input }}'\n", encoding="utf-8")
    project.write({}, suites={"s": {"prompt": f"../{secret.parent.name}/p.yaml", "tests": ["prompt_tests/*"]}})
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*resolves to *p.yaml, outside the project*prompt files must live inside the "
                                 "repository*"])
    assert project.server.count == 0  # nothing outside was read and sent


def test_registry_entries_cannot_lead_outside_and_an_id_of_dots_stays_inside(project, monkeypatch, capsys):
    from pytest_promstack.cli import main

    project.write({"prompts/support.yaml": "id: support\ntemplate: '{{ input }}'\n",
                   "prompts/dots.yaml": "id: '..'\ntemplate: '{{ input }}'\n",
                   "prompt_tests/a.csv": "input,__expected\nx,contains:x\n"},
                  suites={"s": {"prompts": ["prompts/support.yaml", "prompts/dots.yaml"], "tests": ["prompt_tests/*"]}})
    monkeypatch.chdir(project.path)
    assert main(["prompt", "list"]) == 0
    assert (project.path / ".promstack/prompts/%2E./1.yaml").is_file()  # not one level up
    assert not (project.path / ".promstack/1.yaml").exists()
    index = project.path / ".promstack/prompts/index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    data["prompts"]["support"]["versions"][0]["file"] = "/etc/hostname"
    data["prompts"]["support"]["source"] = "../../x.yaml"
    index.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert main(["prompt", "show", "support", "--version", "1"]) == 4
    assert main(["prompt", "rollback", "support", "--to", "1"]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("promstack prompt: .promstack/prompts/index.json: prompts.support.versions[0].file: "
                             "'/etc/hostname' is not a file name in the prompt's folder")
    assert "prompts.support" in err[1]
    assert not (project.path.parent.parent / "x.yaml").exists()


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickled_cache_row_is_never_unpickled_and_a_damaged_cache_is_moved_aside(project):
    import diskcache

    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run().assert_outcomes(passed=1)
    with diskcache.Cache(str(project.path / ".promstack/cache")) as raw:
        (key,) = list(raw)
        raw.set(key, _Boom())  # what a tampered cache (e.g. a restored CI cache) could hold
    project.server.reset()
    result = project.run()
    result.assert_outcomes(passed=1)
    assert not (project.path / "pwned").exists()
    assert project.server.count == 1  # a miss: called again
    result.stdout.fnmatch_lines(["promstack: warning: security: a row of the cache * is pickled, which promstack "
                                 "never writes; it was not read (a miss)*"])
    (project.path / ".promstack/cache/cache.db").write_bytes(b"not a database" * 100)
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["promstack: warning: cache * was damaged (*); moved aside to cache.damaged-*, a new "
                                 "one is used"])


def test_a_cache_row_of_wrong_types_is_a_miss_not_a_crash(project):
    import diskcache

    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    project.run().assert_outcomes(passed=1)
    with diskcache.Cache(str(project.path / ".promstack/cache")) as raw:
        (key,) = list(raw)
        raw.set(key, json.dumps({"text": "echo: x", "input_tokens": "many", "cost_usd": -1}))
    project.server.reset()
    result = project.run()
    result.assert_outcomes(passed=1)
    assert project.server.count == 1
    result.stdout.fnmatch_lines(["promstack: warning: a row of the cache * is not a stored answer of ours*"])


def test_a_cassette_entry_of_wrong_types_errors_its_case_naming_the_line(project):
    project.write({"prompt_tests/a.csv": "input,__expected\n하나,contains:하나\n둘,contains:둘\n"})
    project.run("--promstack-record").assert_outcomes(passed=2)
    cassette = project.path / "cassettes/regression.jsonl"
    lines = cassette.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[1])
    bad["usage"] = {"input_tokens": "many", "output_tokens": 1}
    cassette.write_text("\n".join([lines[0], json.dumps(bad, ensure_ascii=False), "{torn"]) + "\n", encoding="utf-8")
    shutil.rmtree(project.path / ".promstack/cache")
    result = project.run("--promstack-cache=replay")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines_random([
        "*model call failed: cassettes/regression.jsonl:2: input_tokens 'many' is not a whole number of tokens; "
        "record the case again with --promstack-record (or fix the line)*",
        "promstack: warning: cassettes/regression.jsonl:3: not a cassette entry (JSON with a 'key'); skipped",
    ])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    project.run("--promstack-record").assert_outcomes(passed=2)  # recording replaces the bad line
    project.run("--promstack-cache=replay").assert_outcomes(passed=2)


KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_key_echoed_by_a_hostile_server_is_written_nowhere(project, monkeypatch, transport):
    """The server echoes the Authorization header in an error body and in an answer: every
    artefact of the run is scanned for the key."""
    from tests.support.fake_openai import Reply

    monkeypatch.setenv("PROMSTACK_TEST_KEY", KEY)

    def echo_key(body):
        if "error" in str(body["messages"]):
            return Reply(status=500, text=f"invalid request for key {KEY} (Bearer {KEY})")
        return Reply(text=f"your key is {KEY}")

    project.server.respond = echo_key
    project.write({"prompt_tests/a.csv": "input,__expected\nerror,contains:x\nanswer,contains:key\n"},
                  max_retries=1, retry_backoff=0.01, transport=transport)
    result = project.run("--promstack-record", "--junitxml=junit.xml", "--promstack-json=r.json",
                         "--promstack-report=r.html")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*invalid request for key sk-…[[]redacted[]] (Bearer sk-…[[]redacted[]])*"])
    files = [p for p in project.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    leaked = [str(p.relative_to(project.path)) for p in files if KEY.encode() in p.read_bytes()]
    assert leaked == []
    assert KEY not in result.stdout.str() + result.stderr.str()
    assert any(p.name == "cache.db" for p in files)  # the cache was written, and scanned


def test_a_redis_password_is_never_shown(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    url = "redis://:hunter2-secret@127.0.0.1:9/0"  # nothing listens: the warning names the URL
    result = project.run(f"--promstack-cache-url={url}")
    result.assert_outcomes(passed=1)
    assert "hunter2-secret" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*cache use (.promstack/cache) + redis redis://:…[[]redacted[]]@127.0.0.1:9/0*"])


@pytest.mark.parametrize("transport", ["auto", "litellm"])
@pytest.mark.parametrize("with_key", [False, True], ids=["no-key", "key"])
def test_an_api_base_with_user_and_password_ends_in_one_line_and_shows_no_secret(project, monkeypatch,
                                                                                 transport, with_key):
    """`http://user:pass@host`: sent as Basic auth by the direct transport; with a key as well,
    or through litellm (whose client sends its own Authorization header), the case errors at once
    saying which to keep. Either way the run ends and no artefact holds the password or the key."""
    monkeypatch.setenv("PROMSTACK_TEST_KEY", KEY)
    url = project.server.url.replace("http://", "http://bob:pw-secret-42@")
    model = {"name": "mine", "model": "openai/mine", "api_base": url}
    if with_key:
        model["api_key_env"] = "PROMSTACK_TEST_KEY"
    project.write({"promstack.yaml": yaml.safe_dump({
        "models": [model], "defaults": {"max_tokens": 16}, "transport": transport,
        "suites": {"regression": {"tests": ["prompt_tests/*"]}}}),
        "prompt_tests/a.csv": "input,__expected\nx,contains:x\n"})
    result = project.run("--promstack-record", "--junitxml=junit.xml", "--promstack-json=r.json",
                         "--promstack-report=r.html", "-v")
    if transport == "auto" and not with_key:
        result.assert_outcomes(passed=1)
        assert project.server.headers[0]["Authorization"] == "Basic Ym9iOnB3LXNlY3JldC00Mg=="  # bob:pw-secret-42
    else:
        result.assert_outcomes(errors=1)
        assert project.server.count == 0  # refused before any attempt, not retried five times
        keep = "keep one" if with_key else "litellm cannot send"
        result.stdout.fnmatch_lines([f"*a.csv:2 [[]mine[]]: model call failed: api_base of mine has user:password@*{keep}*"])
    out = result.stdout.str() + result.stderr.str()
    assert "pw-secret-42" not in out
    assert KEY not in out
    files = [p for p in project.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    leaked = [str(p.relative_to(project.path)) for p in files
              if b"pw-secret-42" in p.read_bytes() or KEY.encode() in p.read_bytes()]
    assert leaked == ["promstack.yaml"]  # where the user wrote it, nowhere else


@pytest.mark.parametrize("template", ["{{ 1/0 }}", "{% include '/etc/hostname' %}", "{{ range(10**12)|list }}",
                                      "{{ [][1] }}"])
@pytest.mark.parametrize("args", [[], ["--collect-only"], ["--promstack-estimate"]])
def test_a_prompt_template_that_raises_errors_its_cases_and_the_other_suites_run(project, template, args):
    project.write({"prompts/bad.yaml": f"id: bad\ntemplate: \"{template}\"\n",
                   "prompt_tests/a.csv": "input,__expected\nx,contains:x\n",
                   "prompt_tests/b.csv": "input,__expected\ny,contains:y\n"},
                  suites={"bad": {"prompt": "prompts/bad.yaml", "tests": ["prompt_tests/a.csv"]},
                          "good": {"tests": ["prompt_tests/b.csv"]}})
    result = project.run(*args)
    assert "Traceback" not in result.stdout.str()
    assert result.ret != pytest.ExitCode.INTERRUPTED  # no collection error stops the run
    if not args:
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]: prompts/bad.yaml: template error: *"])


def test_a_judge_template_that_raises_errors_the_judged_case_and_the_rest_runs(project):
    project.server.replies = {"judge": '{"scores": [{"criterion": "c", "score": 5, "reason": "ok"}]}'}
    project.write({"prompt_tests/a.csv": "input,__expected\nx,llm-rubric:polite\ny,contains:y\n"},
                  judges={"j": {"model": "mine", "criteria": ["polite"], "prompt": "{{ 1/0 }} judge"}},
                  default_judge="j")
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]*prompt template cannot render: ZeroDivisionError*"])


def test_no_python_refuses_a_python_judge_of_judged_cases(project):
    project.write({
        "judge.py": "import pathlib\n\ndef verdict(messages, vars):\n    pathlib.Path('ran').touch()\n    return '{}'\n",
        "prompt_tests/a.csv": "input,__expected\nx,llm-rubric:polite\ny,contains:y\n",
    }, models=["mine"], judges={"j": {"model": "python:judge:verdict", "criteria": ["polite"]}}, default_judge="j")
    result = project.run("--promstack-no-python")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]: judge j is a python: target (python:judge:verdict)*refused*"])
    assert not (project.path / "ran").exists()


def test_a_schema_ref_to_a_url_fails_its_case_and_nothing_is_fetched(project):
    import http.server
    import threading

    fetched: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            fetched.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "object"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ref = json.dumps({"$ref": f"http://127.0.0.1:{server.server_address[1]}/s.json"}).replace('"', '""')
        project.server.replies = {"x": '{"a": 1}'}
        project.write({"prompt_tests/a.csv": f'input,__expected\nx,"json-schema:{ref}"\ny,contains:y\n'})
        result = project.run("--promstack-cache=off")
    finally:
        server.shutdown()
        server.server_close()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the schema's $ref 'http://127.0.0.1:*/s.json' is not in the schema*nothing is fetched*"])
    assert fetched == []


def test_no_python_refuses_a_python_embedding_model_of_similar_cases(project):
    project.write({
        "embed.py": "import pathlib\n\ndef vector(messages, vars):\n    pathlib.Path('ran').touch()\n    return ''\n",
        "prompt_tests/a.csv": "input,__expected\nx,similar:x\ny,contains:y\n",
    }, models=["mine"], embedding_model="python:embed:vector")
    result = project.run("--promstack-no-python")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a.csv:2 [[]mine[]]: embedding_model is a python: target (python:embed:vector)*refused*"])
    assert not (project.path / "ran").exists()
