"""Render templates as Python's SDK does, for the TypeScript SDK's parity test: reads a JSON list of
[template, variables] on stdin, writes a JSON list of {"text": ...} or {"error": ...}."""

from __future__ import annotations

import json
import sys

from pytest_promstack.model.errors import PromstackError
from pytest_promstack.plan.templates import compile_text, render_text


def render(template: str, variables: dict) -> dict:
    try:
        return {"text": render_text(compile_text(template, "t"), variables, "t")}
    except PromstackError as exc:
        return {"error": str(exc)}


if __name__ == "__main__":
    cases = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdout.buffer.write(json.dumps([render(t, v) for t, v in cases], ensure_ascii=False).encode("utf-8"))
