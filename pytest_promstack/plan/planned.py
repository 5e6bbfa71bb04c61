"""A planned case: everything an item needs, decided at collection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model.types import AssertionSpec, Case, Request


@dataclass(frozen=True)
class Planned:
    """Everything an item needs, decided at collection."""

    case: Case
    suite: str
    model: str
    prompt_id: str
    prompt_version: str
    name: str
    case_id: str
    asserts: tuple[AssertionSpec, ...]
    requests: tuple[Request, ...] = ()
    error: str | None = None
    contenders: tuple[str, ...] = ()  # arena items: one request per contender, in this order
    markers: tuple[Any, ...] = ()
    keywords: frozenset[str] = field(default_factory=frozenset)
    variant: str = ""  # what the item id's brackets hold: [suite-]prompt-]model, never a content hash

    @property
    def where(self) -> str:
        """``prompt_tests/a.csv:3 [terse-llama]``: file, row and variant, for every message."""
        return f"{self.case.where} [{self.variant or self.model}]"
