"""Shards' results documents as the one document of the run they split
(``--promstack-shard I/N`` in each CI job, then ``promstack report A.json B.json ...``).

Every run-wide figure is computed again from the cases, as a single run computes it: the
summary, quality, calibration, probes, the gates (with the gates each shard recorded), the
arena's standings (from every game of every shard, with its contenders, seed and bootstrap),
the cheapest passing model. A case in two files, shards of different configs or of another
split, or a missing shard, is one line naming the files."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError


def merge(docs: list[tuple[Path, dict[str, Any]]], baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """One document from ``(path, document)`` pairs; ``baseline``: the comparison to attach."""
    from ..score.arena import summarise
    from . import document
    from .gates import cheapest, judge

    first = docs[0][1]
    judged = _same_judging(docs)
    cases = _cases(docs)
    gates = judged.get("gates") or {"overall": [], "suites": {}}
    overall = [(str(k), float(v)) for k, v in gates.get("overall") or []]
    suites = {name: {str(k): float(v) for k, v in pairs} for name, pairs in (gates.get("suites") or {}).items()}
    verdicts, warnings = judge(cases, overall, suites)
    arena = None
    games = sorted((g for c in cases for g in c.get("arena") or []), key=lambda g: (g["case"], g["a"], g["b"]))
    if judged.get("arena") and games:
        spec = judged["arena"]
        arena = summarise(games, spec["contenders"], spec["seed"], spec["bootstrap"])
    runs = [doc["run"] for _, doc in docs]
    run = {**first["run"], "id": uuid.uuid4().hex[:12], "started": min(str(r.get("started")) for r in runs),
           "interrupted": any(r.get("interrupted") for r in runs),
           "planned": sum(int(r.get("planned") or 0) for r in runs), "shard": None,
           "merged_from": [{"file": str(path), "run": doc["run"].get("id"), "shard": doc["run"].get("shard")}
                           for path, doc in docs]}
    prompts: dict[tuple[str, str], dict[str, Any]] = {}
    for _, doc in docs:
        for p in doc.get("prompts") or []:
            prompts.setdefault((str(p.get("id")), str(p.get("version"))), p)
    return document.document(run, cases, arena, gates=[asdict(v) for v in verdicts], warnings=warnings,
                             selection=cheapest(cases, overall, suites), baseline=baseline,
                             prompts=list(prompts.values()))


def check_shards(docs: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Refuse shards of different counts and a missing shard (gates judged on a subset say the
    wrong thing); what a reader should know besides: files from other commits."""
    paths = [path for path, _ in docs]
    twice = next((p for p in paths if paths.count(p) > 1), None)
    if twice is not None:
        raise PromstackError(f"{twice} is given twice; merge each shard's file once")
    marks = [(path, doc["run"].get("shard")) for path, doc in docs]
    counts = sorted({m[1] for _, m in marks if m})
    if len(counts) > 1 or (counts and any(m is None for _, m in marks)):
        shown = ", ".join(f"{path.name}: {'/'.join(map(str, m)) if m else 'not a shard'}" for path, m in marks)
        raise PromstackError(f"these files are not the shards of one split ({shown}); merge the files of one "
                             "--promstack-shard I/N run, every I once")
    if counts:
        missing = sorted(set(range(1, counts[0] + 1)) - {m[0] for _, m in marks if m})
        if missing:
            raise PromstackError(f"shard{'s' if len(missing) > 1 else ''} {_ranges(missing)} of {counts[0]} missing: "
                                 "gates judged on a subset say the wrong thing; merge every shard's file (a job with "
                                 "a failing case must still upload its results)")
    commits = {doc["run"].get("git_commit") for _, doc in docs}
    if len(commits) > 1:
        return [f"the files come from different commits ({', '.join(sorted(str(c)[:12] for c in commits))})"]
    return []


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _same_judging(docs: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """The gates and arena every shard recorded: they must agree (shards of one run)."""
    def judging(doc: dict[str, Any]) -> dict[str, Any]:
        settings = doc["run"].get("settings") or {}
        return {k: settings.get(k) for k in ("gates", "arena", "suites")}

    first_path, first = docs[0]
    for path, doc in docs[1:]:
        if judging(doc) != judging(first):
            raise PromstackError(f"{path} and {first_path} are not shards of one run: their suites, gates or arena "
                                 "differ; merge the results of jobs that ran the same config")
    settings = first["run"].get("settings") or {}
    if "gates" not in settings and any(doc.get("gates") for _, doc in docs):
        raise PromstackError(f"{first_path}: written before its gates were recorded in the file; run the shards "
                             "again with this version of pytest-promstack")
    return settings


def _cases(docs: list[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: dict[str, Path] = {}
    cases = []
    for path, doc in docs:
        for case in doc["cases"]:
            key = str(case.get("case_id"))
            if key in seen:
                if seen[key] == path:
                    raise PromstackError(f"{path} is given twice; merge each shard's file once")
                raise PromstackError(f"case {key} is in {seen[key]} and in {path}: the files overlap; merge the "
                                     "shards of one run (--promstack-shard I/N), each once")
            seen[key] = path
            cases.append(case)
    return cases
