"""Our own hookspecs. Implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_promstack_register_assertions(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register assertion types by name. The first registration of a name wins, and the
    built-ins register last (``trylast``), so a conftest can add or override a type::

        def pytest_promstack_register_assertions(register):
            def polite(output, value, ctx):
                return "죄송" in output or "감사" in output, "no polite phrase"
            register("polite", polite)

    A case then uses it as ``__expected: polite`` (or ``not-polite``). The function gets
    the output text, the assertion's value and a context (``ctx.vars``, ``ctx.response``,
    ``ctx.threshold``) and returns ``bool``, ``(bool, reason)`` or ``{"pass", "score", "reason"}``.
    """


@hookspec
def pytest_promstack_register_judges(register: Callable[[str, Any], None], settings: Any) -> None:
    """Register LLM judges by name (``pytest_promstack.config.judges.Judge``). The judges of
    ``promstack.yaml`` register last (``trylast``) and the first registration of a name
    wins, so a conftest can add a judge or replace a configured one::

        from pytest_promstack.score.judges import Judge

        def pytest_promstack_register_judges(register, settings):
            register("tone", Judge("tone", model="openai/gpt-4o-mini",
                                   criteria=("톤이 일관적인가?",), scale=(1, 5), pass_score=4))

    Cases then use ``judge:tone``.
    """
