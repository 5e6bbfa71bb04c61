"""The engine under faults: retries, deadlines, rate limits, malformed answers; replay and
cassettes; the call log; repeats; Python targets; progress. Every test runs twice: through
the direct transport for OpenAI-compatible servers and through litellm (transport: litellm)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from email.utils import formatdate

import pytest

from tests.conftest import summary_rows
from tests.support.fake_openai import Reply
from tests.support.project import KEY_ENV
from tests.support.run import run_pytest

ONE = "input,__expected\nhi,contains:hi\n"
FAST_RETRY = {"retry_backoff": 0.01, "retry_max_wait": 5}


TRANSPORTS = pytest.fixture(params=["auto", "litellm"], ids=["direct", "litellm"])


@TRANSPORTS
def project(project, request):
    """Configs written by project.write get the transport under test."""
    return with_transport(project, request.param)


@TRANSPORTS
def both_modes(both_modes, request):
    """The same for each project of `for project in both_modes`. Under litellm the story runs
    without xdist only: each worker would import litellm again (seconds per run), and the modes
    are compared under the direct transport."""
    if request.param == "litellm":
        both_modes.modes = ["no-xdist"]
    return (with_transport(project, request.param) for project in both_modes)


def with_transport(project, transport):
    write = project.write

    def write_with_transport(files, **config_kwargs):
        config_kwargs.setdefault("transport", transport)
        return write(files, **config_kwargs)

    project.write = write_with_transport
    project.transport = transport
    return project


SERVER_PARAMS = {"repeat_penalty": 1.1, "top_k": 20, "min_p": 0.05, "mirostat_mode": 0}


def test_openai_compatible_servers_are_called_without_importing_litellm_even_with_server_specific_params(project):
    hook = "import sys\n\ndef pytest_unconfigure(config):\n    print('LITELLM', 'litellm' in sys.modules)\n"
    project.write({"prompt_tests/a.csv": "input,__expected\n환불,contains:환불\nb,contains:b\n", "conftest.py": hook},
                  defaults={"temperature": 0, "max_tokens": 64, **SERVER_PARAMS})
    out = run_pytest("-s", cwd=project.path, env={KEY_ENV: "k"})
    assert out.returncode == 0, out.stdout
    assert "2 passed" in out.stdout
    assert f"LITELLM {project.transport == 'litellm'}" in out.stdout
    assert project.server.count == 2
    assert all(body.items() >= SERVER_PARAMS.items() for body in project.server.requests)


def _log(project):
    path = project.path / ".promstack/calls.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_429_with_retry_after_four_times_then_success(project):
    seen = []

    def respond(body):
        seen.append(time.monotonic())
        if len(seen) <= 4:
            return Reply(status=429, headers={"Retry-After": "0.2"} if len(seen) % 2 else {"retry-after-ms": "200"})
        return None

    project.server.respond = respond
    project.write({"prompt_tests/a.csv": ONE}, **FAST_RETRY)
    project.run().assert_outcomes(passed=1)
    assert project.server.count == 5
    waits = [b - a for a, b in itertools.pairwise(seen)]
    assert all(w >= 0.19 for w in waits[:4])  # Retry-After honoured, not the 10 ms backoff
    lines = _log(project)
    assert [line["status"] for line in lines] == ["retry"] * 4 + ["ok"]
    assert lines[-1]["attempts"] == 5
    assert all(line["status_code"] == 429 for line in lines[:4])


def test_retry_after_as_http_date(project):
    calls = []
    project.server.respond = lambda body: (calls.append(1) or Reply(
        status=429, headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)})) if not calls else None
    project.write({"prompt_tests/a.csv": ONE}, **FAST_RETRY)
    start = time.monotonic()
    project.run().assert_outcomes(passed=1)
    assert time.monotonic() - start >= 0.9  # waited for the date (1 s resolution), not the 10 ms backoff


def test_500_forever_errors_with_status_and_attempts(project):
    project.server.respond = lambda body: Reply(status=500, text="overloaded")
    project.write({"prompt_tests/a.csv": ONE}, max_retries=2, **FAST_RETRY)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*[[]mine[]]: model call failed: InternalServerError (HTTP 500): *overloaded* (after 3 attempts)"])
    assert project.server.count == 3


def test_401_is_not_retried(project):
    project.server.respond = lambda body: Reply(status=401, text="bad key")
    project.write({"prompt_tests/a.csv": ONE}, **FAST_RETRY)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HTTP 401*bad key* (after 1 attempt)"])
    assert project.server.count == 1


def test_hang_past_the_deadline_errors(project):
    project.server.latency = 5
    project.write({"prompt_tests/a.csv": ONE}, timeout=1, **FAST_RETRY)
    start = time.monotonic()
    result = project.run()
    result.assert_outcomes(errors=1)
    assert time.monotonic() - start < 4.5
    result.stdout.fnmatch_lines(["*model call failed:*"])


def test_malformed_json_and_empty_choices_are_errors(project):
    def respond(body):
        text = body["messages"][-1]["content"]
        if text == "broken":
            return Reply(body="{not json")
        if text == "empty":
            return Reply(body={"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []})
        return None

    project.server.respond = respond
    project.write({"prompt_tests/a.csv": "input,__expected\nbroken,contains:x\nempty,contains:x\nfine,contains:fine\n"},
                  max_retries=1, **FAST_RETRY)
    result = project.run()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*a.csv:3 [[]mine[]]: model call failed: the provider returned no choices*"])


def test_missing_usage_gives_na_not_zero(project):
    project.server.respond = lambda body: Reply(text="hi there", usage=False)
    project.write({"prompt_tests/a.csv": ONE})
    result = project.run()
    result.assert_outcomes(passed=1)
    (row,) = summary_rows(result)
    assert row["tokens in"] == "n/a"
    assert row["tokens out"] == "n/a"
    assert row["cost USD"] == "n/a"


def test_connection_refused_for_one_model_other_passes(project):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    project.write({
        "promstack.yaml": f"""
            models:
              - {{name: up, model: openai/up, api_base: "{project.server.url}", api_key_env: PROMSTACK_TEST_KEY}}
              - {{name: down, model: openai/down, api_base: "http://127.0.0.1:{dead}/v1", api_key_env: PROMSTACK_TEST_KEY}}
            max_retries: 1
            retry_backoff: 0.01
            suites: {{s: {{tests: [prompt_tests/a.csv]}}}}
        """,
        "prompt_tests/a.csv": ONE,
    })
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*[[]down[]]: model call failed: *Connection*(after 2 attempts)"])


def test_repeated_429s_halve_concurrency_then_recover(project):
    state = {"n": 0}

    def respond(body):
        state["n"] += 1
        return Reply(status=429, headers={"retry-after-ms": "50"}) if state["n"] <= 8 else None

    project.server.respond = respond
    project.server.latency = 0.05
    rows = "\n".join(f"q{i},contains:q{i}" for i in range(40))
    project.write({"prompt_tests/a.csv": f"input,__expected\n{rows}\n"}, concurrency=8, **FAST_RETRY)
    project.run().assert_outcomes(passed=40)
    assert project.server.max_in_flight == 8


def test_replay_fails_on_cache_miss_and_makes_no_call(project):
    project.write({"prompt_tests/a.csv": "input,__expected\nknown,contains:known\n"})
    project.run().assert_outcomes(passed=1)
    project.write({"prompt_tests/a.csv": "input,__expected\nknown,contains:known\nnew,contains:new\n"})
    project.server.reset()
    result = project.run("--promstack-cache=replay")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a.csv:3 [[]mine[]]: cache miss in replay mode (key ????????????????*"])
    assert project.server.count == 0


def test_record_writes_sorted_cassettes_that_replay_without_cache(project):
    project.write({"prompt_tests/a.csv": "input,__expected,__description\n둘,contains:둘,b\n하나,contains:하나,a\n"})
    result = project.run("--promstack-record")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["promstack: wrote cassettes/regression.jsonl (2 recorded)"])
    lines = (project.path / "cassettes/regression.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["case"] for e in entries] == ["prompt_tests/a.csv::a[mine]", "prompt_tests/a.csv::b[mine]"]
    assert entries[0]["response"] == "echo: 하나"
    assert "하나" in lines[0]
    assert entries[0]["request"]["messages"] == [{"role": "user", "content": "하나"}]
    # a fresh clone: no disk cache, only the committed cassette
    import shutil

    shutil.rmtree(project.path / ".promstack")
    project.server.reset()
    project.run("--promstack-cache=replay").assert_outcomes(passed=2)
    project.run().assert_outcomes(passed=2)
    assert project.server.count == 0


def test_record_keeps_deselected_cases_and_drops_vanished_ones(project):
    project.write({"prompt_tests/a.csv": "input,__expected,__description\nx,contains:x,a\ny,contains:y,b\n"})
    project.run("--promstack-record")
    project.run("--promstack-record", "-k", "a")
    assert len((project.path / "cassettes/regression.jsonl").read_text().splitlines()) == 2
    project.write({"prompt_tests/a.csv": "input,__expected,__description\nx,contains:x,a\n"})
    project.run("--promstack-record")
    assert len((project.path / "cassettes/regression.jsonl").read_text().splitlines()) == 1


def test_call_log_has_one_line_per_call_with_the_fields(project, monkeypatch):
    monkeypatch.setenv("PROMSTACK_USER", "user_123")
    project.write({"prompt_tests/a.csv": "input,__expected\n환불,contains:환불\nb,contains:b\n"})
    project.run()
    project.run()
    lines = _log(project)
    assert len(lines) == 4
    first = lines[0]
    for key in ("timestamp", "run_id", "suite", "case_id", "prompt_id", "prompt_version", "model", "input_tokens",
                "output_tokens", "cost_usd", "latency_ms", "cached", "attempts", "status", "error", "user_id"):
        assert key in first
    assert first["user_id"] == "user_123"
    assert first["suite"] == "regression"
    assert first["model"] == "mine"
    assert [line["cached"] for line in lines] == [False, False, True, True]
    assert len({line["run_id"] for line in lines}) == 2
    assert {line["case_id"] for line in lines} == {"prompt_tests/a.csv::row-2[mine]", "prompt_tests/a.csv::row-3[mine]"}


def alternating():
    """The wobbly case's calls alternate yes / no, whatever order they come in."""
    counter = {"n": 0}

    def respond(body):
        if body["messages"][-1]["content"] == "wobbly":
            counter["n"] += 1
            return Reply(text="yes" if counter["n"] % 2 else "no")
        return Reply(text="yes")

    return respond


