"""A planned case: everything an item needs, decided at collection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model.specs import JUDGED, MEASURED
from ..model.types import AssertionSpec, Case, Request

if TYPE_CHECKING:
    from .chain import ChainPlan


@dataclass(frozen=True, slots=True)
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
    # a conversation or an agent loop: its later requests are built from the answers (plan/chain.py);
    # ``requests`` then holds each repeat's first, and ``asserts`` judge the whole conversation
    chain: ChainPlan | None = None

    @property
    def where(self) -> str:
        """``prompt_tests/a.csv:3 [terse-llama]``: file, row and variant, for every message; a
        probe case (plan/probes.py) is named by its probe: ``promstack.yaml probe override-… [...]``."""
        probe = self.case.metadata.get("probe")
        where = f"{self.case.file} probe {probe}" if probe and probe == self.case.case_id else self.case.where
        return f"{where} [{self.variant or self.model}]"

    @property
    def question(self) -> str:
        """What a judge sees as the question: the last user message sent, else the input."""
        if self.requests:
            for msg in reversed(self.requests[0].messages):
                if msg.get("role") == "user":
                    return str(msg.get("content", ""))
        return str(self.case.vars.get("input", self.case.vars))

    @property
    def judged(self) -> bool:
        """Whether a judge scores one of its assertions (the judge phase asks for its verdicts)."""
        return any(a.type.removeprefix("not-") in JUDGED or a.type.removeprefix("not-") in MEASURED
                   for a in self.all_asserts)

    @property
    def all_asserts(self) -> tuple[AssertionSpec, ...]:
        """Its assertions and, in a conversation, every turn's."""
        if self.chain is None:
            return self.asserts
        return self.asserts + tuple(a for turn in self.chain.turn_asserts for a in turn)

    @property
    def meta(self) -> dict[str, Any]:
        """What the call log and the cassette note about a call made for this case."""
        return {"suite": self.suite, "case_id": self.case_id, "prompt_id": self.prompt_id,
                "prompt_version": self.prompt_version}
