"""Jinja2 templates from files, compiled and rendered in the bounded sandbox (strict
undefined): prompts' messages, assertion values and tools all render through here."""

from __future__ import annotations

import re
from typing import Any

from ..model.errors import TemplateError
from ..util.limits import MAX_SIZE

# {{ name }}: what most prompts and templated assertion values hold besides text
_SLOT = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
# names Jinja2 reads as a constant or an operator, not a variable
_NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if",
                        "else"})


class Plain:
    """A template of text and ``{{ name }}`` only, recognised and rendered without Jinja2: its
    render writes each variable that is a text in its place, exactly as the sandbox would (a
    test compares them). Anything else (a value that is not a text, a missing name, a result
    over ``MAX_SIZE``) goes to the sandbox's compiled template, made then, whose output or
    error it is. A suite renders its prompt once per case and a templated assertion value per
    assertion: Jinja2's import, compile and render cost tens of times this."""

    __slots__ = ("_compiled", "parts", "text")

    def __init__(self, text: str, parts: tuple[tuple[bool, str], ...]) -> None:
        self.text, self.parts = text, parts
        self._compiled: Any = None

    def render(self, **variables: Any) -> str:
        out, total = [], 0
        for is_name, part in self.parts:
            if is_name:
                part = variables.get(part)  # type: ignore[assignment]
                if type(part) is not str:
                    return self._jinja().render(**variables)
            total += len(part)
            out.append(part)
        return "".join(out) if total <= MAX_SIZE else self._jinja().render(**variables)

    def _jinja(self) -> Any:
        if self._compiled is None:
            from ..util.sandbox import compile_template

            self._compiled = compile_template(self.text)
        return self._compiled


def plain_parts(text: str) -> tuple[tuple[bool, str], ...] | None:
    """``text``'s parts in order, (False, text) or (True, name), when it is only text and
    ``{{ name }}`` as Jinja2 reads it; else None. Whitespace control (``{{-``), blocks,
    comments, carriage returns (Jinja2 rewrites them) and a ``{`` before a slot (Jinja2 reads
    ``{{{`` otherwise) all leave it to Jinja2."""
    parts: list[tuple[bool, str]] = []
    at = 0
    for m in _SLOT.finditer(text):
        data = text[at:m.start()]
        if m.group(1) in _NOT_NAMES or data.endswith("{"):
            return None
        parts += [(False, data)] if data else []
        parts.append((True, m.group(1)))
        at = m.end()
    parts += [(False, text[at:])] if at < len(text) else []
    if any(not is_name and ("{{" in part or "{%" in part or "{#" in part or "\r" in part) for is_name, part in parts):
        return None
    return tuple(parts)


def compile_text(text: str, source: str) -> Any:
    """Templates come from files a pull request can change: they compile and render in the
    bounded sandbox (util/sandbox.py), so ``{{ cycler.__init__.__globals__.os.popen('id').read() }}``
    is a template error, not a shell command, and a template that would take unbounded time or
    memory is stopped at its limit. Text and ``{{ name }}`` only need neither (``Plain``)."""
    parts = plain_parts(text)
    if parts is not None:
        return Plain(text, parts)
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
    try:
        return template.render(**variables)
    except Exception as exc:
        raise _render_error(exc, source) from None


def _render_error(exc: Exception, source: str) -> TemplateError:
    """A render's failure as one line naming ``source`` (and the missing variable)."""
    import jinja2

    from ..util.sandbox import TemplateLimitError

    if isinstance(exc, jinja2.UndefinedError):
        if "has no element" in str(exc):  # {{ items[5] }} past the end: not a missing column
            return TemplateError(f"{source}: template error: {exc}")
        name = _undefined_name(str(exc))
        error = TemplateError(f"template variable {name!r} is undefined in {source}; give it a value: the column or "
                              f"key {name!r} in the test file, the suite's vars:, or vars= where code renders it")
        error.variable = name
        return error
    if isinstance(exc, TemplateLimitError):
        return TemplateError(f"{source}: {exc}")
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(f"{source}: template error: {exc}")
    # {{ 1/0 }}, {% include 'x' %} (no loader), range(10**9)|list: the case errors, one line
    msg = "templates cannot include, import or extend other files" if "no loader" in str(exc) else str(exc)
    return TemplateError(f"{source}: template error: {type(exc).__name__}: {msg}")


def _undefined_name(message: str) -> str:
    # jinja2: "'name' is undefined" or "'dict object' has no attribute 'x'"
    if "has no attribute" in message:
        return message.rsplit("attribute", 1)[-1].strip(" '\"")
    return message.split("'")[1] if message.count("'") >= 2 else message
