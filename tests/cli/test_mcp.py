"""`promstack mcp` through the mcp SDK's own client: in process (both protocol eras), over
stdio and over streamable HTTP. The registry's prompts as MCP prompts (the shared render
fixtures give the same messages), a suite run on the loopback model with per-case progress
(the same cache and call log as pytest), one case and an ad-hoc call, a deploy refused by the
gates, the results and prompt files as resources, and every refusal one clear error."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import anyio
import pytest
import yaml

mcp = pytest.importorskip("mcp")  # the mcp extra: the test extra installs it

from mcp import Client, MCPError, StdioServerParameters  # noqa: E402

from pytest_promstack.cli.mcp_server import Project, PromstackMCP  # noqa: E402
from pytest_promstack.versions import PromptRegistry  # noqa: E402
from tests.support.project import KEY_ENV, config, record_prompt, write  # noqa: E402
from tests.support.run import environment, run_promstack, start  # noqa: E402

FIXTURES = json.loads((Path(__file__).parents[1] / "data/render/fixtures.json").read_text(encoding="utf-8"))["cases"]
SUPPORT = {"id": "support", "messages": [{"role": "system", "content": "당신은 쇼핑몰 상담원입니다."},
                                         {"role": "user", "content": "{{ input }}"}]}
# the loopback model echoes the question: the last case asks for a word it never says
CASES = ("input,__expected,__description\n환불하고 싶어요,contains:환불,환불\n배송은 언제 오나요?,contains:배송,배송\n"
         "교환 방법,contains:교환,교환\n영업시간,contains:상담 가능,영업시간\n")
MODES = ["auto", "legacy"]  # the stateless 2026 protocol and the handshake editors speak today


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path, server, monkeypatch) -> Path:
    """A project on the loopback model: the support prompt recorded as v1, four Korean cases
    (one fails), a gate that wants them all."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("CI", raising=False)  # a developer's editor: the registry is written
    suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/support.csv"]}}
    write(tmp_path, {"promstack.yaml": config(server.url, suites=suites, gates={"min_pass_rate": 100}),
                     "prompt_tests/support.csv": CASES})
    record_prompt(tmp_path, SUPPORT)
    return tmp_path


def in_process(root: Path, **options) -> PromstackMCP:
    return PromstackMCP(Project(root, None), **options)


def text_of(result) -> str:
    return result.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_the_registrys_prompts_are_mcp_prompts_with_their_variables_and_a_version(root, mode):
    record_prompt(root, {**SUPPORT, "messages": [SUPPORT["messages"][0],
                                                 {"role": "user", "content": "둘째: {{ input }}"}]})
    PromptRegistry(root).set_label("support", "production", 1)
    async with Client(in_process(root), mode=mode) as client:
        listed = (await client.list_prompts()).prompts
        assert [p.name for p in listed] == ["support"]
        assert [(a.name, a.required) for a in listed[0].arguments] == [("input", True), ("version", False)]
        got = await client.get_prompt("support", {"input": "환불하고 싶어요"})  # production: v1
        assert [(m.role, m.content.text) for m in got.messages] == [
            ("user", "당신은 쇼핑몰 상담원입니다."), ("user", "환불하고 싶어요")]
        assert got.description.startswith("support v1 [production]")
        assert "system message comes as the first user message" in got.description
        second = await client.get_prompt("support", {"input": "x", "version": "2"})
        assert second.messages[-1].content.text == "둘째: x"
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("support", {})
        assert (missing.value.code, missing.value.message) == (-32602, "prompt 'support' v1 needs the argument 'input'")
        with pytest.raises(MCPError, match=r"no prompt 'nope' in the registry; its prompts: support"):
            await client.get_prompt("nope", {})
        with pytest.raises(MCPError, match="no label 'staging'"):
            await client.get_prompt("support", {"input": "x", "version": "staging"})