def test_repeat_and_min_pass_report_flaky_cases(both_modes):
    for project in both_modes:
        project.server.respond = alternating()
        # one call at a time: the repeats are called in order, so the same repeat answers no in both modes
        project.write({"prompt_tests/a.csv": "input,__expected\nwobbly,contains:yes\nsteady,contains:yes\n"},
                      repeat=4, min_pass=2, concurrency=1)
        result = project.run()
        result.assert_outcomes(passed=2)
        assert project.server.count == 8  # the repeat index is in the cache key
        result.stdout.fnmatch_lines(["promstack: flaky: prompt_tests/a.csv::row-2[mine] passed 2 of 4 repeats"])
        (row,) = summary_rows(result)
        assert row["flaky"] == "1"
        result = project.run("--promstack-repeat=4", "-p", "no:randomly")
        assert project.server.count == 8  # all cached
        project.write({"prompt_tests/a.csv": "input,__expected\nwobbly,contains:yes\n"}, repeat=4)
        result = project.run()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*passed 2 of 4 repeats, needs 4*"])


def test_a_python_target_of_the_wrong_shape_errors_its_case_in_one_line_and_never_hangs(project):
    project.write({
        "shapes.py": """
            def reply(messages, vars):
                q = vars["input"]
                if q == "plain":
                    return "안녕"
                return {"cost": {"text": "안녕", "cost_usd": "free"}, "usage": {"text": "안녕", "usage": {"input_tokens": "many"}},
                        "list": {"text": ["안녕"]}, "nothing": None}[q]
        """,
        "promstack.yaml": """
            models: [{name: app, model: "python:shapes:reply"}]
            suites: {app: {tests: [prompt_tests/a.csv]}}
        """,
        "prompt_tests/a.csv": "input,__expected\nplain,contains:안녕\ncost,contains:안녕\nusage,contains:안녕\n"
                              "list,contains:안녕\nnothing,contains:안녕\n",
    })
    result = project.run()
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines_random([
        "*a.csv:3 [[]app[]]: model call failed: python:shapes:reply returned cost_usd 'free' (not a number of US "
        "dollars); return the reply text, or a dict*",
        "*a.csv:4 [[]app[]]: model call failed: python:shapes:reply returned usage input_tokens 'many' (not a whole "
        "number of tokens)*",
        "*a.csv:5 [[]app[]]: model call failed: python:shapes:reply returned 'text' of type list*",
        "*a.csv:6 [[]app[]]: model call failed: python:shapes:reply returned a NoneType*",
        "promstack: warning: python:shapes:reply reports no cost_usd; its cost shows as n/a*",
    ])
    (row,) = summary_rows(result)
    assert row["cost USD"] == "n/a"  # the plain-text reply reported no cost: unknown, never 0
    project.run().assert_outcomes(passed=1, errors=4)  # nothing bad was cached


