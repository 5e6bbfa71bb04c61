"""The run-time SDK: get_prompt by version, label and default, label TTL, fallback to the
file, complete() through the engine, and an import that loads neither pytest nor litellm."""

from __future__ import annotations

import json

import pytest

from pytest_promstack import Client
from pytest_promstack.errors import PromstackError
from pytest_promstack.versions import PromptRegistry
from tests.support.project import KEY_ENV, config, write
from tests.support.run import run_python

V1 = "id: support\ntemplate: '하나 {{ input }}'\n"
V2 = "id: support\ntemplate: '둘 {{ input }}'\n"


@pytest.fixture
def project(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    monkeypatch.setenv("PROMSTACK_USER", "sdk-test")
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/support.yaml",
                                                                       "tests": ["t.csv"]}}),
                     "prompts/support.yaml": V1, "t.csv": "input\nx\n"})
    reg = PromptRegistry(tmp_path)
    from pytest_promstack.plan.prompts import load_prompt

    for text in (V1, V2):
        (tmp_path / "prompts/support.yaml").write_text(text, encoding="utf-8")
        p = load_prompt(tmp_path / "prompts/support.yaml", tmp_path)
        reg.observe(p.id, p.version, tmp_path / "prompts/support.yaml")
    reg.set_label("support", "production", 1)
    return tmp_path


def test_get_prompt_by_version_label_and_default(project):
    client = Client(project)
    assert client.get_prompt("support", version=2).render(input="환불") == [{"role": "user", "content": "둘 환불"}]
    prod = client.get_prompt("support")  # the production label by default
    assert (prod.number, prod.labels) == (1, ("production",))
    assert prod.render(input="환불") == [{"role": "user", "content": "하나 환불"}]
    assert client.get_prompt("support", label="production").number == 1
    with pytest.raises(Exception, match="has no label 'staging'"):
        client.get_prompt("support", label="staging")
    assert client.get_prompt("support", version=1) is client.get_prompt("support", version=1)  # cached


def test_without_a_production_label_the_default_is_the_latest(project):
    index = project / ".promstack/prompts/index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    data["prompts"]["support"]["labels"] = {}
    index.write_text(json.dumps(data), encoding="utf-8")
    assert Client(project).get_prompt("support").number == 2


def test_labels_are_read_again_after_their_ttl(project):
    client = Client(project, label_ttl=30)
    now = [1000.0]
    client.clock = lambda: now[0]
    assert client.get_prompt("support", label="production").number == 1
    PromptRegistry(project).set_label("support", "production", 2)  # a deploy elsewhere
    now[0] += 29
    assert client.get_prompt("support", label="production").number == 1  # within the TTL
    now[0] += 2
    assert client.get_prompt("support", label="production").number == 2


def test_a_missing_registry_falls_back_to_the_file_with_a_warning(project):
    import shutil

    shutil.rmtree(project / ".promstack")
    with pytest.warns(UserWarning, match="prompt 'support' is not in the registry.*using the prompt file"):
        p = Client(project).get_prompt("support")
    assert p.number is None
    assert p.render(input="a") == [{"role": "user", "content": "둘 a"}]


