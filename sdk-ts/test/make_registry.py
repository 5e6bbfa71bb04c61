"""Write a prompt registry for the TypeScript SDK's tests: every prompt of the shared render
fixtures (tests/data/render/fixtures.json), plus prompts whose content hash is easy to get wrong
outside Python (floats, non-ASCII keys, tools, an id that needs encoding, a text file), and a
prompt with two versions and a production label on the first.

    python sdk-ts/test/make_registry.py TARGET_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from pytest_promstack.plan.prompts import load_prompt
from pytest_promstack.versions import PromptRegistry

REPO = Path(__file__).resolve().parents[2]
FIXTURES = json.loads((REPO / "tests/data/render/fixtures.json").read_text(encoding="utf-8"))["cases"]

EXTRA = [
    ("params", {"id": "params", "model": "openai/gpt-4o-mini", "template": "{{ q }}",
                "params": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 100, "frequency_penalty": -0.5,
                           "small": 1e-07, "big": 1e16, "stop": ["\n", "끝"],
                           "메타": {"키": "값", "b": True, "n": None}, "emoji": "😀", "quote": "\"'\\\t\u2028"}}),
    ("tools", {"id": "tools", "template": "날씨: {{ city }}", "response_format": {"type": "json_object"},
               "tools": [{"type": "function", "function": {"name": "get_weather", "description": "날씨",
                                                           "parameters": {"type": "object", "properties": {
                                                               "city": {"type": "string"}}}}}]}),
    ("team-summary", {"id": "팀/요약 v2", "template": "요약: {{ text }}"}),
]


def record(root: Path, name: str, prompt: dict | str, suffix: str = ".yaml") -> None:
    path = root / "prompts" / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = prompt if isinstance(prompt, str) else yaml.safe_dump(prompt, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    p = load_prompt(path, root)
    PromptRegistry(root).observe(p.id, p.version, path)


def main(target: str) -> None:
    root = Path(target)
    for case in FIXTURES:
        record(root, str(case["prompt"]["id"]), case["prompt"])
    for name, prompt in EXTRA:
        record(root, name, prompt)
    record(root, "letter", "안녕하세요 {{ name }}님,\n주문이 접수되었습니다.\n", ".txt")
    record(root, "moving", {"id": "moving", "template": "첫 번째 {{ x }}"})
    record(root, "moving", {"id": "moving", "template": "두 번째 {{ x }}"})
    PromptRegistry(root).set_label("moving", "production", 1)
    (root / "promstack.yaml").write_text("suites: {}\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