def test_python_target_tests_an_application(project):
    project.write({
        "support_app.py": """
            import asyncio
            FAQ = {"환불": "환불은 주문 후 7일 이내 가능합니다.", "배송": "배송은 2-3일 걸립니다."}

            async def answer(messages, vars):
                await asyncio.sleep(0.01)
                question = messages[-1]["content"]
                for key, reply in FAQ.items():
                    if key in question:
                        return {"text": reply, "usage": {"input_tokens": 3, "output_tokens": 5}, "cost_usd": 0.001}
                return "상담원에게 연결해 드리겠습니다."

            def broken(messages, vars):
                raise RuntimeError("index unavailable")
        """,
        "promstack.yaml": """
            models:
              - {name: app, model: "python:support_app:answer"}
              - {name: broken, model: "python:support_app:broken"}
            suites: {app: {tests: [prompt_tests/a.csv]}}
        """,
        "prompt_tests/a.csv": "input,__expected\n환불하고 싶어요,contains:7일\n배송 언제 와요?,contains:2-3일\n",
    })
    result = project.run()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*[[]broken[]]: model call failed: python:support_app:broken raised RuntimeError: index unavailable*"])
    rows = {r["model"]: r for r in summary_rows(result)}
    assert rows["app"]["tokens in"] == "6"
    assert rows["app"]["cost USD"] == "0.002000"
    assert float(rows["app"]["P50 ms"]) >= 10
    project.run().assert_outcomes(passed=2, errors=2)
    (row,) = [r for r in summary_rows(project.run()) if r["model"] == "app"]
    assert row["cache hits"] == "2/2"