def test_complete_goes_through_the_engine_with_cache_and_call_log(project, server):
    with Client(project, user_id="user_9") as client:
        p = client.get_prompt("support", version=1)
        reply = client.complete(p, input="환불", model="mine")
        assert reply.text == "echo: 하나 환불"
        assert not reply.cached
        repeat = client.complete(p, input="환불", model="mine")  # answered from the client's memory
        assert (repeat.cached, repeat.text) == (True, reply.text)
    with Client(project) as again:  # another process later: the disk cache answers
        assert again.complete(again.get_prompt("support", version=1), input="환불", model="mine").cached
    assert server.count == 1
    log = [json.loads(x) for x in (project / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [x["cached"] for x in log] == [False, True, True]  # as the replies said
    assert log[0]["prompt_id"] == "support"
    assert log[0]["user_id"] == "user_9"


def test_the_client_may_set_its_own_cache_mode(project, server):
    with Client(project) as client:
        p = client.get_prompt("support", version=1)
        assert not client.complete(p, input="캐시", model="mine").cached
    with Client(project, cache="off") as fresh:  # calls again, though the disk cache has the answer
        assert not fresh.complete(fresh.get_prompt("support", version=1), input="캐시", model="mine").cached
    with Client(project, cache="replay") as replay:
        missed = replay.complete(replay.get_prompt("support", version=1), input="새 질문", model="mine")
        assert "cache miss in replay mode" in missed.error
    assert server.count == 2
    with pytest.raises(PromstackError, match=r"cache='of': not a cache mode; use one of use, off, refresh, replay"):
        Client(project, cache="of")


def test_the_application_may_log_outside_the_project_and_rotation_still_applies(project, server, tmp_path_factory):
    outside = tmp_path_factory.mktemp("var-log") / "app/calls.jsonl"
    (project / "promstack.yaml").write_text(
        (project / "promstack.yaml").read_text(encoding="utf-8") + "log: {path: .promstack/calls.jsonl, "
        "rotate: {max_bytes: 1024}, keep: 5}\n", encoding="utf-8")
    with Client(project, log=outside) as client:
        for n in range(4):
            client.complete(client.get_prompt("support", version=1), input=f"{n}", model="mine",
                            session_id="세션-" + "x" * 600)  # a long line: each file holds one or two
    assert not (project / ".promstack/calls.jsonl").exists()
    files = sorted(f for f in outside.parent.iterdir() if f.name.endswith(".jsonl"))
    assert len(files) > 1  # rotated by promstack.yaml's log.rotate
    lines = [json.loads(x) for f in files for x in f.read_text(encoding="utf-8").splitlines()]
    assert [(x["prompt_id"], x["status"]) for x in lines] == [("support", "ok")] * 4


def test_importing_the_sdk_loads_neither_pytest_nor_litellm(project):
    out = run_python(f"""
        import sys
        from pytest_promstack import Client
        p = Client({str(project)!r}).get_prompt("support")
        p.render(input="x")
        print(sorted(m for m in ("pytest", "_pytest", "litellm", "pandas") if m in sys.modules))
    """).check()
    assert out.stdout.strip() == "[]"


def test_numeric_prompt_ids_work_as_names_do(tmp_path):
    write(tmp_path, {"promstack.yaml": "models: [openai/x]\nsuites:\n  s: {prompt: prompts/p.yaml, tests: [t.csv]}\n",
                     "prompts/p.yaml": "id: 42\ntemplate: '질문: {{ input }}'\n", "t.csv": "input\nx\n"})
    from pytest_promstack.plan.prompts import load_prompt

    p = load_prompt(tmp_path / "prompts/p.yaml", tmp_path)
    assert PromptRegistry(tmp_path).observe(p.id, p.version, tmp_path / "prompts/p.yaml").number == 1
    got = Client(tmp_path).get_prompt(42, version=1)
    assert (got.id, got.number) == ("42", 1)
    assert got.render(input="환불") == [{"role": "user", "content": "질문: 환불"}]
    assert (tmp_path / ".promstack/prompts/42/1.yaml").read_text(encoding="utf-8").startswith("id: 42")


def _move_labels(root: str, worker: int) -> None:
    reg = PromptRegistry(__import__("pathlib").Path(root))
    for i in range(5):
        reg.set_label("support", f"w{worker}", 1 + (i % 2))


def test_concurrent_writers_lose_no_label_move(project):
    """Two CI steps or an editor's test runner may write the registry at once: a lock keeps
    every change."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_move_labels, [str(project)] * 8, range(8)))
    entry = json.loads((project / ".promstack/prompts/index.json").read_text(encoding="utf-8"))["prompts"]["support"]
    assert len(entry["audit"]) == 1 + 8 * 5  # the fixture's production label, then every move
    assert {k: v for k, v in entry["labels"].items() if k.startswith("w")} == {f"w{i}": 1 for i in range(8)}
    assert (project / ".promstack/prompts/.gitignore").read_text(encoding="utf-8") == ".lock\n"


def test_a_registry_version_keeps_its_tools_and_the_sdk_reply_carries_the_calls_for_check(tmp_path, server,
                                                                                            monkeypatch):
    from tests.support.fake_openai import Reply

    monkeypatch.setenv(KEY_ENV, "k")
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/orders.yaml",
                                                                       "tests": ["t.csv"]}}),
                     "prompts/orders.yaml": "id: orders\ntemplate: '주문 {{ order }} 조회'\ntools: file://tools.json\n",
                     "prompts/tools.json": json.dumps(tools), "t.csv": "order\nx\n"})
    from pytest_promstack.plan.prompts import load_prompt

    p = load_prompt(tmp_path / "prompts/orders.yaml", tmp_path)
    PromptRegistry(tmp_path).observe(p.id, p.version, tmp_path / "prompts/orders.yaml")
    (tmp_path / "prompts/tools.json").write_text("[]", encoding="utf-8")  # changed since: v1 keeps its own
    server.respond = lambda body: Reply(tool_calls=[("lookup_order", {"order_id": "A-17"})])
    with Client(tmp_path) as client:
        v1 = client.get_prompt("orders", version=1)
        assert v1.hash == p.version
        reply = client.complete(v1, order="A-17", model="mine")
        assert reply.calls == [("lookup_order", {"order_id": "A-17"})]
        assert reply.params["tools"] == tools
        client.check(reply, "tool-called:lookup_order", {"type": "tool-args-match",
                                                         "value": {"name": "lookup_order", "args": {"order_id": "A-17"}}})
        with pytest.raises(AssertionError, match="not-tool-called: called lookup_order"):
            client.check(reply, "not-tool-called")
    assert server.requests[0]["tools"] == tools


def test_a_failed_call_is_asked_again_by_the_next_complete(project, server):
    server.faults = {"mine": 500}
    with Client(project) as client:
        first = client.complete([{"role": "user", "content": "z"}], model="mine")
        calls = server.count
        server.faults = {}
        second = client.complete([{"role": "user", "content": "z"}], model="mine")
    assert first.error is not None
    assert server.count == calls + 1  # errors are never kept: the server is asked again
    assert (second.error, second.text) == (None, "echo: z")


def test_threads_sharing_one_client_each_get_their_answer(project, server):
    import threading

    failures: list[str] = []
    with Client(project) as client:
        def ask(t: int) -> None:
            for i in range(15):
                try:
                    reply = client.complete([{"role": "user", "content": f"q{i % 4}"}], model="mine")
                    assert reply.text == f"echo: q{i % 4}", reply
                except Exception as exc:  # a KeyError or a hang before the engine was shared
                    failures.append(repr(exc))

        threads = [threading.Thread(target=ask, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert failures == []
    # one call per distinct question, whichever thread asked first (on a loaded machine a call
    # may be retried: the call log says so, and the server counts that request too)
    log = [json.loads(x) for x in (project / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()]
    called = [r for r in log if r["kind"] == "model" and not r["cached"]]
    assert sorted(r["status"] for r in called if r["status"] != "retry") == ["ok"] * 4
    assert server.count == len(called)
