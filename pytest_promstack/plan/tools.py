"""The tools a request declares (OpenAI's ``tools`` and legacy ``functions`` params), as
promptfoo prepares them before the call: a ``file://`` value is read (a ``.json``/``.yaml``
list, relative to the config's folder and inside the project) and every ``{{ var }}`` in them
renders with the case's variables. The model gets them so, and so do the tool checks
(``is-valid-openai-tools-call`` validates a call's arguments against its tool's schema)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .values import SCHEME, ValueProblem, load

if TYPE_CHECKING:
    from ..config.settings import Settings

TOOL_PARAMS = ("tools", "functions")
SHAPES = {"tools": "a list of {type: function, function: {name, parameters}}",
          "functions": "a list of {name, parameters}"}


def request_tools(settings: Settings, model: str, params: dict[str, Any], variables: dict[str, Any]
                  ) -> dict[str, Any]:
    """The ``tools``/``functions`` a request to ``model`` with ``params`` sends (the config's
    defaults, the model's params, then ``params``), read and rendered; {} when it has none.
    Raises ValueProblem naming the param and the fix."""
    from .requests import model_spec

    merged = {**settings.defaults, **model_spec(settings, model).params, **params}
    return {key: prepared(key, merged[key], variables, settings.root, settings.root)
            for key in TOOL_PARAMS if merged.get(key) is not None}


def prepared(key: str, value: Any, variables: dict[str, Any], base: Path, root: Path) -> Any:
    """One ``tools``/``functions`` value: read when it is ``file://``, then rendered."""
    if isinstance(value, str) and value.startswith(SCHEME):
        try:
            value = load(value, base, root)
        except ValueProblem as exc:
            raise ValueProblem(f"{key}: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueProblem(f"{key}: write {SHAPES[key]} (or file://tools.json holding one), "
                           f"not {type(value).__name__}")
    return _rendered(value, variables, key)


def _rendered(value: Any, variables: dict[str, Any], origin: str) -> Any:
    from .values import _render

    if isinstance(value, dict):
        return {k: _rendered(v, variables, origin) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v, variables, origin) for v in value]
    return _render(value, variables, origin)


CHOICES = ("auto", "none", "required")


def prompt_tools(data: dict[str, Any], base: Path, root: Path) -> dict[str, Any]:
    """A prompt file's ``tools:`` (inline, or ``file://tools.json`` relative to the prompt
    file, inside the project) and ``tool_choice:`` as request params, read but not rendered
    (each case renders its ``{{ var }}``); {} when it declares neither. Raises ValueProblem
    naming the key and the fix."""
    out: dict[str, Any] = {}
    if data.get("tools") is not None:
        tools = data["tools"]
        if isinstance(tools, str) and tools.startswith(SCHEME):
            try:
                tools = load(tools, base, root)
            except ValueProblem as exc:
                raise ValueProblem(f"tools: {exc}") from None
        out["tools"] = _checked_tools(tools)
    if data.get("tool_choice") is not None:
        out["tool_choice"] = _checked_choice(data["tool_choice"], out.get("tools"))
    return out


def _checked_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list) or not tools:
        raise ValueProblem(f"tools: write {SHAPES['tools']} (or file://tools.json holding one), "
                           f"not {type(tools).__name__ if tools != [] else 'an empty list'}")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise ValueProblem(f"tools[{i}]: write {{type: function, function: {{name, description, parameters}}}}")
        if not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise ValueProblem(f"tools[{i}].function: needs name: (the name the model calls it by)")
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise ValueProblem(f"tools[{i}].function.parameters: write a JSON schema mapping "
                               "({type: object, properties: {...}})")
    return tools


def _checked_choice(choice: Any, tools: list[dict[str, Any]] | None) -> Any:
    if choice in CHOICES:
        return choice
    fn = choice.get("function") if isinstance(choice, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise ValueProblem(f"tool_choice: write {', '.join(CHOICES)} or {{type: function, function: {{name: NAME}}}}, "
                           f"not {choice!r}")
    names = [t["function"]["name"] for t in tools or ()]
    if tools is not None and name not in names:
        raise ValueProblem(f"tool_choice: {name!r} is not one of the prompt's tools ({', '.join(names)})")
    return {"type": "function", **choice}
