"""The SDK in production: each Client.complete() is an OpenTelemetry span named and attributed
per the GenAI semantic conventions (against the loopback server, spans kept in the SDK's
InMemorySpanExporter), a child of the caller's span, with no prompt or answer text and a
masked error; off by default (OpenTelemetry not even imported); the call log line carries the
session, the provider's model name and the finish reason; a log that cannot be written is one
warning per client and the reply still comes back."""

from __future__ import annotations

import errno
import json
import os
import warnings

import pytest
import yaml

from pytest_promstack import Client
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.project import KEY_ENV, config, write
from tests.support.run import run_python

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

PROMPT = "id: support\ntemplate: '상담 {{ input }}'\n"


@pytest.fixture(scope="module")
def exporter():
    """The process's global tracer provider (it can be set once), exporting into memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def spans(exporter):
    exporter.clear()
    return exporter


def make_project(tmp_path, monkeypatch, server, **extra):
    monkeypatch.setenv(KEY_ENV, "k")
    monkeypatch.setenv("PROMSTACK_USER", "sdk-test")
    write(tmp_path, {"promstack.yaml": config(server.url, suites={"s": {"prompt": "prompts/support.yaml",
                                                                       "tests": ["t.csv"]}}, **extra),
                     "prompts/support.yaml": PROMPT, "t.csv": "input\nx\n"})
    return tmp_path


def log_lines(project):
    return [json.loads(x) for x in (project / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()]


def test_complete_is_a_chat_span_with_the_genai_attributes_and_no_text(tmp_path, monkeypatch, server, spans):
    project = make_project(tmp_path, monkeypatch, server, telemetry={"otel": True})
    with Client(project, session_id="visit-7") as client:
        reply = client.complete("support", input="환불 문의", model="mine")
    (span,) = spans.get_finished_spans()
    assert span.name == "chat mine"
    assert span.kind == trace.SpanKind.CLIENT
    a = dict(span.attributes)
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"], a["gen_ai.system"]) == ("chat", "openai", "openai")
    assert (a["gen_ai.request.model"], a["promstack.model"]) == ("mine", "mine")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (reply.input_tokens,
                                                                                 reply.output_tokens)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["promstack.prompt.id"], a["promstack.prompt.version"]) == ("support", reply.prompt_version)
    assert a["gen_ai.conversation.id"] == "visit-7"
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", server.port)
    assert (a["gen_ai.request.temperature"], a["gen_ai.request.max_tokens"]) == (0, 64)
    assert "error.type" not in a
    assert span.status.status_code == trace.StatusCode.UNSET
    assert not any("환불" in str(v) or reply.text in str(v) for v in a.values())  # neither question nor answer
    assert span.end_time - span.start_time > 0


def priced(project):
    """The project's model priced by its params, so that a call has a cost to bill."""
    cfg = project / "promstack.yaml"
    doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    doc["models"][0]["params"] = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return project


def test_a_repeat_answered_from_the_clients_memory_is_a_cached_span_that_bills_nothing(tmp_path, monkeypatch,
                                                                                         server, spans):
    project = priced(make_project(tmp_path, monkeypatch, server, telemetry={"otel": True}))
    with Client(project) as client:
        first, again = (client.complete("support", input="스팬 캐시 1", model="mine") for _ in range(2))
    assert server.count == 1
    assert [line["cached"] for line in log_lines(project)] == [False, True]  # the reference
    assert (first.cached, again.cached, again.text) == (False, True, first.text)
    paid, hit = (dict(s.attributes) for s in spans.get_finished_spans())
    assert paid["promstack.cached"] is False
    assert first.cost_usd > 0
    assert paid["promstack.cost_usd"] == pytest.approx(first.cost_usd)
    assert (paid["gen_ai.usage.input_tokens"], paid["gen_ai.usage.output_tokens"]) == (first.input_tokens,
                                                                                     first.output_tokens)
    assert hit["promstack.cached"] is True  # no tokens used, nothing paid: no usage or cost for a backend to sum
    assert not {"promstack.cost_usd", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} & set(hit)
    assert (hit["promstack.prompt.id"], hit["gen_ai.request.model"]) == ("support", "mine")


def test_a_disk_cache_hit_in_a_new_client_is_a_cached_span_that_bills_nothing(tmp_path, monkeypatch, server, spans):
    project = priced(make_project(tmp_path, monkeypatch, server, telemetry={"otel": True}))
    with Client(project) as client:
        client.complete("support", input="a", model="mine")
    with Client(project) as later:
        assert later.complete("support", input="a", model="mine").cached
    hit = dict(spans.get_finished_spans()[-1].attributes)
    assert hit["promstack.cached"] is True
    assert not {"promstack.cost_usd", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} & set(hit)


SETUP_S = 1.5  # one-time setup made this slow: a span that counted it would be off by that much


@pytest.mark.parametrize(("transport", "setup"), [("auto", "pytest_promstack.execute.providers.openai_compat.Transport"),
                                                  ("litellm", "pytest_promstack.execute.litellm_import.import_litellm")],
                         ids=["direct", "litellm"])
