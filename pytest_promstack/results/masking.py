"""What a run writes about its cases, with their PII and secrets masked (``masking:``, see
safety/mask.py). A case is masked by a masker of its own, always primed with its record in
the record's order, so a value has one placeholder in everything written about its case: the
results JSON, the HTML report, its failure text on the terminal and in JUnit."""

from __future__ import annotations

from typing import Any

# a case's names and kinds: written as they are (a case name is the test file author's, not data)
IDENTITY = frozenset({"suite", "model", "case_id", "litellm_model", "prompt_id", "prompt_version", "file",
                      "finish_reason", "phase", "outcome", "type", "name"})


def _masker(record: dict[str, Any] | None, masking: Any) -> tuple[Any, Any]:
    from ..safety.mask import Masker

    m = Masker.of(masking)
    return m, m.mask_json(record, keep=IDENTITY) if record is not None else None


def masked_record(record: dict[str, Any], masking: Any) -> dict[str, Any]:
    return _masker(record, masking)[1]


def masked(doc: dict[str, Any], masking: Any) -> dict[str, Any]:
    """The results document with each case masked (its vars, messages, output, reasons, turns,
    tool steps and arena games), and select-best's groups."""
    return {**doc, "cases": [masked_record(c, masking) for c in doc["cases"]],
            "selection": [masked_record(s, masking) for s in doc.get("selection") or []]}


def masked_text(text: str, record: dict[str, Any] | None, masking: Any) -> str:
    """A case's failure text, masked as its record is (the same placeholders)."""
    return _masker(record, masking)[0].mask(text)
