"""An order agent: it runs its own tools (``lookup_order``, ``request_refund``) over the small
orders table in orders.json and returns its reply with the steps it took, so promstack's
``tool-called``, ``tool-args-match`` and python checks read what it did. promstack calls
``run(messages, vars)`` like a model; the agent decides by rules (no model is called), so it
reports no ``model_calls`` and each step is numbered by its place."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ORDERS = json.loads(Path(__file__).with_name("orders.json").read_text(encoding="utf-8"))
ORDER = re.compile(r"(?<![A-Za-z0-9])[A-Z]-\d{4}(?!\d)")
REFUND_DAYS = 7


def lookup_order(order_id: str) -> dict[str, Any]:
    """The order as the shop's system has it, or an error the agent must handle."""
    order = ORDERS.get(order_id)
    return {"order_id": order_id, **order} if order else {"error": f"{order_id} 주문을 찾을 수 없습니다"}


def request_refund(order_id: str, reason: str) -> dict[str, Any]:
    """Files the refund; the refund number is made from the order's (no randomness: answers stay
    the same run to run, as a cassette needs)."""
    return {"refund_id": "R-" + order_id.replace("-", ""), "order_id": order_id, "reason": reason}


def run(messages: list[dict[str, Any]], vars: dict[str, Any]) -> dict[str, Any]:
    question = str(vars.get("input") or messages[-1]["content"])
    steps: list[dict[str, Any]] = []

    def use(name: str, tool: Any, **arguments: Any) -> dict[str, Any]:
        result = tool(**arguments)
        steps.append({"name": name, "arguments": arguments, "result": result})
        return result

    found = ORDER.search(question)
    if found is None:
        text = "주문번호를 알려 주시면 바로 확인해 드리겠습니다 (예: A-1001)."
    else:
        text = _handle(question, use("lookup_order", lookup_order, order_id=found.group()), use)
    return {"text": text, "steps": steps, "usage": {"input_tokens": len(question.split()),
                                                     "output_tokens": len(text.split())}, "cost_usd": 0.0}


def _handle(question: str, order: dict[str, Any], use: Any) -> str:
    if "error" in order:
        return f"{order['error']}. 주문번호를 다시 확인해 주세요."
    name = f"{order['order_id']} 주문"
    if "환불" not in question:
        return f"{name}({order['item']})은 지금 {order['status']} 상태입니다."
    if order["status"] != "배송 완료":
        return f"{name}은 아직 {order['status']}입니다. 받으신 뒤 {REFUND_DAYS}일 안에 환불하실 수 있습니다."
    if order["days_since_delivery"] > REFUND_DAYS:
        return (f"{name}은 받으신 지 {order['days_since_delivery']}일이 지나 환불 기간({REFUND_DAYS}일)이 "
                "끝났습니다. 상담원에게 연결해 드릴까요?")
    refund = use("request_refund", request_refund, order_id=order["order_id"], reason=question)
    return f"{name}의 환불을 접수했습니다. 환불 접수 번호는 {refund['refund_id']}입니다."
