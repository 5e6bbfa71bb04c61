"""A judge as configured: model, criteria, scale, pass rule, template."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Judge:
    """A named judge: model, criteria, scale and the pass rule."""

    name: str
    model: str
    criteria: tuple[str, ...] = ()
    scale: tuple[int, int] = (1, 5)
    pass_score: float = 4
    pass_on: str = "criterion"  # every criterion >= pass_score, or "mean"
    language: str = "ko"
    template: str | None = None  # a Jinja2 template text replacing the built-in one
    repeat: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def with_criteria(self, criteria: tuple[str, ...], name: str | None = None) -> Judge:
        return Judge(name or self.name, self.model, criteria, self.scale, self.pass_score, self.pass_on,
                     self.language, self.template, self.repeat, self.params)


TEMPLATE_SUFFIXES = (".j2", ".jinja", ".txt", ".md")


def load_template(value: str, root: Path) -> str:
    """A judge's ``prompt:``: a template file (relative to the config) or the template text.
    Raises FileNotFoundError for a file name that does not exist."""
    if "{{" in value or "\n" in value:
        return value
    path = Path(value) if Path(value).is_absolute() else root / value
    if path.suffix in TEMPLATE_SUFFIXES or path.exists():
        from ..util.paths import inside, project_root

        if path.exists() and not inside(path, project_root(root)):
            raise PermissionError(13, f"it resolves to {path.resolve()}, outside the project")
        return path.read_text(encoding="utf-8")
    return value
