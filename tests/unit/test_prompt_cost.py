"""results/prompt_cost.py: fixed against variable tokens counted with gpt-4o-mini's own tokenizer
(offline: litellm's bundled tiktoken files), volumes and cost differences from a generated call log
read by results/monitor.py, the quality difference from recorded evaluations, and the cheapest
passing model of a results document priced at live volumes."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from pytest_promstack.model.errors import PromstackError
from pytest_promstack.plan.prompts import Prompt
from pytest_promstack.results import monitor
from pytest_promstack.results import prompt_cost as pc

SYSTEM = "You are a polite support agent for ACME. Answer in Korean, in at most three sentences."
USER = "고객 {{ name }}님의 질문: {{ question }}"
PRICE = (0.15e-6, 0.6e-6)
MINI = pc.Model("mini", "openai/gpt-4o-mini", PRICE)


def prompt(system: str = SYSTEM, user: str = USER) -> Prompt:
    return Prompt(id="support", messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                  source="prompts/support.yaml")


def o200k_count(messages: list[dict]) -> int:
    """OpenAI's chat count, computed here with tiktoken itself: 3 per message, its role and
    content, 3 priming the reply."""
    import tiktoken

    from pytest_promstack.execute.litellm_import import import_litellm

    import_litellm()  # points tiktoken at litellm's bundled files
    enc = tiktoken.get_encoding("o200k_base")
    return sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages) + 3


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer went to the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_fixed_tokens_are_the_prompt_rendered_with_every_variable_empty(offline):
    fixed = pc.fixed_tokens(prompt(), MINI.litellm)
    assert fixed == o200k_count([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "고객 님의 질문: "}])
    assert fixed == pc.litellm_counter(MINI.litellm, pc.fixed_messages(prompt()))


def test_attributes_loops_and_conditions_of_an_empty_variable_render_nothing():
    p = prompt(user="{{ user.name }}|{% for x in items %}{{ x }}{% endfor %}|{% if vip %}VIP{% endif %}|{{ q|upper }}")
    assert pc.fixed_messages(p)[1]["content"] == "|||"


def test_a_template_that_cannot_render_is_one_line_naming_the_file():
    with pytest.raises(PromstackError, match=r"prompts/support.yaml: cannot render the fixed text"):
        pc.fixed_messages(prompt(user="{{ 1 / 0 }}"))


def test_fixed_share_and_variable_tokens_at_the_logged_input(offline):
    logged = pc.Traffic(calls=10, cached=2, input_tokens=8 * 120, cost_usd=0.01)
    v = pc.Version(1, "h1", prompt())
    f = pc.version_figures(v, MINI, logged)
    fixed = pc.fixed_tokens(prompt(), MINI.litellm)
    assert f["mean_input_tokens"] == 120.0  # over the 8 fresh calls: a cache hit bills no tokens
    assert f["variable_tokens"] == 120.0 - fixed
    assert f["fixed_share"] == pytest.approx(100.0 * fixed / 120.0)
    assert f["cost_per_call"] == pytest.approx(0.001)


def test_the_model_is_the_option_then_the_prompts_then_the_most_logged():
    logged = pc.Traffic(models={"big": 3, "mini": 7})
    assert pc.pick_model("given", prompt(), logged) == "given"
    assert pc.pick_model(None, Prompt("p", ({"role": "user", "content": "x"},), "f", model="own"), logged) == "own"
    assert pc.pick_model(None, prompt(), logged) == "mini"
    assert pc.pick_model(None, prompt(), None) is None


# -- volumes from a generated log ---------------------------------------------------------------

START = datetime(2025, 3, 1, 9, tzinfo=UTC)


def line(when: datetime, version: str, tokens: int, cost: float, cached: bool = False, **extra) -> dict:
    return {"timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "kind": "model",
            "prompt_id": "support", "prompt_version": version, "model": "mini", "input_tokens": tokens,
            "output_tokens": 50, "cost_usd": cost, "latency_ms": 500.0, "cached": cached, "status": "ok", **extra}


def generated(tmp_path) -> str:
    """v1 (h1) for 10 days at 100 calls a day, 10 of them cache hits; v2 (h2) for the next 4 days
    at 200 a day; another prompt's calls beside them."""
    lines = []
    for day in range(14):
        v1 = day < 10
        for i in range(100 if v1 else 200):
            when = START + timedelta(days=day, minutes=i)
            lines.append(line(when, "h1", 400, 0.0002, cached=i < 10) if v1 else line(when, "h2", 300, 0.00015))
        lines.append({**line(START + timedelta(days=day), "x9", 999, 1.0), "prompt_id": "other"})
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return str(path)


