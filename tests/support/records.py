"""Results documents with conversations and agent trajectories, built through the records and
the document a run writes (results/records.py, results/document.py), for the report tests."""

from __future__ import annotations

import json
from typing import Any

from pytest_promstack.model.types import Case, Request, Response, Score
from pytest_promstack.plan.planned import Planned
from pytest_promstack.results import records
from pytest_promstack.results.document import document
from pytest_promstack.score.case import Outcome

PROBE = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>window.__pwned = 1</script>"


def planned(row: int, model: str = "mine", file: str = "prompt_tests/chat.yaml") -> Planned:
    req = Request(model=model, litellm_model=f"openai/{model}", messages=({"role": "user", "content": "안녕"},),
                  params={}, key=f"k{row}{model}")
    return Planned(case=Case(file=file, row=row, vars={"who": "고객"}), suite="s", model=model, prompt_id="p",
                   prompt_version="abcd1234", name=f"row-{row}", case_id=f"{file}::row-{row}[{model}]", asserts=(),
                   requests=(req,))


def check(kind: str, passed: bool, reason: str) -> dict[str, Any]:
    return {"type": kind, "passed": passed, "score": 1.0 if passed else 0.0, "reason": reason}


def turn(index: int, said: str, reply: str, asserts: list[dict[str, Any]], calls: int = 1) -> dict[str, Any]:
    return {"index": index, "where": f"prompt_tests/chat.yaml:{index + 1}", "input": said, "output": reply,
            "passed": all(a["passed"] for a in asserts) if asserts else None,
            "score": min((a["score"] for a in asserts), default=None), "assertions": asserts,
            "latency_ms": 10.0 * index, "input_tokens": 5, "output_tokens": 3, "cost_usd": 0.0001,
            "cached": False, "model_calls": calls}


def step(turn_: int, n: int, name: str, args: Any, result: Any) -> dict[str, Any]:
    return {"turn": turn_, "step": n, "name": name, "arguments": args, "result": result}


def conversation_record() -> dict[str, Any]:
    """Three turns (Korean, with markup probes); turn 1 calls two tools; turn 2 fails."""
    base = records.case_record(planned(2), [Response(text="네", input_tokens=15, output_tokens=9, cost_usd=0.0003,
                                                     latency_ms=60.0)],
                               Outcome(False, 0, 0.0, (Score("turns", False, 0.0, "turn 2 failed"),)))
    turns = [
        turn(1, "서울 날씨 알려줘", "서울은 맑고 21도예요.", [check("contains", True, "contains 맑")], calls=2),
        turn(2, f"환불 규정은? {PROBE}", f"모르겠어요 {SCRIPT}", [check("contains", False, "expected 7일")]),
        turn(3, "고마워요", "천만에요!", [check("icontains", True, "ok")]),
    ]
    steps = [step(1, 1, "get_weather", {"city": "서울"}, {"temp": 21, "sky": "맑음"}),
             step(1, 1, "get_time", {"tz": "Asia/Seoul"}, f"10:00 {PROBE}")]
    return {**base, "turns": turns, "steps": steps, "model_calls": 4, "outcome": "failed",
            "output": "천만에요!", "messages": [
                {"role": "user", "content": "서울 날씨 알려줘"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c0", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": json.dumps({"city": "서울"})}}]},
                {"role": "tool", "tool_call_id": "c0", "content": '{"temp": 21}'},
                {"role": "assistant", "content": "서울은 맑고 21도예요."}]}


def agent_record() -> dict[str, Any]:
    """A one-shot case whose agent loop called a tool twice before it answered."""
    base = records.case_record(planned(3), [Response(text="주문 42는 배송 중입니다", latency_ms=30.0, input_tokens=9,
                                                     output_tokens=4, cost_usd=0.0002)],
                               Outcome(True, 1, 1.0, (Score("contains", True, 1.0, "ok"),)))
    steps = [step(1, 1, "lookup_order", {"id": 42}, {"status": "배송 중"}),
             step(1, 2, "track", "not json {", None)]
    return {**base, "steps": steps, "model_calls": 3, "outcome": "passed"}


def plain_record() -> dict[str, Any]:
    base = records.case_record(planned(4, file="prompt_tests/a.csv"), [Response(text="안녕하세요", latency_ms=5.0)],
                               Outcome(True, 1, 1.0, ()))
    return {**base, "outcome": "passed"}


def doc_with(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The results document of a run with these case records, as written and read back."""
    run = {"id": "r1", "started": "2026-01-01T00:00:00Z", "git_commit": None, "settings": {}}
    return json.loads(json.dumps(document(run, cases, None)))
