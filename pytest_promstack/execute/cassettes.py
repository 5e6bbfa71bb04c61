"""Cassettes: recorded responses as text files committed to git, one JSONL file per suite,
one line per request, in a stable order so pull-request diffs are readable.

    {"case": "prompt_tests/a.csv::환불[gemma]", "key": "…", "model": "local/gemma-3-270m",
     "request": {"messages": [...], "params": {...}}, "response": "…", "finish_reason": "stop",
     "usage": {"input_tokens": 11, "output_tokens": 8}, "latency_ms": 812.4}

A model's tool calls are kept beside its text (``"tool_calls": [{"id", "type": "function",
"function": {"name", "arguments"}}]``) and replayed with it; so are the tools a python: target
that is an agent ran itself (``"steps": [{"step", "name", "arguments", "result"}]``) and the
model calls it reported (``"model_calls"``).

Token counts are stored, not a cost: a replayed answer is priced when it is scored, at the
model's current price (see ``pricing``). The token details that change a price sit beside the
counts in ``usage`` when an answer has them (``"usage": {"input_tokens": 1200, "output_tokens":
80, "cache_read": 1024}``; ``Response.usage``). Only a Python target's entry keeps ``cost_usd``,
the cost the application reported about itself.

An entry answers the request whose key it holds only when its ``model`` and ``request`` are
that request (what the key covers: messages and the keyed params); an edited request under an
old key is an error naming ``cassettes/<suite>.jsonl:line``, as an entry of wrong types is.
The file of a suite is its name with every character but letters, digits and ``_ . - @``
written as ``%XX``, so a suite name can never lead out of the cassettes folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..model.types import NOT_IN_KEY, Request, Response
from ..util.files import atomic_write

KEPT = frozenset({"case", "key", "model", "finish_reason", "type", "id"})  # names, never masked


def entry(case_id: str, req: Request, resp: Response, masking: Any = None) -> dict[str, Any]:
    """A cassette line; with ``masking`` (``masking: {cassettes: true}``, the default) its texts
    are masked by one masker, request first, so ``mismatch`` can mask a live request the same way."""
    out = {
        "case": case_id,
        "key": req.key,
        "model": req.litellm_model,
        "request": {"messages": list(req.messages), "params": req.params},
        "response": resp.text,
        "finish_reason": resp.finish_reason,
        "usage": {"input_tokens": resp.input_tokens, "output_tokens": resp.output_tokens, **(resp.usage or {})},
        "latency_ms": resp.latency_ms,
    }
    if req.litellm_model.startswith("python:"):
        out["cost_usd"] = resp.cost_usd
    if resp.logprobs is not None:  # asked for by a perplexity check, and replayed to it
        out["logprobs"] = list(resp.logprobs)
    if req.call != "chat":  # a similar or moderation check's call: its embedding, or its verdict as JSON text
        out["request"]["call"] = req.call
    if resp.vector is not None:
        out["vector"] = list(resp.vector)
    if resp.tool_calls is not None:  # the model's tool calls: its answer as much as its text
        out["tool_calls"] = list(resp.tool_calls)
    if resp.function_call is not None:
        out["function_call"] = resp.function_call
    if resp.trajectory is not None:  # a python: agent's own tool runs: what its checks read
        out["steps"] = list(resp.trajectory)
    if resp.model_calls is not None:
        out["model_calls"] = resp.model_calls
    if masking is not None:
        from ..safety.mask import Masker

        return Masker.of(masking).mask_json(out, keep=KEPT)
    return out


def to_response(e: dict[str, Any]) -> Response:
    usage = e.get("usage") or {}
    python = str(e.get("model") or "").startswith("python:")
    return Response(text=e.get("response"), input_tokens=usage.get("input_tokens"), usage=_details(usage),
                    output_tokens=usage.get("output_tokens"), cost_usd=e.get("cost_usd") if python else None,
                    latency_ms=e.get("latency_ms"), finish_reason=e.get("finish_reason") or "stop",
                    logprobs=tuple(e["logprobs"]) if e.get("logprobs") is not None else None,
                    vector=tuple(e["vector"]) if e.get("vector") is not None else None,
                    tool_calls=tuple(e["tool_calls"]) if e.get("tool_calls") is not None else None,
                    function_call=e.get("function_call"),
                    trajectory=tuple(e["steps"]) if e.get("steps") is not None else None,
                    model_calls=e.get("model_calls"))


def _details(usage: dict[str, Any]) -> dict[str, Any] | None:
    """The price details of an entry's ``usage``: everything beside its two counts."""
    return {k: v for k, v in usage.items() if k not in COUNTED} or None


