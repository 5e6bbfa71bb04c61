"""Prompt files and Jinja2 rendering (strict undefined); versions are content hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..model.errors import CaseError
from .templates import compile_text, render_text

__all__ = ["Prompt", "compile_text", "from_mapping", "load_prompt", "render_text", "with_branches"]

TEXT_SUFFIXES = (".txt", ".j2", ".jinja", ".md")


@dataclass(frozen=True)
class Prompt:
    """A prompt: one user ``template`` or chat ``messages``, with optional model and params."""

    id: str
    messages: tuple[dict[str, Any], ...]
    source: str  # file path relative to the root, or "suite <name>"
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def version(self) -> str:
        """Short content hash: changes whenever the text, model or params change (each case of
        a suite reads it: computed once a prompt)."""
        body = {"messages": list(self.messages), "model": self.model, "params": self.params}
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]

    @cached_property
    def _templates(self) -> list[Any]:
        """Each message's content compiled once (compiling is most of the cost of a render)."""
        return [compile_text(m.get("content", ""), self.source) if isinstance(m.get("content", ""), str)
                else None for m in self.messages]

    def render(self, variables: dict[str, Any], prefix: str = "", suffix: str = "") -> list[dict[str, Any]]:
        """Render every message; raises ``TemplateError`` naming the missing variable."""
        out = []
        for msg, template in zip(self.messages, self._templates, strict=True):
            content = msg.get("content", "")
            if template is not None:
                content = render_text(template, variables, self.source)
            out.append({**msg, "content": content})
        if prefix or suffix:  # as written (promptfoo's options.prefix/suffix), {{ var }} rendered
            prefix, suffix = (self._render_extra(x, variables) for x in (prefix, suffix))
            last = _last_user(out)
            out[last] = {**out[last], "content": f"{prefix}{out[last]['content']}{suffix}"}
        return out

    def _render_extra(self, text: str, variables: dict[str, Any]) -> str:
        if "{{" not in text and "{%" not in text:
            return text
        where = f"{self.source} (prefix/suffix)"
        return render_text(compile_text(text, where), variables, where)


def _last_user(messages: list[dict[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return len(messages) - 1


def from_mapping(data: dict[str, Any], source: str, default_id: str, base: Path | None = None,
                 root: Path | None = None) -> Prompt:
    """Build a prompt from a YAML mapping or an inline suite prompt. Its ``response_format:``,
    ``tools:`` and ``tool_choice:`` join its params (so its version): ``file://`` relative to
    ``base`` (a prompt file's folder)."""
    known = {"id", "template", "messages", "model", "params", "description", "response_format", "tools",
             "tool_choice"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CaseError(source, None, f"unknown key(s) {', '.join(unknown)}; "
                        f"a prompt has {', '.join(sorted(known))}")
    template, messages = data.get("template"), data.get("messages")
    if (template is None) == (messages is None):
        raise CaseError(source, None, "a prompt needs exactly one of template: or messages:")
    if template is not None:
        msgs: list[dict[str, Any]] = [{"role": "user", "content": str(template)}]
    else:
        msgs = _check_messages(messages, source)
    params = dict(data.get("params") or {})
    if "response_format" in data:  # structured output, checked here (plan/response_format.py)
        from .response_format import with_response_format

        params = with_response_format(params, data["response_format"], source, base)
    return Prompt(
        id=str(data.get("id", default_id)),
        messages=tuple(msgs),
        source=source,
        model=data.get("model"),
        params={**params, **_tools(data, source, base, root)},
    )


def _tools(data: dict[str, Any], source: str, base: Path | None, root: Path | None) -> dict[str, Any]:
    """The prompt's ``tools:``/``tool_choice:`` as request params (plan/tools.py reads them)."""
    from .tools import prompt_tools
    from .values import ValueProblem

    declared = [k for k in ("tools", "tool_choice") if data.get(k) is not None]
    if not declared:
        return {}
    twice = [k for k in declared if k in (data.get("params") or {})]
    if twice:
        raise CaseError(source, None, f"{twice[0]}: is given both at the top and under params:; keep one")
    if base is None or root is None:
        base = root = Path.cwd()
    try:
        return prompt_tools(data, base, root)
    except ValueProblem as exc:
        raise CaseError(source, None, str(exc)) from None


def _check_messages(messages: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise CaseError(source, None, "messages: must be a non-empty list of {role, content}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise CaseError(source, None, f"messages[{i}]: needs role: and content:")
        if m["role"] not in ("system", "user", "assistant", "tool", "developer"):
            raise CaseError(source, None, f"messages[{i}].role: unknown role {m['role']!r}")
    return [dict(m) for m in messages]


def load_prompt(path: Path, root: Path, default_id: str | None = None) -> Prompt:
    """Load a prompt file: YAML (id, template|messages, model, params, tools, tool_choice) or plain text. A file
    named ``<name>@<branch>.yaml`` is branch ``branch`` of prompt ``<name>`` (its id gets the
    ``@branch`` suffix, also when the file sets ``id:``)."""
    rel = _rel(path, root)
    stem, _, branch = (default_id or path.stem).partition("@")
    if not path.is_file():
        raise CaseError(rel, None, "prompt file not found; check the suite's prompt: path")
    from ..util.paths import inside, project_root

    if not inside(path, project_root(root)):
        raise CaseError(rel, None, f"resolves to {path.resolve()}, outside the project ({project_root(root)}); prompt "
                        "files must live inside the repository (a symlink or a '..' may not lead out)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CaseError(rel, None, "prompt files must be UTF-8") from None
    if path.suffix.lower() in TEXT_SUFFIXES:
        return Prompt(id=stem + (f"@{branch}" if branch else ""), messages=({"role": "user", "content": text},),
                      source=rel)
    import yaml

    from ..util.strict import DuplicateKeyError, load_yaml

    try:
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        raise CaseError(rel, exc.line, str(exc)) from None
    except yaml.YAMLError as exc:
        raise CaseError(rel, None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise CaseError(rel, None, "a prompt file must be a mapping with template: or messages:")
    prompt = from_mapping(data, rel, stem, path.parent, project_root(root))
    return replace(prompt, id=f"{prompt.id}@{branch}") if branch else prompt


def frozen_bytes(path: Path, root: Path) -> bytes:
    """The prompt file as a registry keeps a version of it: its bytes, or, when its ``tools:``
    or ``response_format:`` names a ``file://``, the YAML with what it reads written in (a
    version holds its tools and schema, and its snapshot loads from any folder with the same
    content hash)."""
    raw = path.read_bytes()
    if path.suffix.lower() in TEXT_SUFFIXES or b"file://" not in raw:
        return raw
    from ..util.strict import load_yaml

    try:
        data = load_yaml(raw.decode("utf-8-sig"))
    except Exception:  # not a prompt that loads: kept as it is (loading it names the problem)
        return raw
    if not isinstance(data, dict):
        return raw
    named = [k for k in ("tools", "response_format") if "file://" in json.dumps(data.get(k), default=str)]
    if not named:
        return raw
    import yaml

    params = load_prompt(path, root).params
    frozen = {**data, **{k: params[k] for k in named}}
    return yaml.safe_dump(frozen, allow_unicode=True, sort_keys=False).encode("utf-8")


def with_branches(path: Path) -> list[Path]:
    """A prompt file and its branches beside it (``NAME@BRANCH.ext``), the file first."""
    if "@" in path.stem:
        return [path]
    return [path, *sorted(path.parent.glob(f"{path.stem}@*{path.suffix}"))]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
