"""Jinja2 templates from files, compiled and rendered in the bounded sandbox (strict
undefined): prompts' messages, assertion values and tools all render through here."""

from __future__ import annotations

from typing import Any

from ..model.errors import TemplateError


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
        error = TemplateError(f"template variable {name!r} is undefined in {source}; give it a value: the column or "
                              f"key {name!r} in the test file, the suite's vars:, or vars= where code renders it")
        error.variable = name
        raise error from None
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
