"""The support bot: FAQ retrieval, a polite refusal for abusive input, and a hand-off to a
person when nothing matches. In a conversation it reads the history: a refund request asks for
the order number once, states the refund policy once it has it, and hands off to a person when
asked. promstack calls ``answer(messages, vars)`` like a model."""

from __future__ import annotations

import json
import re
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
    """One reply. A one-shot question gets its FAQ answer; in a conversation (``messages`` holds
    the earlier turns) a refund request goes on from what the customer already said."""
    question = str(vars.get("input") or messages[-1]["content"])
    earlier = [str(m.get("content")) for m in messages[:-1] if m.get("role") == "user"]
    text = reply(question, earlier)
    return {"text": text, "usage": {"input_tokens": len(question.split()), "output_tokens": len(text.split())},
            "cost_usd": 0.0}


ORDER = re.compile(r"(?<![A-Za-z0-9])[A-Z]-\d{4}(?!\d)")  # A-1001, also in "A-1001이에요"
REFUND_REQUEST = ("환불 신청", "환불 요청", "환불해 주", "환불받")
PERSON = ("상담원", "사람과", "사람이랑", "직원")
ASK_ORDER = "환불을 도와드리겠습니다. 주문번호를 알려 주세요 (예: A-1001)."
POLICY = ("주문 {order} 확인했습니다. 환불 규정: 상품 수령 후 7일 이내에는 전액 환불되며, 신청하시면 영업일 기준 "
          "3일 안에 처리됩니다.")
FOLLOW_UP = "주문 {order}의 환불은 영업일 기준 3일 안에 처리되며, 완료되면 문자로 알려 드립니다."
TO_PERSON = "네, 상담원에게 연결해 드리겠습니다. 주문 {order} 환불 건은 상담원이 이어서 도와드립니다."


def reply(question: str, earlier: list[str]) -> str:
    """The reply to ``question`` after the customer's ``earlier`` messages: abuse is refused, a
    person is asked for gets one (with the order in hand), a refund request asks for the order
    number once, then states the policy, then answers follow-ups without asking again."""
    if any(word in question for word in ABUSE):
        return REFUSAL
    orders = [o for text in [*earlier, question] for o in ORDER.findall(text)]
    refund = any(r in text for text in [*earlier, question] for r in REFUND_REQUEST)
    if any(p in question for p in PERSON):
        return TO_PERSON.format(order=orders[-1]) if orders and refund else HANDOFF
    if refund and not orders:
        return ASK_ORDER
    if refund and ORDER.search(question):
        return POLICY.format(order=orders[-1])
    entry = retrieve(question)
    if entry is not None:
        return entry["answer"]
    return FOLLOW_UP.format(order=orders[-1]) if refund else HANDOFF


def handoff(messages: list[dict[str, Any]], vars: dict[str, Any]) -> dict[str, Any]:
    """A baseline for the arena: always hands the customer to a person (and costs nothing)."""
    return {"text": HANDOFF, "cost_usd": 0.0}
