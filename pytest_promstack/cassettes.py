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
import os
import tempfile
from pathlib import Path
from typing import Any

from .types import Request, Response


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


def read(path: Path) -> list[dict[str, Any]]:
    """A cassette's entries; a damaged line is skipped (the rest still replays)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(e, dict) and isinstance(e.get("key"), str):
            out.append(e)
    return out


def load(directory: Path, suites: list[str]) -> dict[str, Response]:
    responses: dict[str, Response] = {}
    for suite in suites:
        for e in read(path_for(directory, suite)):
            responses[e["key"]] = to_response(e)
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


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; reports are read by CI viewers too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before any thread runs
    os.umask(mask)
    return mask


UMASK = _umask()
