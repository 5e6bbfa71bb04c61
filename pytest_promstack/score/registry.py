"""The one place that calls the register hooks: name -> assertion, with "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AssertionFn = Callable[..., Any]


@dataclass
class Registry:
    """Assertion types by name. The first registration of a name wins, so a user's
    conftest (called before the built-ins, which are ``trylast``) can override one."""

    assertions: dict[str, AssertionFn] = field(default_factory=dict)
    judges: dict[str, Any] = field(default_factory=dict)

    def register_judge(self, name: str, judge: Any) -> None:
        self.judges.setdefault(name, judge)

    def register_assertion(self, name: str, fn: AssertionFn) -> None:
        # a ':' may join two parts, as promptfoo's similar:dot and trajectory:step-count do
        parts = name.split(":") if name else [""]
        if len(parts) > 2 or not all(p.replace("-", "").replace("_", "").isalnum() for p in parts) \
                or name.startswith("not-"):
            raise ValueError(f"assertion name {name!r}: use letters, digits and '-' (':' between two parts), "
                             "no 'not-' prefix")
        self.assertions.setdefault(name, fn)

    def known(self) -> list[str]:
        return sorted(self.assertions)

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.known(), n=1, cutoff=0.5)
        return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(self.known())})"


def build_registry(hook: Any, settings: Any = None) -> Registry:
    """Collect assertion types and judges through our register hooks."""
    registry = Registry()
    hook.pytest_promstack_register_assertions(register=registry.register_assertion)
    hook.pytest_promstack_register_judges(register=registry.register_judge, settings=settings)
    return registry


def with_judges(settings: Any, registry: Registry) -> Any:
    """``settings`` with every registered judge (config and conftest) and the default judge:
    ``default_judge`` as configured, else the judge named ``default``, else the only judge."""
    import dataclasses

    judges = registry.judges
    default = settings.default_judge or ("default" if "default" in judges else
                                         next(iter(judges)) if len(judges) == 1 else None)
    return dataclasses.replace(settings, judges=judges, default_judge=default)


def builtin_registry() -> Registry:
    """The built-ins alone, for code that runs without a pytest session."""
    from . import assertions

    registry = Registry()
    assertions.register_builtins(registry.register_assertion)
    return registry