def test_progress_prints_a_few_lines_without_a_tty_and_nothing_under_q(project):
    rows = "\n".join(f"q{i},contains:q{i}" for i in range(40))
    project.write({"prompt_tests/a.csv": f"input,__expected\n{rows}\n"})
    result = project.run()
    progress = [line for line in result.stdout.lines if line.startswith("promstack: calls")]
    assert 1 <= len(progress) <= 5
    assert progress[-1].startswith("promstack: calls 40/40 done, 0 from cache, 0 errors")
    result = project.run("-q")
    assert not [line for line in result.stdout.lines if line.startswith("promstack: calls")]


def test_each_case_is_scored_when_its_answers_are_in_while_later_calls_are_on_their_way(project, monkeypatch):
    # one call at a time, 0.2 s each: the first case is scored after the first answer, long before
    # the last one; the calls' line follows pytest's progress of the items
    progress = project.path / "progress.jsonl"
    monkeypatch.setenv("PROMSTACK_PROGRESS_FILE", str(progress))
    monkeypatch.setattr(project.server, "latency", 0.2)
    rows = "\n".join(f"q{i},contains:q{i}" for i in range(5))
    project.write({"prompt_tests/a.csv": f"input,__expected\n{rows}\n"}, concurrency=1)
    result = project.run()
    result.assert_outcomes(passed=5)
    lines = [json.loads(line) for line in progress.read_text(encoding="utf-8").splitlines()]
    first_case = next(i for i, line in enumerate(lines) if "done" in line)
    last_call = next(i for i, line in enumerate(lines) if line.get("calls") == 5)
    assert first_case < last_call, lines
    assert lines[last_call] == {"calls": 5, "of": 5, "hits": 0, "errors": 0}
    counted = 0  # a case is told after the call it waited for is counted
    for line in lines:
        counted = line.get("calls", counted)
        assert line.get("done", 0) <= counted, lines
    result.stdout.fnmatch_lines(["*[[]100%[]]", "promstack: calls 5/5 done, 0 from cache, 0 errors, *s"])


def test_server_specific_params_reach_the_body_and_our_own_keys_do_not(project):
    project.write({
        "promstack.yaml": f"""
            models:
              - name: mine
                model: openai/mine
                api_base: "{project.server.url}"
                api_key_env: PROMSTACK_TEST_KEY
                params: {{repeat_penalty: 1.3, top_k: 5, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}
            transport: {project.transport}
            suites: {{s: {{tests: [prompt_tests/a.csv]}}}}
        """,
        "prompt_tests/a.csv": ONE,
    })
    project.run().assert_outcomes(passed=1)
    (body,) = project.server.requests
    assert body["repeat_penalty"] == 1.3
    assert body["top_k"] == 5
    assert not {"drop_params", "input_cost_per_token", "output_cost_per_token"} & body.keys()


