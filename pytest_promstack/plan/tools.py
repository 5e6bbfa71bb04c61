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
