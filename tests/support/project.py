"""Helpers that lay out a small promstack project inside a pytester directory."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

KEY_ENV = "PROMSTACK_TEST_KEY"


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")


def config(server_url: str, *, models: list[str] | None = None, suites: dict[str, Any] | None = None,
           **extra: Any) -> str:
    """A promstack.yaml whose models all point at the loopback server."""
    names = models or ["mine"]
    doc: dict[str, Any] = {
        "models": [{"name": n, "model": f"openai/{n}", "api_base": server_url, "api_key_env": KEY_ENV}
                   for n in names],
        "defaults": {"temperature": 0, "max_tokens": 64},
        "suites": suites or {"regression": {"tests": ["prompt_tests/*"]}},
        **extra,
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def one_error_line(capsys: Any) -> str:
    """What a CLI call printed on stderr: exactly one line and no traceback (a user's mistake)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


def record_prompt(root: Path, prompt: dict[str, Any], version_text: str | None = None) -> None:
    """Write the prompt's file (prompts/ID.yaml) and record it in the registry (a new version
    when it changed)."""
    from pytest_promstack.plan.prompts import load_prompt
    from pytest_promstack.versions import PromptRegistry

    path = root / "prompts" / f"{prompt['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(version_text or yaml.safe_dump(prompt, allow_unicode=True), encoding="utf-8")
    p = load_prompt(path, root)
    PromptRegistry(root).observe(p.id, p.version, path)