def test_a_keyless_api_base_gets_no_key_and_never_openai_api_key(project, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    project.write({
        "promstack.yaml": f"""
            models: [{{name: mine, model: openai/mine, api_base: "{project.server.url}"}}]
            defaults: {{repeat_penalty: 1.1}}
            transport: {project.transport}
            max_retries: 0
            suites: {{s: {{tests: [prompt_tests/a.csv]}}}}
        """,
        "prompt_tests/a.csv": ONE,
    })
    project.run().assert_outcomes(passed=1)
    (headers,) = project.server.headers
    assert "sk-must-not-leak" not in json.dumps(headers)
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
    # direct: no header at all; litellm's OpenAI client insists on one: a placeholder
    assert auth == (None if project.transport == "auto" else "Bearer no-key")


def test_api_key_env_is_the_key_sent(project):
    project.write({"prompt_tests/a.csv": ONE})
    project.run().assert_outcomes(passed=1)
    (headers,) = project.server.headers
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer test-key"


def test_a_500_that_names_an_unsupported_param_is_not_retried(project):
    project.server.respond = lambda body: Reply(status=500, text="Unsupported parameter: 'top_k' is not supported")
    project.write({"prompt_tests/a.csv": ONE}, **FAST_RETRY)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HTTP 500*top_k*is not supported* (after 1 attempt)"])
    assert project.server.count == 1


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_bug_of_ours_inside_a_call_errors_the_case_and_never_hangs_the_run(project, transport):
    """Whatever goes wrong while a call is taken in, its request still resolves."""
    project.write({
        "conftest.py": """
            import pytest_promstack.execute.engine as execute

            ORIGINAL = execute.priced

            def broken(req, resp):
                raise RuntimeError("pricing exploded")

            def pytest_configure(config):  # before the calls start (at the end of collection)
                execute.priced = broken

            def pytest_unconfigure(config):  # the module outlives this inner run
                execute.priced = ORIGINAL
        """,
        "prompt_tests/a.csv": "input,__expected\nhi,contains:hi\n",
    }, transport=transport)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model call failed: promstack could not complete this call (RuntimeError: pricing "
                                 "exploded); please report it as a bug of pytest-promstack*"])


def test_a_stuck_engine_ends_the_wait_with_an_error_instead_of_hanging(project):
    """If no call ends for longer than any call's deadline, the run stops waiting."""
    project.write({
        "conftest.py": """
            import pytest_promstack.execute.engine as execute

            ORIGINAL = execute.Engine._start

            def pytest_configure(config):  # calls are accepted but never started
                execute.Engine._start = lambda self, pending: None

            def pytest_unconfigure(config):
                execute.Engine._start = ORIGINAL
        """,
        "prompt_tests/a.csv": "input,__expected\nhi,contains:hi\n",
    }, timeout=0.2)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model call failed: no call of this run ended for 2.2 s (timeout 0.2 s + 2 s)*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_recording_one_file_keeps_the_cassette_entries_of_the_files_not_collected(project, xdist):
    project.write({"prompt_tests/a.csv": "input,__expected\n하나,contains:하나\n둘,contains:둘\n",
                   "prompt_tests/b.csv": "input,__expected\n셋,contains:셋\n"})
    project.run("--promstack-record", *xdist).assert_outcomes(passed=3)
    cassette = project.path / "cassettes/regression.jsonl"
    before = cassette.read_text(encoding="utf-8").splitlines()
    assert len(before) == 3
    project.write({"prompt_tests/b.csv": "input,__expected\n넷,contains:넷\n"})  # b.csv's case changed
    result = project.run("--promstack-record", "prompt_tests/b.csv", *xdist)
    result.assert_outcomes(passed=1)
    after = [json.loads(x)["case"] for x in cassette.read_text(encoding="utf-8").splitlines()]
    assert sorted(after) == ["prompt_tests/a.csv::row-2[mine]", "prompt_tests/a.csv::row-3[mine]",
                             "prompt_tests/b.csv::row-2[mine]"]  # a.csv's kept; b.csv's old answer replaced
    assert json.loads(cassette.read_text(encoding="utf-8").splitlines()[-1])["request"]["messages"][-1]["content"] == "넷"


@pytest.mark.parametrize("body", [{"choices": [{"message": "s"}]}, {"choices": [{"message": {"content": "x"}}],
                                                                     "usage": ["x"]},
                                  {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -3}}],
                         ids=["message-string", "usage-list", "negative-tokens"])
def test_an_answer_of_the_wrong_shape_errors_its_case_and_never_hangs(project, body):
    from tests.support.fake_openai import Reply

    project.server.respond = lambda b: Reply(body=body)
    project.write({"prompt_tests/a.csv": "input,__expected\nhi,contains:x\n"}, max_retries=0)
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model call failed: *"])
    if project.transport == "auto":  # named by the direct transport itself, not by the last-resort guard
        result.stdout.fnmatch_lines(["*the provider's answer is not a chat completion: *"])
