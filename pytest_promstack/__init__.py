"""pytest-promstack: prompt regression tests for LLM applications, as pytest items; and the
run-time SDK (``from pytest_promstack import Client``) and the notebook loaders
(``load_results``, ``load_calls``), loaded only when asked for.

PYTEST_DONT_REWRITE: the ``promstack`` command imports this package before it starts pytest,
which would otherwise warn that it cannot rewrite it (it has no asserts to rewrite)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__", "load_calls", "load_results"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .sdk import Client

        return Client
    if name in ("load_calls", "load_results"):
        from .results import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'pytest_promstack' has no attribute {name!r}")
