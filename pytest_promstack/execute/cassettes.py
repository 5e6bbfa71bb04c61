"""Cassettes: recorded responses as text files committed to git, one JSONL file per suite,
one line per request, in a stable order so pull-request diffs are readable.

    {"case": "prompt_tests/a.csv::환불[gemma]", "key": "…", "model": "local/gemma-3-270m",
     "request": {"messages": [...], "params": {...}}, "response": "…", "finish_reason": "stop",
     "usage": {"input_tokens": 11, "output_tokens": 8}, "latency_ms": 812.4}

Token counts are stored, not a cost: a replayed answer is priced when it is scored, at the
model's current price (see ``pricing``). Only a Python target's entry keeps ``cost_usd``, the
cost the application reported about itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model.types import Request, Response
from ..util.files import atomic_write


def entry(case_id: str, req: Request, resp: Response) -> dict[str, Any]:
    out = {
        "case": case_id,
        "key": req.key,
        "model": req.litellm_model,
        "request": {"messages": list(req.messages), "params": req.params},
        "response": resp.text,
        "finish_reason": resp.finish_reason,
        "usage": {"input_tokens": resp.input_tokens, "output_tokens": resp.output_tokens},
        "latency_ms": resp.latency_ms,
    }
    if req.litellm_model.startswith("python:"):
        out["cost_usd"] = resp.cost_usd
    return out


def to_response(e: dict[str, Any]) -> Response:
    usage = e.get("usage") or {}
    python = str(e.get("model") or "").startswith("python:")
    return Response(text=e.get("response"), input_tokens=usage.get("input_tokens"),
                    output_tokens=usage.get("output_tokens"), cost_usd=e.get("cost_usd") if python else None,
                    latency_ms=e.get("latency_ms"), finish_reason=e.get("finish_reason") or "stop")


def path_for(directory: Path, suite: str) -> Path:
    return directory / f"{suite}.jsonl"


def _lines(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON or None) for each non-empty line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out: list[tuple[int, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except ValueError:
            out.append((n, None))
    return out


def _is_entry(e: Any) -> bool:
    return isinstance(e, dict) and isinstance(e.get("key"), str)


def read(path: Path) -> list[dict[str, Any]]:
    """A cassette's entries; a line that is not one is skipped (the rest still replays)."""
    return [e for _, e in _lines(path) if _is_entry(e)]


def problem(e: dict[str, Any]) -> str | None:
    """What is wrong with an entry (types, negative numbers), or None. A forged entry that
    passes this is still an answer: cassettes are reviewed like code."""
    from .stored import problem as stored_problem

    usage = e.get("usage") if e.get("usage") is not None else {}
    if not isinstance(usage, dict):
        return f"usage is {type(usage).__name__}, not an object"
    return stored_problem({"text": e.get("response"), "input_tokens": usage.get("input_tokens"),
                           "output_tokens": usage.get("output_tokens"), "latency_ms": e.get("latency_ms"),
                           "cost_usd": e.get("cost_usd"), "finish_reason": e.get("finish_reason")})


def load(directory: Path, suites: list[str], record: bool = False, warn: Any = None) -> dict[str, Response]:
    """Every entry of the suites' cassettes by key. An entry of wrong types answers its request
    with an error naming ``cassette:line`` (in record mode it is left out, so the call is made
    and the line replaced); a line that is not an entry at all is skipped with a warning."""
    responses: dict[str, Response] = {}
    for suite in suites:
        path = path_for(directory, suite)
        where = f"{directory.name}/{path.name}"
        for n, e in _lines(path):
            if not _is_entry(e):
                if warn is not None:
                    warn(f"{where}:{n}: not a cassette entry (JSON with a 'key'); skipped")
                continue
            bad = problem(e)
            if bad is None:
                responses[e["key"]] = to_response(e)
            elif not record:
                responses[e["key"]] = Response(error=f"{where}:{n}: {bad}; record the case again with "
                                                     "--promstack-record (or fix the line)", retry=False)
    return responses


def write(directory: Path, suite: str, new: list[dict[str, Any]], keep_cases: set[str] | None) -> Path:
    """Merge ``new`` entries into the suite's cassette. Recording touches only the cases that
    ran: old entries stay when their case was not run this time, whether it was deselected
    (``-k``, ``--lf``) or its file was not collected (a path on the command line); only the
    entries of a case that no longer exists in a file this run collected go.
    ``keep_cases=None`` keeps every case that did not run (the fixture's cassette: a test that
    did not use the fixture this time is not known to be gone)."""
    path = path_for(directory, suite)
    fresh = {(e["case"], e["key"]) for e in new}
    ran = {e["case"] for e in new}
    collected = {str(c).split("::", 1)[0] for c in keep_cases or ()}

    def stays(case: Any) -> bool:
        return keep_cases is None or case in keep_cases or str(case).split("::", 1)[0] not in collected

    kept = [e for e in read(path) if stays(e.get("case")) and e.get("case") not in ran
            and (e.get("case"), e.get("key")) not in fresh]
    entries = sorted(kept + new, key=lambda e: (str(e.get("case")), str(e.get("key"))))
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    atomic_write(path, text)
    return path