def test_calls_per_day_cost_per_call_and_the_monthly_difference_from_a_log(tmp_path, offline):
    rows = monitor.figures([generated(tmp_path)], window="day", by=monitor.BY)
    per, whole = pc.traffic(rows, "support")
    assert set(per) == {"h1", "h2"}
    assert (per["h1"].calls, per["h1"].span, per["h1"].per_day) == (1000, 10, 100.0)
    assert (per["h2"].calls, per["h2"].span, per["h2"].per_day) == (800, 4, 200.0)
    assert per["h1"].per_call == pytest.approx(90 * 0.0002 / 100)  # cache hits cost nothing
    assert per["h1"].mean_input == 400.0
    assert whole.per_day == pytest.approx(1800 / 14)

    shorter = prompt(system=SYSTEM.split(".")[0] + ".")
    a = pc.version_figures(pc.Version(1, "h1", prompt(), evaluation={"score": 82, "run_id": "r1"}), MINI, per["h1"])
    b = pc.version_figures(pc.Version(2, "h2", shorter, evaluation={"score": 79, "run_id": "r2"}), MINI, per["h2"])
    c = pc.compare(a, b, whole.per_day)
    assert c["cost_per_call"] == pytest.approx(0.00015 - 0.00018)
    assert c["cost_per_1000"] == pytest.approx(-0.03)
    assert c["cost_per_month"] == pytest.approx(-0.00003 * 1800 / 14 * 30)
    saved = b["fixed_tokens"] - a["fixed_tokens"]
    assert saved < 0
    assert c["fixed_tokens"] == saved
    assert c["fixed_percent"] == pytest.approx(100.0 * saved / a["fixed_tokens"])
    assert c["input_percent"] == pytest.approx(100.0 * saved / 400.0)
    assert c["fixed_cost_per_1000"] == pytest.approx(saved * PRICE[0] * 1000)
    assert c["fixed_cost_per_month"] == pytest.approx(saved * PRICE[0] * 1800 / 14 * 30)
    assert (c["quality"], c["quality_a"], c["quality_b"]) == (-3, 82, 79)


def test_no_quality_difference_unless_both_versions_were_evaluated(offline):
    a = pc.version_figures(pc.Version(1, "h1", prompt(), evaluation={"score": 82}), MINI, None)
    b = pc.version_figures(pc.Version(2, "h2", prompt()), MINI, None)
    c = pc.compare(a, b, None)
    assert (c["quality"], c["cost_per_month"], c["fixed_tokens"], c["fixed_percent"]) == (None, None, 0, 0.0)


def test_an_unpriced_day_makes_the_cost_unknown_not_zero():
    t = pc.Traffic()
    t.add({"calls": 5, "cached": 0, "input_tokens": 10, "cost_usd": 0.5, "window_start": "2025-03-01T00:00:00Z",
           "model": "m"})
    t.add({"calls": 5, "cached": 0, "input_tokens": 10, "cost_usd": None, "window_start": "2025-03-02T00:00:00Z",
           "model": "m"})
    assert (t.per_call, t.per_day) == (None, 5.0)


def test_the_cheapest_passing_model_is_priced_at_each_versions_volume():
    cases = [{"suite": "s", "prompt_id": "support", "model": "mini", "cost_usd": 0.0004, "repeats": 2},
             {"suite": "s", "prompt_id": "support", "model": "mini", "cost_usd": 0.0002, "repeats": 1},
             {"suite": "s", "prompt_id": "support", "model": "big", "cost_usd": 0.01, "repeats": 1},
             {"suite": "t", "prompt_id": "other", "model": "mini", "cost_usd": 1.0, "repeats": 1}]
    doc = {"cases": cases, "selection": [{"suite": "s", "cheapest": "mini", "criterion": "every gate", "models": []},
                                         {"suite": "t", "cheapest": "mini", "criterion": "every gate", "models": []}]}
    versions = [{"number": 1, "calls_per_day": 100.0}, {"number": 2, "calls_per_day": None}]
    [c] = pc.cheapest(doc, "support", versions)
    assert (c["suite"], c["model"]) == ("s", "mini")
    assert c["cost_per_call"] == pytest.approx(0.0006 / 3)  # per model call: a case's repeats are calls
    assert c["per_month"] == {1: pytest.approx(0.0002 * 100 * 30), 2: None}