def test_a_first_span_covers_the_model_call_not_the_setup_before_it(tmp_path, monkeypatch, transport, setup, spans):
    """The HTTP client (direct transport) or litellm's import (litellm transport) is made slow:
    the span still lasts about the call's logged latency (the server's 0.3 s delay)."""
    import importlib
    import time

    module, _, name = setup.rpartition(".")
    slow = getattr(importlib.import_module(module), name)

    def slow_setup(*args, **kwargs):
        time.sleep(SETUP_S)
        return slow(*args, **kwargs)

    monkeypatch.setattr(f"{module}.{name}", slow_setup)
    with FakeOpenAI(latency=0.3) as server:
        project = make_project(tmp_path, monkeypatch, server, telemetry={"otel": True}, transport=transport)
        with Client(project) as client:
            began = time.monotonic()
            reply = client.complete("support", input="a", model="mine")
            took = time.monotonic() - began
    assert reply.error is None
    assert took >= SETUP_S  # the setup was slow indeed
    (span,) = spans.get_finished_spans()
    span_ms = (span.end_time - span.start_time) / 1e6
    assert reply.latency_ms >= 300
    assert reply.latency_ms - 1 <= span_ms < reply.latency_ms + SETUP_S * 1000 / 2, (span_ms, reply.latency_ms)


def test_the_span_is_a_child_of_the_callers_span(tmp_path, monkeypatch, server, spans):
    project = make_project(tmp_path, monkeypatch, server, telemetry={"otel": True})
    with Client(project) as client, trace.get_tracer("app").start_as_current_span("POST /chat") as outer:
        client.complete("support", input="a", model="mine")
    chat = next(s for s in spans.get_finished_spans() if s.name == "chat mine")
    assert chat.parent is not None
    assert (chat.parent.span_id, chat.context.trace_id) == (outer.get_span_context().span_id,
                                                            outer.get_span_context().trace_id)
    assert "gen_ai.conversation.id" not in chat.attributes  # no session given: none made up


def test_a_failed_call_is_an_error_span_whose_text_is_masked(tmp_path, monkeypatch, spans):
    def refuse(body):
        return Reply(status=400, body={"error": {"message": "account minji.kim@example.com is suspended"}})

    with FakeOpenAI(respond=refuse) as server:
        project = make_project(tmp_path, monkeypatch, server, telemetry={"otel": True})
        with Client(project) as client:
            reply = client.complete("support", input="a", model="mine")
    assert reply.error
    (span,) = spans.get_finished_spans()
    assert span.attributes["error.type"] == "400"
    assert span.status.status_code == trace.StatusCode.ERROR
    assert "example.com" not in span.status.description
    assert "<EMAIL_1>" in span.status.description
    assert "example.com" not in json.dumps(log_lines(project))  # the call log's error is masked too


def test_telemetry_is_off_by_default_and_opentelemetry_is_not_imported(tmp_path, monkeypatch, server, spans):
    project = make_project(tmp_path, monkeypatch, server)
    with Client(project) as client:
        client.complete("support", input="a", model="mine")
    assert spans.get_finished_spans() == ()
    out = run_python(f"""
        import sys
        from pytest_promstack import Client
        with Client({str(project)!r}) as client:
            print(client.complete("support", input="b", model="mine").error)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """, env={KEY_ENV: "k"}).check()
    assert out.stdout.splitlines()[-2:] == ["None", "[]"]


def test_the_call_log_line_names_the_session_the_provider_model_and_the_finish_reason(tmp_path, monkeypatch,
                                                                                       server):
    project = make_project(tmp_path, monkeypatch, server)
    with Client(project, session_id="client-session") as client:
        client.complete("support", input="a", model="mine")
        client.complete("support", input="b", model="mine", session_id="chat-42")  # the call's own wins
    first, second = log_lines(project)
    assert (first["session_id"], second["session_id"]) == ("client-session", "chat-42")
    assert (first["model"], first["litellm_model"], first["finish_reason"]) == ("mine", "openai/mine", "stop")
    assert first["run_id"] == second["run_id"]  # one client, one run


def test_a_call_log_that_cannot_be_written_is_one_warning_and_the_reply_comes_back(tmp_path, monkeypatch, server):
    project = make_project(tmp_path, monkeypatch, server, log="logs")
    (project / "logs").mkdir()  # the log's path is a folder
    with Client(project) as client:
        with pytest.warns(UserWarning, match=r"call log not written: .*logs: Is a directory; the calls go on"):
            first = client.complete("support", input="a", model="mine")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = client.complete("support", input="b", model="mine")  # said once
    assert (first.text, second.text) == ("echo: 상담 a", "echo: 상담 b")


def test_a_call_log_that_cannot_rotate_is_one_warning_and_every_call_is_still_logged(tmp_path, monkeypatch,
                                                                                      server):
    project = make_project(tmp_path, monkeypatch, server,
                           log={"path": ".promstack/calls.jsonl", "rotate": {"max_bytes": 1024}})
    real = os.rename

    def refuse(src, dst, *args, **kwargs):  # the folder made immutable (chattr +i)
        if os.path.basename(src) == "calls.jsonl":
            raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", refuse)
    with Client(project) as client:
        client.complete("support", input="a" * 900, model="mine", session_id="s" * 600)
        with pytest.warns(UserWarning, match=r"call log not rotated: .*calls\.jsonl: Operation not permitted; "
                                             r"its lines go on to it"):
            client.complete("support", input="b", model="mine", session_id="s" * 600)  # past 1,024 bytes
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            client.complete("support", input="c", model="mine")  # said once
    assert len(log_lines(project)) == 3
    assert sorted(p.name for p in (project / ".promstack").glob("calls*.jsonl")) == ["calls.jsonl"]


def test_an_unknown_or_misplaced_telemetry_key_is_one_line_naming_it(tmp_path, monkeypatch, server):
    from pytest_promstack.model.errors import ConfigError

    project = make_project(tmp_path, monkeypatch, server, telemetry={"otl": True})
    with pytest.raises(ConfigError, match=r"telemetry\.otl: unknown key \(did you mean 'otel'\?\)"):
        Client(project)
