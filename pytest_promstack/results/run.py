"""A run's results: the records of its cases as they arrive (from this process, from xdist's
workers, or scored after an interrupt) and what is derived from them: the gates' verdicts, the
comparison with a baseline, the arena's standings, the cassette entries to write and the
results document every report reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config.settings import Settings
from ..model.errors import PromstackError
from . import records


class RunResults:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.records: dict[str, Any] = {}  # node id -> the case's record (a dict, or a records.Record)
        self.cassette_entries: dict[str, list[dict[str, Any]]] = {}  # suite -> recorded calls
        self.gate_verdicts: list[Any] = []
        self.gate_warnings: list[str] = []
        self.comparison: dict[str, Any] | None = None  # against --promstack-baseline

    def add(self, nodeid: str, data: dict[str, Any] | None, outcome: Callable[[str], str], *,
            owned: bool = False) -> None:
        """A report's record (``data``, None when the report carries none) and how the report
        changes the case's outcome (``outcome(current) -> new``). ``owned``: nothing else keeps
        ``data`` (its report lets go of it), so it becomes the case's record as it is, uncopied.
        A case's record is kept compact (``records.Record``) once a later report of the case
        came (its call, else its teardown): a large run keeps every case's to its end."""
        rec = self.records.get(nodeid)
        if data is None:  # e.g. xdist's report for an item whose worker crashed
            if rec is not None and not rec.get("salvaged"):  # a salvaged case's scored outcome stands
                current = rec["outcome"]
                if (changed := outcome(current)) != current:
                    rec["outcome"] = changed
                if type(rec) is dict:
                    self.records[nodeid] = records.compact(rec)
            return
        if not owned:
            data = dict(data)
        for entry in data.pop("cassette", None) or []:
            self.cassette_entries.setdefault(data["suite"], []).append(entry)
        if rec is None:
            self.records[nodeid] = data
            data["outcome"] = outcome(data.get("outcome", "passed"))
            return
        if type(rec) is not dict:
            rec = rec.as_dict()
        rec.update(data)
        rec["outcome"] = outcome(rec["outcome"])
        self.records[nodeid] = records.compact(rec)

    def add_salvaged(self, nodeid: str, record: dict[str, Any], replace: bool = False) -> None:
        """A case scored after an interrupt (here or by a worker); a case already reported
        stays, unless ``replace``: only its setup was (its record was its identity)."""
        if replace or nodeid not in self.records:
            self.records.pop(nodeid, None)
            self.add(nodeid, {**record, "salvaged": True}, lambda _current: record["outcome"])

    def cases(self) -> list[dict[str, Any]]:
        return sorted(self.records.values(), key=lambda r: (str(r.get("case_id")), str(r.get("file"))))

    def check_gates(self) -> bool:
        """Evaluate the gates, overall and per suite; True when every gate passed."""
        from .gates import judge

        self.gate_verdicts, self.gate_warnings = judge(
            list(self.records.values()), self.settings.gates,
            {name: suite.gates for name, suite in self.settings.suites.items() if suite.gates})
        return all(v.passed for v in self.gate_verdicts)

    def compare_baseline(self, path: str, known_ids: set[str]) -> str | None:
        """Compare with the results document at ``path``; ``known_ids``: the case ids this run's
        suites have (a baseline case not among them was removed). Returns why it could not."""
        from .baseline import compare, load

        try:
            base = load(Path(path))
        except PromstackError as exc:
            return f"{exc}; this run is not compared"
        unselected = {str(c.get("case_id")) for c in base["cases"] if c.get("suite") not in self.settings.suites}
        self.comparison = compare(self.cases(), base, self.settings.run.regression_margin, str(path),
                                  known_ids | unselected)
        return None

    def exit_status(self) -> int | None:
        """The run's own exit status when its tests passed: a gate failed (6), or
        ``--promstack-fail-on-regression`` found a regression against the baseline (7)."""
        if not all(v.passed for v in self.gate_verdicts):
            from .gates import GATE_FAILED

            return GATE_FAILED
        if self.comparison and self.comparison["regressed"] and self.settings.run.fail_on_regression:
            from .baseline import REGRESSION

            return REGRESSION
        return None

    def selection(self) -> list[dict[str, Any]]:
        """The cheapest model that passes the gates, per suite (``model: [a, b]`` runs); none on a
        shard (judged when the shards are merged)."""
        from .gates import cheapest

        if self.settings.run.shard is not None:
            return []

        return cheapest(list(self.records.values()), self.settings.gates,
                        {name: suite.gates for name, suite in self.settings.suites.items() if suite.gates})

    def arena(self) -> dict[str, Any] | None:
        """The arena's standings over every game of the run."""
        arena = self.settings.arena
        games = [g for r in self.records.values() for g in r.get("arena") or []]
        if not arena or not games:
            return None
        from ..score.arena import summarise

        games.sort(key=lambda g: (g["case"], g["a"], g["b"]))
        return summarise(games, arena["contenders"], arena["seed"], arena["bootstrap"])

    def judged_by(self) -> dict[str, Any]:
        """What the run-wide verdicts are computed with, kept in the document so that a merge of
        shards (results/merge.py) computes them as this run would: the gates and the arena."""
        s = self.settings
        judged: dict[str, Any] = {"gates": {"overall": [list(g) for g in s.gates],
                                            "suites": {name: [list(g) for g in suite.gates.items()]
                                                       for name, suite in s.suites.items() if suite.gates}}}
        if s.arena:
            judged["arena"] = {k: s.arena[k] for k in ("contenders", "seed", "bootstrap")}
        return judged

    def document(self, run_id: str, started: str, interrupted: bool, planned: int, prompts: list[dict[str, Any]],
                 numbers: dict[tuple[str, str], tuple[int | None, list[str]]]) -> dict[str, Any]:
        """The results JSON document: the run (``planned``: the cases it set out to run), the
        prompt versions used, and each version's registry number and labels by (prompt id,
        content hash)."""
        from . import document

        s = self.settings
        run = {"id": run_id, "started": started, "git_commit": document.git_commit(s.root), "interrupted": interrupted,
               "planned": planned,
               "settings": {"source": s.source, "suites": list(s.suites), "models": list(s.models),
                            "cache_mode": str(s.cache_mode), "concurrency": s.concurrency, "repeat": s.repeat,
                            "judges": sorted(s.judges), **self.judged_by()},
               "seed": (s.arena or {}).get("seed"), "shard": list(s.run.shard) if s.run.shard else None}
        cases = [{**(c.as_dict() if type(c) is records.Record else c), "prompt_number": n, "prompt_labels": labels}
                 for c in self.cases()
                 for n, labels in [numbers.get((str(c.get("prompt_id")), str(c.get("prompt_version"))), (None, []))]]
        return document.document(run, cases, self.arena(), gates=[asdict(v) for v in self.gate_verdicts],
                                 warnings=self.gate_warnings, selection=self.selection(), baseline=self.comparison,
                                 prompts=prompts)
