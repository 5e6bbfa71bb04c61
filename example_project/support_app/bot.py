"""The support bot: FAQ retrieval, a polite refusal for abusive input, and a hand-off to a
person when nothing matches. promstack calls ``answer(messages, vars)`` like a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FAQ = json.loads((Path(__file__).with_name("faq.json")).read_text(encoding="utf-8"))
ABUSE = ("바보", "멍청", "욕설", "꺼져")
HANDOFF = "문의해 주셔서 감사합니다. 정확한 안내를 위해 상담원에게 연결해 드리겠습니다."
REFUSAL = "죄송합니다. 정중한 표현으로 다시 말씀해 주시면 바로 도와드리겠습니다."


def retrieve(question: str) -> dict[str, Any] | None:
    """The FAQ entry with the most keyword hits (the first on a tie)."""
    scored = [(sum(k in question for k in entry["keywords"]), i) for i, entry in enumerate(FAQ)]
    hits, index = max(scored, key=lambda s: (s[0], -s[1]))
    return FAQ[index] if hits else None


def answer(messages: list[dict[str, Any]], vars: dict[str, Any]) -> dict[str, Any]:
    question = str(vars.get("input") or messages[-1]["content"])
    if any(word in question for word in ABUSE):
        text = REFUSAL
    else:
        entry = retrieve(question)
        text = entry["answer"] if entry else HANDOFF
    return {"text": text, "usage": {"input_tokens": len(question.split()), "output_tokens": len(text.split())},
            "cost_usd": 0.0}


def handoff(messages: list[dict[str, Any]], vars: dict[str, Any]) -> dict[str, Any]:
    """A baseline for the arena: always hands the customer to a person (and costs nothing)."""
    return {"text": HANDOFF, "cost_usd": 0.0}