COUNTED = ("input_tokens", "output_tokens")


class Cassettes(dict[str, Response]):
    """The answers of the suites' cassettes by key, each with the line it came from and the
    request it was recorded for, so ``answer`` can check that the key is that request's."""

    def __init__(self, record: bool = False, masking: Any = None) -> None:
        super().__init__()
        self.record = record  # recording: a mismatched entry is a miss, so the call is made and the line replaced
        self.masking = masking  # the run's masking settings: an entry recorded masked matches a request masked so
        self.origin: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, key: str, response: Response, where: str, recorded: dict[str, Any]) -> None:
        self[key] = response
        self.origin[key] = (where, recorded)

    def answer(self, req: Request) -> Response | None:
        """The recorded answer to ``req``; an error naming the line when the entry under its key
        was recorded for another request (the line was edited, the key left as it was)."""
        hit = self.get(req.key)
        if hit is None or hit.error is not None or req.key not in self.origin:
            return hit
        where, recorded = self.origin[req.key]
        differs = mismatch(recorded, req, self.masking)
        if differs is None:
            return hit
        if self.record:
            return None
        return Response(error=f"{where}: its request does not match its key ({differs}); record the case again with "
                              "--promstack-record (or fix the line)", retry=False)


def mismatch(e: dict[str, Any], req: Request, masking: Any = None) -> str | None:
    """What of entry ``e`` is not ``req`` (model, messages, the params the key covers), or None.
    With ``masking``, an entry recorded masked matches the request masked as ``entry`` masks it."""
    recorded = e.get("request")
    if not isinstance(recorded, dict):
        return "the entry has no request to check it against"
    if e.get("model") != req.litellm_model:
        return f"model {str(e.get('model'))[:80]!r} is not {req.litellm_model!r}"
    params = recorded.get("params") if isinstance(recorded.get("params"), dict) else {}
    then = {"messages": recorded.get("messages"), "params": params}
    live = {"messages": list(req.messages), "params": req.params}
    if masking is not None and _keyed(then) != _keyed(live):
        from ..safety.mask import Masker

        live = Masker.of(masking).mask_json(live, keep=KEPT)
    if _canonical(then["messages"]) != _canonical(live["messages"]):
        return "request.messages differ from the request this case makes"
    if _keyed(then) != _keyed(live):
        return "request.params differ from the request this case makes"
    return None


def _keyed(request: dict[str, Any]) -> str:
    """A request's messages and the params its key covers, canonical."""
    return _canonical([request["messages"], {k: v for k, v in request["params"].items() if k not in NOT_IN_KEY}])


def _canonical(value: Any) -> str:
    """As the cache key serialises it (plan/requests.cache_key)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


UNSAFE_IN_NAME = re.compile(r"[^\w.@-]")


def file_name(suite: str) -> str:
    """A suite's cassette file name: the suite name itself when it is a plain name (the usual
    case, Korean included), else with each other character as ``%XX`` of its UTF-8 bytes
    (``../../x`` -> ``..%2F..%2Fx.jsonl``): one file per name, always inside the folder."""
    def escape(m: re.Match[str]) -> str:
        return "".join(f"%{b:02X}" for b in m.group().encode("utf-8"))

    return UNSAFE_IN_NAME.sub(escape, suite) + ".jsonl"


def path_for(directory: Path, suite: str) -> Path:
    return directory / file_name(suite)


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
                           "cost_usd": e.get("cost_usd"), "finish_reason": e.get("finish_reason"),
                           "logprobs": e.get("logprobs"), "vector": e.get("vector"), "tool_calls": e.get("tool_calls"),
                           "function_call": e.get("function_call"), "trajectory": e.get("steps"),
                           "model_calls": e.get("model_calls"), "usage": _details(usage)})


def load(directory: Path, suites: list[str], record: bool = False, warn: Any = None, masking: Any = None
         ) -> Cassettes:
    """Every entry of the suites' cassettes by key. An entry of wrong types answers its request
    with an error naming ``cassette:line`` (in record mode it is left out, so the call is made
    and the line replaced), and so does an entry whose request is not its key's (checked by
    ``Cassettes.answer`` against the live request; in record mode the call is made and the
    line replaced too); a line that is not an entry at all is skipped with a warning."""
    responses = Cassettes(record, masking)
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
                responses.add(e["key"], to_response(e), f"{where}:{n}", e)
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