@pytest.mark.anyio
async def test_a_template_variable_named_version_keeps_its_name(root):
    record_prompt(root, {"id": "release", "template": "릴리스 {{ version }}: {{ notes }}"})
    async with Client(in_process(root), mode="legacy") as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        assert [a.name for a in listed["release"].arguments] == ["notes", "version", "prompt_version"]
        got = await client.get_prompt("release", {"version": "2.1", "notes": "버그 수정", "prompt_version": "1"})
        assert got.messages[0].content.text == "릴리스 2.1: 버그 수정"


@pytest.mark.anyio
async def test_every_shared_fixture_renders_alike_over_mcp(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    write(tmp_path, {"promstack.yaml": "suites: {}\n"})
    for case in FIXTURES:
        record_prompt(tmp_path, case["prompt"])
    async with Client(in_process(tmp_path), mode="legacy") as client:
        for case in FIXTURES:
            pid = str(case["prompt"]["id"])
            shown = await client.call_tool("show_prompt", {"prompt": pid, "variables": case["variables"]})
            if "error" in case:
                assert shown.is_error, case["name"]
                assert case["error"] in text_of(shown), case["name"]
                continue
            assert not shown.is_error, text_of(shown)
            assert shown.structured_content["rendered"] == case["messages"], case["name"]
            if all(isinstance(v, str) for v in case["variables"].values()):  # prompt arguments are strings
                got = await client.get_prompt(pid, case["variables"])
                expected = [("assistant" if m["role"] == "assistant" else "user", m["content"])
                            for m in case["messages"]]
                assert [(m.role, m.content.text) for m in got.messages] == expected, case["name"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_suite_runs_with_progress_and_answers_failures_and_gates_from_the_same_cache(root, server, mode):
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with Client(in_process(root), mode=mode) as client:
        ran = await client.call_tool("run_suite", {"suites": ["regression"]}, progress_callback=on_progress)
        assert not ran.is_error, text_of(ran)
        result = ran.structured_content
        assert (result["status"], result["verdict"]) == (1, "some cases failed")
        assert {k: result["totals"][k] for k in ("cases", "passed", "failed")} == {"cases": 4, "passed": 3, "failed": 1}
        [failure] = result["failures"]
        assert failure["case"] == "prompt_tests/support.csv::영업시간[mine]"
        assert failure["output"] == "echo: 영업시간"
        assert "상담 가능" in failure["failed"][0]
        assert result["gates"] == [{"key": "min_pass_rate", "scope": "overall", "value": 75.0, "limit": 100.0,
                                    "passed": False}]
        # the 4 model calls and the 4 cases (each scored as its answer arrives) on one scale
        # that only grows, to 8 of 8
        assert progress[-1][:2] == (8.0, 8.0)
        assert [m for _, _, m in progress if m.startswith("model calls")][-1].startswith("model calls 4/4")
        assert [m for _, _, m in progress if m.startswith("case")][-1].startswith("case 4/4 ")
        assert [d for d, _, _ in progress] == sorted({d for d, _, _ in progress})
        assert server.count == 4
        saved = json.loads(Path(result["results"]).read_text(encoding="utf-8"))
        assert len(saved["cases"]) == 4
        assert Path(result["report"]).is_file()
        assert (root / ".promstack/mcp/.gitignore").read_text(encoding="utf-8") == "*\n"  # outputs, never committed
        logged = (root / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(logged) == 4  # the call log pytest writes

        again = (await client.call_tool("run_suite", {"k": "환불 or 배송"})).structured_content
        assert again["totals"]["cases"] == 2
        assert again["totals"]["cache_hits"] == 2
        assert server.count == 4  # answered from the cache pytest filled
        last = (await client.call_tool("last_results", {})).structured_content
        assert last["run_id"] == again["run_id"]
        assert last["totals"] == again["totals"]


@pytest.mark.anyio
async def test_progress_comes_while_the_model_calls_are_made(root, server):
    server.latency = 0.4
    suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/support.csv"]}}
    (root / "promstack.yaml").write_text(config(server.url, suites=suites, concurrency=1), encoding="utf-8")
    heard = []

    async def on_progress(done, total, message):
        heard.append((time.monotonic(), message))

    async with Client(in_process(root), mode="legacy") as client:
        await client.call_tool("run_suite", {"cache": "off"}, progress_callback=on_progress)
        ended = time.monotonic()
    calls = [(t, m) for t, m in heard if m.startswith("model calls ")]
    assert [m.split(" (")[0] for _, m in calls][-4:] == [f"model calls {i}/4" for i in range(1, 5)]
    assert ended - calls[0][0] > 0.8  # told during the calls (4 x 0.4 s one at a time), not at the end


@pytest.mark.anyio
async def test_one_case_and_an_ad_hoc_call_through_the_same_engine(root, server):
    async with Client(in_process(root), mode="legacy") as client:
        one = await client.call_tool("run_case", {"case": "prompt_tests/support.csv::교환[mine]"})
        assert not one.is_error, text_of(one)
        assert (one.structured_content["status"], one.structured_content["totals"]["cases"]) == (0, 1)

        adhoc = await client.call_tool("run_case", {"prompt": "support", "variables": {"input": "포인트 적립"},
                                                    "model": "mine", "asserts": ["contains:포인트", "is-json"]})
        assert not adhoc.is_error, text_of(adhoc)
        said = adhoc.structured_content
        assert (said["output"], said["number"], said["passed"]) == ("echo: 포인트 적립", 1, False)
        assert "is-json" in said["failure"]
        assert said["messages"][0] == {"role": "system", "content": "당신은 쇼핑몰 상담원입니다."}
        assert server.requests[-1]["messages"][-1]["content"] == "포인트 적립"
        passing = (await client.call_tool("run_case", {"prompt": "support", "variables": {"input": "포인트 적립"},
                                                       "asserts": ["icontains:포인트"]})).structured_content
        assert passing["passed"]
        assert passing["cached"]

        refusals = {
            "python assertion": ({"prompt": "support", "variables": {"input": "x"},
                                  "asserts": [{"type": "python", "value": "True"}]}, "a python assertion runs code"),
            # as parsed: a file://….py assertion is a python one, whatever its text says
            "python file": ({"prompt": "support", "variables": {"input": "x"}, "asserts": ["file://check.py:ok"]},
                            "a python assertion runs code; an agent's assertion may not run code"),
            "in an assert-set": ({"prompt": "support", "variables": {"input": "x"},
                                  "asserts": [{"type": "assert-set", "assert": [{"type": "not-python", "value": "1"}]}]},
                                 "a python assertion runs code"),
            "transform": ({"prompt": "support", "variables": {"input": "x"},
                           "asserts": [{"type": "contains", "value": "x", "transform": "output.upper()"}]},
                          "a transform runs code"),
            "python target": ({"prompt": "support", "variables": {"input": "x"}, "model": "python:os:system"},
                              "model 'python:os:system': not configured"),
            "both": ({"case": "prompt_tests/support.csv::교환", "prompt": "support"}, "not both"),
            "outside": ({"case": "../elsewhere.csv::x"}, "outside the project"),
            "no such file": ({"case": "prompt_tests/nope.csv::x"}, "no test file prompt_tests/nope.csv in the project"),
            "missing variable": ({"prompt": "support", "variables": {}},
                                 "prompt 'support' v1 needs the variable 'input'; give it in variables: {\"input\": ...}"),
            "bad cache": ({"case": "prompt_tests/support.csv::교환", "cache": "nope"},
                          "cache: Input should be 'use', 'replay', 'refresh', 'off' or 'record' (got \"nope\")"),
        }
        write(root, {"check.py": "def ok(output, context):\n    open('ran', 'w').close()\n    return True\n"})
        for name, (args, words) in refusals.items():
            refused = await client.call_tool("run_case", args)
            assert refused.is_error, name
            assert words in text_of(refused), (name, text_of(refused))
            assert "\n" not in text_of(refused), name  # one line
        assert not (root / "ran").exists()  # the refused check never ran
        bad_suite = await client.call_tool("run_suite", {"suites": ["nope"]})
        assert bad_suite.is_error
        assert "no suite 'nope'" in text_of(bad_suite)
        assert "regression" in text_of(bad_suite)

        last = (await client.call_tool("last_results", {})).structured_content
        for tool, args, words in (("run_suite", {"k": "and ("}, "Wrong expression passed to '-k'"),
                                  ("run_suite", {"k": "없는것"}, "no case matched the suites, k or case given"),
                                  ("run_case", {"case": "prompt_tests/support.csv::없는 케이스"}, "not found")):
            nothing = await client.call_tool(tool, args)
            assert nothing.is_error
            assert "\n" not in text_of(nothing)
            assert "nothing ran" in text_of(nothing)
            assert words in text_of(nothing)
        again = (await client.call_tool("last_results", {})).structured_content
        assert again["run_id"] == last["run_id"]  # the last real run's results stay


def children_of(root: Path) -> list[int]:
    """The processes whose command line names this project (a run's child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if str(root) in line and "pytest_promstack.cli" in line:
                found.append(int(entry.name))
    return found


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the process table in /proc")
async def test_a_cancelled_run_stops_its_child_process(root, server):
    server.latency = 6.0  # every answer takes longer than the test waits
    started = []

    async def on_progress(done, total, message):
        started.append(message)

    async with Client(in_process(root), mode="legacy") as client:
        with anyio.move_on_after(3) as waited:
            await client.call_tool("run_suite", {"cache": "off"}, progress_callback=on_progress)
        assert waited.cancelled_caught
        for _ in range(150):  # the server hears of the cancel, then stops the run: SIGTERM, SIGKILL after 10 s
            if not children_of(root):
                break
            await anyio.sleep(0.1)
        assert children_of(root) == []  # not left running
        assert started[-1].startswith("model calls 0/4")  # under way, no answer yet
        quick = await client.call_tool("list_prompts", {})  # the server goes on
        assert not quick.is_error


@pytest.mark.anyio
async def test_an_edited_config_is_read_again_without_a_restart(root, server):
    async with Client(in_process(root), mode="legacy") as client:
        before = await client.call_tool("run_suite", {"suites": ["smoke"]})
        assert before.is_error
        assert "its suites: regression" in text_of(before)
        suites = {"regression": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/support.csv"]},
                  "smoke": {"prompt": "prompts/support.yaml", "tests": ["prompt_tests/support.csv"]}}
        (root / "promstack.yaml").write_text(config(server.url, suites=suites), encoding="utf-8")
        after = await client.call_tool("run_suite", {"suites": ["smoke"], "k": "환불"})
        assert not after.is_error, text_of(after)
        assert after.structured_content["summary"][0]["suite"] == "smoke"


@pytest.mark.anyio
async def test_deploy_passes_the_gates_as_the_cli_does(root):
    async with Client(in_process(root), mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["deploy"].annotations.destructive_hint is True
        assert tools["run_suite"].annotations.destructive_hint is False
        assert tools["list_prompts"].annotations.read_only_hint is True

        digits = await client.call_tool("deploy", {"prompt": "support", "to": "12"})
        assert digits.is_error
        assert "label '12': a label needs a name that is not a version number" in text_of(digits)
        assert PromptRegistry(root).last_evaluation("support", 1) is None  # refused before evaluating

        refused = await client.call_tool("deploy", {"prompt": "support"})  # evaluates first: 3 of 4 pass
        assert refused.is_error
        assert "\n" not in text_of(refused)  # the refusal, not the evaluation's output
        assert "refused" in text_of(refused)
        assert "min_pass_rate [overall]: 75.0 vs 100.0: FAILED" in text_of(refused)
        assert "production" not in (PromptRegistry(root).entry("support").get("labels") or {})
        forced = await client.call_tool("deploy", {"prompt": "support", "force": True, "reason": "급함"})
        assert forced.is_error
        assert "--allow-force" in text_of(forced)

        (root / "prompt_tests/support.csv").write_text(CASES.replace("contains:상담 가능", "contains:영업"),
                                                       encoding="utf-8")
        scored = (await client.call_tool("evaluate_prompt", {"prompt": "support"})).structured_content
        assert (scored["number"], scored["score"], scored["passed"]) == (1, 100, True)
        moved = await client.call_tool("deploy", {"prompt": "support"})
        assert not moved.is_error, text_of(moved)
        assert "support production: none -> v1" in moved.structured_content["said"]
        assert PromptRegistry(root).entry("support")["labels"] == {"production": 1}

    async with Client(in_process(root, allow_force=True), mode="legacy") as client:
        digits = await client.call_tool("deploy", {"prompt": "support", "to": "12", "force": True, "reason": "x"})
        assert digits.is_error
        assert "label '12': a label needs a name that is not a version number" in text_of(digits)
        no_reason = await client.call_tool("deploy", {"prompt": "support", "to": "staging", "force": True})
        assert no_reason.is_error
        assert "needs a reason" in text_of(no_reason)
        forced = await client.call_tool("deploy", {"prompt": "support", "to": "staging", "force": True,
                                                   "reason": "급한 수정"})
        assert not forced.is_error
        assert "FORCED" in forced.structured_content["said"]


@pytest.mark.anyio
async def test_results_report_and_prompt_files_are_resources(root):
    async with Client(in_process(root), mode="legacy") as client:
        with pytest.raises(MCPError, match="no run yet"):
            await client.read_resource("promstack://results/latest.json")
        await client.call_tool("run_suite", {})
        uris = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert {"promstack://results/latest.json", "promstack://results/latest.html",
                "promstack://prompts/support/1"} <= set(uris)
        results = (await client.read_resource("promstack://results/latest.json")).contents[0]
        assert results.mime_type == "application/json"
        assert len(json.loads(results.text)["cases"]) == 4
        report = (await client.read_resource("promstack://results/latest.html")).contents[0]
        assert report.text.startswith("<!DOCTYPE html>") or report.text.lstrip().lower().startswith("<!doctype")
        prompt_file = (await client.read_resource("promstack://prompts/support/1")).contents[0]
        assert prompt_file.text == (root / "prompts/support.yaml").read_text(encoding="utf-8")
        assert prompt_file.mime_type == "application/yaml"
        with pytest.raises(MCPError, match="no version 9"):
            await client.read_resource("promstack://prompts/support/9")
        diff = await client.call_tool("diff_versions", {"prompt": "support", "a": 1, "b": "1"})  # numbers as JSON too
        assert diff.structured_content == {"diff": ""}
        shown = await client.call_tool("show_prompt", {"prompt": "support", "version": 1})
        assert shown.structured_content["number"] == 1
        for odd in (True, 1.5):
            refused = await client.call_tool("show_prompt", {"prompt": "support", "version": odd})
            assert refused.is_error
            assert "version: Input should be" in text_of(refused)


def child_env(**extra: str) -> dict[str, str]:
    """What an editor's config passes: the stdio client gives a server only HOME, PATH and a
    few more unless told; the key, and this checkout on PYTHONPATH."""
    return {KEY_ENV: "test-key", "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(Path(__file__).parents[2]),
            "PYTHONIOENCODING": "utf-8", **extra}


@pytest.mark.anyio
async def test_over_stdio_as_an_editor_starts_it(root):
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "pytest_promstack.cli", "mcp", "--config", str(root / "promstack.yaml")],
                                   cwd=str(root.parent), env=child_env())
    async with Client(params, mode="legacy") as client:
        got = await client.get_prompt("support", {"input": "안녕하세요"})
        assert got.messages[-1].content.text == "안녕하세요"
        steps = []

        async def on_progress(done, total, message):
            steps.append(done)

        ran = await client.call_tool("run_suite", {"cache": "off"}, progress_callback=on_progress)
        assert not ran.is_error, text_of(ran)
        assert ran.structured_content["totals"]["failed"] == 1
        assert steps[-4:] == [5.0, 6.0, 7.0, 8.0]  # the 4 calls, then the 4 cases
        refused = await client.call_tool("deploy", {"prompt": "support"})
        assert refused.is_error
        assert "refused" in text_of(refused)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_over_stdio_sigterm_or_ctrl_c_stops_it_with_exit_0(root, stop):
    import subprocess

    server = subprocess.Popen([sys.executable, "-m", "pytest_promstack.cli", "mcp"], cwd=root,
                              env=environment(child_env()), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                            "clientInfo": {"name": "test", "version": "1"}}}
        server.stdin.write(json.dumps(hello) + "\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())  # serving: the handler for SIGTERM is in place
        assert answer["result"]["serverInfo"]["name"] == "promstack"
        server.send_signal(stop)
        assert server.wait(timeout=30) == 0
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pipe in (server.stdin, server.stdout, server.stderr):
            pipe.close()


def test_over_streamable_http_on_loopback_and_stopped_by_sigterm(root):
    server = start([sys.executable, "-m", "pytest_promstack.cli", "mcp", "--http", "--port", "0"], cwd=root,
                   env=child_env())
    try:
        line = server.stdout.readline()
        found = re.search(r"serving (http://127\.0\.0\.1:\d+/mcp)", line)
        assert found, line

        async def use() -> list[str]:
            async with Client(found.group(1), mode="legacy") as client:
                ran = await client.call_tool("run_suite", {"k": "환불"})
                assert ran.structured_content["totals"]["passed"] == 1
                return [p.name for p in (await client.list_prompts()).prompts]

        assert anyio.run(use) == ["support"]
        import urllib.request

        rebinding = urllib.request.Request(found.group(1), method="POST", data=b"{}",
                                           headers={"Host": "evil.example", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(rebinding, timeout=10)
        refused.value.close()
        assert refused.value.code == 421  # the SDK's DNS-rebinding protection on a loopback server
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()


def test_bad_starts_are_one_line_each(tmp_path):
    no_config = run_promstack("mcp", cwd=tmp_path)
    assert no_config.returncode == 4
    assert no_config.stderr.startswith("promstack mcp: no promstack.yaml")  # not "promstack mcp: promstack: …"
    assert "no promstack.yaml" in no_config.stderr
    assert "Traceback" not in no_config.stderr
    write(tmp_path, {"promstack.yaml": yaml.safe_dump({"suites": {}})})
    for port in ("http", "²", "70000"):
        bad_port = run_promstack("mcp", "--http", "--port", port, cwd=tmp_path)
        assert (bad_port.returncode, bad_port.stderr.strip()) == (
            4, f"promstack mcp: --port {port}: not a port; give a number from 0 to 65535")
    missing = run_promstack("mcp", "--config", "nope.yaml", cwd=tmp_path)
    assert (missing.returncode, missing.stderr.strip()) == (
        4, "promstack mcp: --config nope.yaml: file not found; pass a promstack.yaml or pyproject.toml")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        busy = run_promstack("mcp", "--http", "--port", port, cwd=tmp_path)
    assert (busy.returncode, busy.stderr.strip()) == (
        4, f"promstack mcp: cannot listen on 127.0.0.1:{port} (Address already in use); pick another --port")


def test_the_command_does_not_import_mcp_until_it_runs():
    ran = run_promstack("--help", env={"PYTHONWARNINGS": "ignore"})
    assert ran.returncode == 0
    assert "mcp" in ran.stdout
    probe = [sys.executable, "-c", "import sys; from pytest_promstack.cli import build_parser; build_parser(); "
                                   "print('mcp' in sys.modules, 'anyio' in sys.modules)"]
    import subprocess

    out = subprocess.run(probe, capture_output=True, text=True, env=environment(), check=True).stdout
    assert out.split() == ["False", "False"]
    assert os.environ.get("PROMSTACK_PROGRESS_FILE") is None
