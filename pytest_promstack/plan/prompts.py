"""Prompt files and Jinja2 rendering (strict undefined); versions are content hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..model.errors import CaseError, TemplateError

TEXT_SUFFIXES = (".txt", ".j2", ".jinja", ".md")


@dataclass(frozen=True)
class Prompt:
    """A prompt: one user ``template`` or chat ``messages``, with optional model and params."""

    id: str
    messages: tuple[dict[str, Any], ...]
    source: str  # file path relative to the root, or "suite <name>"
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Short content hash: changes whenever the text, model or params change."""
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


def compile_text(text: str, source: str) -> Any:
    """Templates come from files a pull request can change: they compile and render in the
    bounded sandbox (util/sandbox.py), so ``{{ cycler.__init__.__globals__.os.popen('id').read() }}``
    is a template error, not a shell command, and a template that would take unbounded time or
    memory is stopped at its limit."""
    import jinja2

    from ..util.sandbox import TemplateLimitError, compile_template

    try:
        return compile_template(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{source}: template syntax error on line {exc.lineno}: {exc.message}") from None
    except TemplateLimitError as exc:
        raise TemplateError(f"{source}: {exc}") from None
    except Exception as exc:  # whatever else a template from a file makes compiling raise: its error, one line
        raise TemplateError(f"{source}: template error: {type(exc).__name__}: {exc}") from None


def render_text(template: Any, variables: dict[str, Any], source: str) -> str:
    import jinja2

    from ..util.sandbox import TemplateLimitError

    try:
        return template.render(**variables)
    except jinja2.UndefinedError as exc:
        if "has no element" in str(exc):  # {{ items[5] }} past the end: not a missing column
            raise TemplateError(f"{source}: template error: {exc}") from None
        name = _undefined_name(str(exc))
        raise TemplateError(
            f"template variable {name!r} is undefined in {source}; give it a value: the column or key "
            f"{name!r} in the test file, the suite's vars:, or vars= where code renders it"
        ) from None
    except TemplateLimitError as exc:
        raise TemplateError(f"{source}: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{source}: template error: {exc}") from None
    except Exception as exc:  # {{ 1/0 }}, {% include 'x' %} (no loader), range(10**9)|list: the case errors, one line
        msg = "templates cannot include, import or extend other files" if "no loader" in str(exc) else str(exc)
        raise TemplateError(f"{source}: template error: {type(exc).__name__}: {msg}") from None


def _undefined_name(message: str) -> str:
    # jinja2: "'name' is undefined" or "'dict object' has no attribute 'x'"
    if "has no attribute" in message:
        return message.rsplit("attribute", 1)[-1].strip(" '\"")
    return message.split("'")[1] if message.count("'") >= 2 else message


def from_mapping(data: dict[str, Any], source: str, default_id: str, base: Path | None = None) -> Prompt:
    """Build a prompt from a YAML mapping or an inline suite prompt (``base``: a prompt file's
    folder, where its ``file://`` references are read)."""
    known = {"id", "template", "messages", "model", "params", "description", "response_format"}
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
        params=params,
    )


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
    """Load a prompt file: YAML (id, template|messages, model, params) or plain text. A file
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
    prompt = from_mapping(data, rel, stem, base=path.parent)
    return replace(prompt, id=f"{prompt.id}@{branch}") if branch else prompt


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
