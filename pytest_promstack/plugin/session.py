"""The per-run state of a pytest run: asks the planner (plan/planner.py) for the items,
pre-runs every model call concurrently, has the items scored, gathers their records and
writes the outputs."""

from __future__ import annotations

import gc
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config.modes import CacheMode
from ..config.settings import Settings
from ..model.errors import CaseError, JudgeError
from ..model.specs import JUDGED, spec_id
from ..model.types import Request, Response
from ..plan.planned import Planned
from ..plan.planner import Planner
from ..plan.prompts import Prompt, load_prompt
from ..results import records
from ..score.case import Outcome, score_case
from ..score.registry import Registry
from ..util.text import safe
from .items import CaseErrored, CaseFailed, CaseItem
from .marks import Marks
from .reports import reports_of_salvaged

if TYPE_CHECKING:
    from ..execute.engine import Engine


class PromstackSession:
    def __init__(self, config: pytest.Config, settings: Settings, registry: Registry) -> None:
        self.config = config
        self.settings = settings
        self.registry = registry
        self.planner = Planner(settings, registry.assertions.__contains__, registry.suggest,
                               marks=Marks(config), swap=self._swap_version)
        self.engine: Engine | None = None
        self.records: dict[str, dict[str, Any]] = {}
        self.cassette_entries: dict[str, list[dict[str, Any]]] = {}
        self.warnings: list[str] = []
        self.written: list[str] = []
        self.gate_verdicts: list[Any] = []
        self.gate_warnings: list[str] = []
        self.comparison: dict[str, Any] | None = None  # against --promstack-baseline
        self._prompt_registry: Any = None
        self.prompt_numbers: dict[tuple[str, str], tuple[int | None, list[str]]] = {}  # (id, hash) -> number, labels
        self.notes: list[str] = []
        self.reported: set[str] = set()  # node ids pytest (or xdist) sent a report for
        self.interrupted = False
        self.planned = 0  # the cases this run set out to run (set at the end; the xdist controller collects none)
        self.worker_pids: list[int] = []  # xdist workers, to pass a SIGTERM on to
        self.restore_sigterm: Any = None
        self.mine: list[CaseItem] = []
        self._counts = (0, 0, 0)
        from datetime import UTC, datetime

        self.started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.verdicts: dict[str, dict[tuple[str, int], Any]] = {}  # nodeid -> (spec id, reply) -> verdict
        self.judge_jobs: dict[str, list[Any]] = {}  # nodeid -> its judge jobs
        self.arena_games: dict[str, list[dict[str, Any]]] = {}  # nodeid -> its pairwise games
        self.cache: Any = None
        self.log: Any = None
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self.run_id = workerinput.get("testrunuid", "")[:12] if workerinput else uuid.uuid4().hex[:12]
        # `python:module:function` assertions and targets import from the project root.
        self._root_on_path = str(settings.root) not in sys.path
        if self._root_on_path:
            sys.path.insert(0, str(settings.root))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # -- collection -------------------------------------------------------------------------

    def wants(self, path: Path) -> bool:
        return self.planner.wants(path)

    def plan_file(self, path: Path) -> list[Planned]:
        return self.planner.plan_file(path)

    def _swap_version(self, prompt: Prompt, path: Path) -> Prompt | str:
        """--promstack-prompt-version: a prompt file's recorded version runs instead of it."""
        wanted = dict(self.settings.run.prompt_versions).get(prompt.id)
        if wanted is None:
            return prompt
        from ..versions import RegistryError

        try:
            reg = self.prompt_registry()
            number = reg.resolve(prompt.id, wanted)["number"]
            return load_prompt(reg.snapshot(prompt.id, number), self.settings.root, default_id=prompt.id)
        except RegistryError as exc:
            return f"{_rel(path, self.settings.root)}: --promstack-prompt-version {prompt.id}={wanted}: {exc}"

    def prompt_registry(self) -> Any:
        if self._prompt_registry is None:
            from ..versions import PromptRegistry, in_ci

            mode = self.settings.run.registry
            readonly = self.is_worker or mode == "readonly" or (mode == "auto" and in_ci())
            self._prompt_registry = PromptRegistry(self.settings.root, readonly=readonly)
        return self._prompt_registry

    def observe_prompts(self) -> None:
        """Record each prompt file's new content as a version (controller only); note the
        version numbers and labels the reports show."""
        if self.is_worker:
            return
        from ..versions import RegistryError, in_ci

        reg = self.prompt_registry()
        try:
            for suite in self.settings.suites.values():
                for p in self.planner.prompts(suite):
                    if not isinstance(p, Prompt) or p.id not in self.planner.prompt_files:
                        continue
                    overridden = p.id in dict(self.settings.run.prompt_versions)
                    seen = (reg.observe(p.id, p.version, self.planner.prompt_files[p.id]) if not overridden
                            else None)
                    number = seen.number if seen is not None else reg.number_of(p.id, p.version)
                    self.prompt_numbers[(p.id, p.version)] = (number, reg.labels_of(p.id, number))
                    if seen is not None and seen.new:
                        self.notes.append(f"promstack: recorded prompt {p.id} version {seen.number} ({p.version}) "
                                          f"in {reg.rel(reg.dir)}; commit it")
                    elif seen is not None and seen.number is None:
                        why = "CI is set" if in_ci() else "--promstack-registry readonly"
                        self.warn(f"{p.source}: prompt {p.id} content {p.version} is not in the prompt registry "
                                  f"(read-only: {why}); record it with a local run or `promstack prompt list` "
                                  "and commit .promstack/prompts")
        except (RegistryError, OSError) as exc:
            self.warn(f"prompt registry: {exc}")
        for pid, wanted in self.settings.run.prompt_versions:
            if pid not in self.planner.prompt_files:
                known = ", ".join(sorted(self.planner.prompt_files)) or "none"
                self.warn(f"--promstack-prompt-version {pid}={wanted}: no prompt file of the suites has id {pid!r} "
                          f"(prompt ids: {known}); nothing was swapped")

    def prompt_name(self, prompt_id: Any, version: Any) -> str:
        """``support@v3[production]`` when the registry knows the version, else ``support@<hash>``."""
        number, labels = self.prompt_numbers.get((str(prompt_id), str(version)), (None, []))
        if number is None:
            return f"{prompt_id}@{version}"
        return f"{prompt_id}@v{number}" + (f"[{','.join(labels)}]" if labels else "")

    # -- running ----------------------------------------------------------------------------

    def estimate(self, items: list[pytest.Item]) -> list[str]:
        """The cost bound of the calls these items would make; calls nothing."""
        from ..execute.litellm_import import import_litellm
        from ..results import estimate
        from ..score import judges, judging

        litellm = import_litellm()
        cache = self._cache() if self.settings.cache_mode.reads else None
        lines: dict[str, estimate.Line] = {}
        for item in items:
            if not isinstance(item, CaseItem):
                continue
            answer_bound = 0
            for req in item.plan.requests:
                estimate.add(lines, litellm, req, cache is not None and cache.get(req.key) is not None)
                answer_bound = max(answer_bound, int(req.params.get("max_tokens") or 0))
            for spec in item.plan.asserts:
                if spec.type.removeprefix("not-") not in JUDGED:
                    continue
                judge, expectation, _problem = judging.resolve(self.settings, spec)
                if judge is None:
                    continue
                try:
                    msgs = judges.messages(judge, _question(item.plan), "", judges.template_text(judge), expectation)
                except JudgeError:
                    continue  # the case errors when run; nothing to estimate
                job = judging.Job(item.nodeid, "", 0, judge, msgs)
                for i in range(judge.repeat * max(1, len(item.plan.requests))):
                    req = judging.request(self.settings, job, i, msgs, {})
                    estimate.add(lines, litellm, req, False, extra_input_tokens=answer_bound)
        return estimate.lines_for(lines)

    def start_calls(self, items: list[pytest.Item]) -> None:
        """Resolve every request of this process's items: cache hits at once, misses concurrently."""
        from .xdist import my_items

        # Items, plans and the modules imported so far live until the session ends: move them
        # out of the garbage collector's way, so its passes during the run and pytest's five
        # collections at the end do not walk them again (0.5 s on 1,000 cases).
        gc.freeze()
        self.mine = [i for i in my_items(self.config, items) if isinstance(i, CaseItem)]
        requests = [r for i in self.mine for r in i.plan.requests]
        self._engine().submit(requests)

    def _engine(self) -> Engine:
        if self.engine is None:
            from ..execute.engine import open_engine

            self.engine = open_engine(self.settings, self.run_id, self.warn, cache=self._cache())
            self.log = self.engine.log
        return self.engine

    def _cache(self) -> Any:
        from ..execute.cache import build_cache

        self.cache = build_cache(self.settings, self.warn)
        return self.cache

    def wait_for_calls(self, reporter: Any) -> None:
        """Show calls done / total, cache hits and errors until every call has finished;
        then run the judge phase the same way."""
        engine = self.engine
        if engine is None:
            return
        self._wait(reporter, "calls")
        self._arena_phase(reporter)
        jobs = self._judge_jobs()
        if jobs:
            from ..score import judging

            judging.run(engine, jobs, self.settings, lambda: self._wait(reporter, "judge calls"))
            for job in jobs:
                self.verdicts.setdefault(job.owner, {})[(job.spec, job.index)] = judging.aggregate(job)
                self.judge_jobs.setdefault(job.owner, []).append(job)

    def _wait(self, reporter: Any, what: str) -> None:
        from ..report.terminal import Progress

        engine = self._engine()
        start_done, start_hits, start_errors = self._counts
        total = engine.total - start_done
        if total <= 0:
            return
        progress = Progress(reporter, total, what)
        # Every call has a deadline (`timeout`, its retries and waits included), so while calls
        # are pending one must end at least that often; a longer silence means the engine is
        # stuck, and the wait ends instead of hanging the CI job until its own limit.
        slack = max(2.0, self.settings.timeout / 10)
        stall = self.settings.timeout + slack
        last_done, last_change = engine.done, time.monotonic()
        while engine.done < engine.total:
            progress.update(engine.done - start_done, engine.hits - start_hits, engine.errors - start_errors)
            time.sleep(0.05)
            if engine.done != last_done:
                last_done, last_change = engine.done, time.monotonic()
            elif time.monotonic() - last_change > stall:
                engine.expire(f"no call of this run ended for {stall:g} s (timeout {self.settings.timeout:g} s + "
                              f"{slack:g} s), so no answer came; please report it as a bug of pytest-promstack")
        progress.finish(engine.done - start_done, engine.hits - start_hits, engine.errors - start_errors)
        self._counts = (engine.done, engine.hits, engine.errors)

    def _arena_phase(self, reporter: Any) -> None:
        """Judge every pair of contenders of every arena case, in both orders."""
        arena = self.settings.arena
        items = [i for i in self.mine if i.plan.contenders and not i.plan.error and not i.plan.case.error]
        if not arena or not items:
            return
        from ..score import judging

        judge = self.settings.judges.get(arena["judge"])
        if judge is None:
            return
        jobs = judging.pair_jobs(self.settings, judge, items, self._replies, _question)
        judging.run_pairs(self._engine(), jobs, self.settings, lambda: self._wait(reporter, "arena judge calls"))
        for job in jobs:
            self.arena_games.setdefault(job.owner, []).append(judging.pair_result(job))
            self.judge_jobs.setdefault(job.owner, []).append(job)

    def _judge_jobs(self) -> list[Any]:
        """One job per judged assertion x reply of this process's items."""
        from ..score import judges, judging

        jobs = []
        for item in self.mine:
            plan = item.plan
            judged = [a for a in plan.asserts if a.type.removeprefix("not-") in JUDGED]
            if not judged or plan.error or plan.case.error:
                continue
            replies = self._replies(item)
            for spec in judged:
                sid = spec_id(spec)
                judge, expectation, problem = judging.resolve(self.settings, spec)
                if problem is not None or judge is None:
                    for i in range(len(replies)):
                        self.verdicts.setdefault(item.nodeid, {})[(sid, i)] = problem
                    continue
                template = judges.template_text(judge)
                for i, reply in enumerate(replies):
                    if reply.error:
                        continue
                    try:
                        msgs = judges.messages(judge, _question(plan), reply.text or "", template, expectation)
                    except JudgeError as exc:  # the case errors naming the template (fail closed)
                        self.verdicts.setdefault(item.nodeid, {})[(sid, i)] = {"judge": judge.name, "error": str(exc)}
                        continue
                    job = judging.Job(item.nodeid, sid, i, judge, msgs)
                    meta = {"suite": plan.suite, "case_id": plan.case_id, "prompt_id": plan.prompt_id,
                            "prompt_version": plan.prompt_version}
                    job.requests = [judging.request(self.settings, job, j, msgs, meta) for j in range(judge.repeat)]
                    jobs.append(job)
        return jobs

    def _replies(self, item: CaseItem) -> list[Response]:
        plan = item.plan
        if plan.case.provider_output is not None:
            return [Response(text=plan.case.provider_output)]
        return [self._response(r) for r in plan.requests]

    def setup_item(self, item: CaseItem) -> None:
        plan = item.plan
        where = plan.where
        if plan.case.error:
            return  # a malformed row fails in runtest
        if plan.error:
            raise CaseErrored(f"{where}: {plan.error}")
        if plan.case.provider_output is not None:
            item.responses = [Response(text=plan.case.provider_output)]
        else:
            item.responses = [self._response(r) for r in plan.requests]
        item.user_properties.extend(self._properties(item))
        errors = [r for r in item.responses if r.error and not r.miss]
        if errors:
            r = errors[0]
            detail = f"{r.error} (after {r.attempts} attempt{'s' if r.attempts != 1 else ''})"
            raise CaseErrored(f"{where}: model call failed: {detail}")
        for game in self.arena_games.get(item.nodeid, []):
            if "error" in game:
                raise CaseErrored(f"{where}: arena judge gave no usable verdict for {game['a']} vs {game['b']}: "
                                  f"{game['error']}")
        for verdict in self.verdicts.get(item.nodeid, {}).values():
            if isinstance(verdict, dict) and "error" in verdict:  # fail closed: no verdict, no pass
                raise CaseErrored(f"{where}: judge {verdict['judge']} gave no usable verdict: {verdict['error']}")

    def _response(self, request: Request) -> Response:
        engine = self._engine()
        if request.key not in engine.futures:
            engine.submit([request])  # an item this process did not pre-run
        return engine.result(request.key)

    def _properties(self, item: CaseItem) -> list[tuple[str, Any]]:
        r, plan = item.responses[0], item.plan
        return [("model", plan.model), ("prompt_id", plan.prompt_id), ("prompt_version", plan.prompt_version),
                ("latency_ms", _na(r.latency_ms)), ("input_tokens", _na(records.total(item.responses, "input_tokens"))),
                ("output_tokens", _na(records.total(item.responses, "output_tokens"))),
                ("cost_usd", _na(records.total(item.responses, "cost_usd"))), ("cached", str(r.cached).lower()),
                ("finish_reason", _na(r.finish_reason)),
                ("truncated", str(any(x.finish_reason == "length" for x in item.responses)).lower())]

    def run_item(self, item: CaseItem) -> None:
        plan = item.plan
        if plan.case.error:
            raise CaseFailed(plan.case.error)
        if plan.contenders:
            item.outcome = Outcome(True, 1, None, ())  # scored by the arena's games, not assertions
            return
        if not plan.asserts:
            raise CaseFailed(f"{plan.where}: the case has no expectations; add an "
                             "__expected column (e.g. icontains:환불) or a suite assert:")
        misses = [r for r in item.responses if r.miss]
        if misses:
            raise CaseFailed(f"{plan.where}: {misses[0].error}")
        item.outcome = score_case(self.registry, plan.asserts, item.responses,
                                  lambda i: self._verdicts_for(item, i), plan.case.vars, where=plan.where,
                                  threshold=plan.case.threshold, min_pass=self.settings.min_pass,
                                  judge_aggregate=self.settings.judge_aggregate)
        if not item.outcome.passed:
            raise CaseFailed(item.outcome.failure)

    def _verdicts_for(self, item: CaseItem, index: int) -> dict[str, Any]:
        return {sid: v for (sid, i), v in self.verdicts.get(item.nodeid, {}).items() if i == index}

    # -- results ----------------------------------------------------------------------------

    def result_of(self, item: CaseItem, when: str = "call", problem: str | None = None) -> dict[str, Any]:
        """The case's record; ``problem``: why its setup failed (a failed call, judge or template)."""
        plan = item.plan
        out = records.case_record(plan, item.responses, item.outcome, when=when, problem=problem,
                                  verdicts=list(self.verdicts.get(item.nodeid, {}).values()),
                                  judge_jobs=self.judge_jobs.get(item.nodeid, []),
                                  arena_games=self.arena_games.get(item.nodeid, []))
        if self.settings.cache_mode == CacheMode.RECORD and out["called"] and when == "call":
            from ..execute.cassettes import entry

            calls = self._engine().recorded(plan.suite, plan.case_id)  # with its judges' and arena's calls
            out["cassette"] = [entry(plan.case_id, req, r) for req, r in calls]
        return out

    def identity_of(self, item: CaseItem) -> dict[str, Any]:
        return records.identity(item.plan)

    def file_error_result(self, item: pytest.Item) -> dict[str, Any]:
        """An unreadable file counts once, as an error, under the first suite that uses it."""
        return records.file_error(self.planner.files[Path(item.path).resolve()][0].name, str(item.nodeid),
                                  _rel(Path(item.path), self.settings.root))  # relative, as every case's file

    def record(self, report: pytest.TestReport) -> None:
        self.reported.add(report.nodeid)
        data = getattr(report, "promstack", None)
        if data is None:  # e.g. xdist's report for an item whose worker crashed
            if self.records.get(report.nodeid, {}).get("salvaged"):
                return  # an interrupted worker scored it after its calls finished: that stands
            if report.nodeid in self.records:
                rec = self.records[report.nodeid]
                rec["outcome"] = _outcome(report, rec["outcome"])
            return
        data = dict(data)
        for entry in data.pop("cassette", None) or []:
            self.cassette_entries.setdefault(data["suite"], []).append(entry)
        rec = self.records.setdefault(report.nodeid, {"outcome": "passed"})
        rec.update(data)
        rec["outcome"] = _outcome(report, rec["outcome"])

    def check_gates(self) -> bool:
        """Evaluate the gates (controller only); True when every gate passed."""
        from ..results.gates import check

        if self.is_worker:
            return True
        records = list(self.records.values())
        self.gate_verdicts, self.gate_warnings = [], []
        scopes = [("overall", records, self.settings.gates)]
        scopes += [(f"suite {name}", [r for r in records if r.get("suite") == name], suite.gates)
                   for name, suite in self.settings.suites.items() if suite.gates]
        for scope, rows, gates in scopes:
            if gates:
                verdicts, warnings = check(rows, gates, scope)
                self.gate_verdicts += verdicts
                self.gate_warnings += warnings
        return all(v.passed for v in self.gate_verdicts)

    def salvage(self) -> int:
        """After an interrupt: score the cases whose model calls had all finished but which
        pytest never ran, so the reports hold every finished case. Cases waiting for a judge
        are left out (their verdict never came). Returns how many were added. An xdist worker
        hands what it scored to the controller in its ``workeroutput``."""
        engine = self.engine
        if engine is None:
            return 0
        from ..execute.engine import INTERRUPTED

        engine.close()  # stop the calls in flight: what finished by now is what the reports hold
        added = 0
        for item in self.mine:
            plan = item.plan
            if item.nodeid in self.records or plan.case.error or plan.error or plan.contenders:
                continue
            futures = [engine.futures.get(r.key) for r in plan.requests]
            if not futures or any(f is None or not f.done() or f.result().error == INTERRUPTED for f in futures):
                continue
            if any(a.type.removeprefix("not-") in JUDGED for a in plan.asserts):
                continue
            outcome, when, message = "passed", "call", None
            try:
                self.setup_item(item)
                self.run_item(item)
            except CaseFailed as exc:
                outcome, message = "failed", str(exc)
            except CaseErrored as exc:
                outcome, when, message = "error", "setup", str(exc)
            self.records[item.nodeid] = {"outcome": outcome, **self.result_of(item, when, message), "salvaged": True,
                                         "junit": {"message": message, "properties": list(item.user_properties)}}
            added += 1
            if self.is_worker:  # sent with the worker's end (xdist's workerfinished)
                self.config.workeroutput.setdefault("promstack_salvaged", {})[item.nodeid] = self.records[item.nodeid]
        return added

    def salvaged_reports(self) -> list[pytest.TestReport]:
        """pytest's reports (setup, call, teardown) for the cases scored after an interrupt that
        pytest never reported, so JUnit and the terminal count them as the JSON and HTML do."""
        out = []
        for nodeid, rec in list(self.records.items()):
            if rec.get("salvaged") and nodeid not in self.reported:
                out += reports_of_salvaged(nodeid, rec)
        return out

    def compare_baseline(self) -> bool:
        """Compare with --promstack-baseline (controller only); True when something regressed."""
        path = self.settings.run.baseline
        if self.is_worker or not path:
            return False
        from ..model.errors import PromstackError
        from ..results.baseline import compare, load

        try:
            base = load(Path(path))
        except PromstackError as exc:
            self.warn(f"{exc}; this run is not compared")
            return False
        unselected = {str(c.get("case_id")) for c in base["cases"] if c.get("suite") not in self.settings.suites}
        self.comparison = compare(self._cases(), base, self.settings.run.regression_margin, str(path),
                                  self.planner.all_ids() | unselected)
        return bool(self.comparison["regressed"])

    def _cases(self) -> list[dict[str, Any]]:
        return sorted(self.records.values(), key=lambda r: (str(r.get("case_id")), str(r.get("file"))))

    def _numbered(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Cases with their prompt's registry number and labels (the JSON and HTML show them)."""
        out = []
        for c in cases:
            number, labels = self.prompt_numbers.get((str(c.get("prompt_id")), str(c.get("prompt_version"))),
                                                     (None, []))
            out.append({**c, "prompt_number": number, "prompt_labels": labels})
        return out

    def selection(self) -> list[dict[str, Any]]:
        from ..results.gates import cheapest

        return cheapest(list(self.records.values()), self.settings.gates,
                        {name: suite.gates for name, suite in self.settings.suites.items() if suite.gates})

    def document(self) -> dict[str, Any]:
        """The results JSON document of this run (what every report reads)."""
        from dataclasses import asdict

        from ..results import document as results

        s = self.settings
        run = {"id": self.run_id, "started": self.started, "git_commit": results.git_commit(s.root),
               "interrupted": self.interrupted,
               "planned": max(len(self.mine), self.planned, len(self.records)),  # cases this run set out to run
               "settings": {"source": s.source, "suites": list(s.suites), "models": list(s.models),
                            "cache_mode": str(s.cache_mode), "concurrency": s.concurrency, "repeat": s.repeat,
                            "judges": sorted(s.judges)},
               "seed": (s.arena or {}).get("seed")}
        return results.document(run, self._numbered(self._cases()), self.arena_result(),
                                gates=[asdict(v) for v in self.gate_verdicts], warnings=self.gate_warnings,
                                selection=self.selection(), baseline=self.comparison, prompts=self._prompt_texts())

    def _prompt_texts(self) -> list[dict[str, Any]]:
        """Each prompt version used: its messages as written (the reports diff them), its
        registry number and labels, and the ``production`` version's messages when it differs."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        used = {(str(r.get("prompt_id")), str(r.get("prompt_version"))) for r in self.records.values()}
        for suite in self.settings.suites.values():  # loaded here too: under xdist only workers collect
            for p in self.planner.prompts(suite):
                if isinstance(p, Prompt) and (p.id, p.version) in used:
                    number, labels = self.prompt_numbers.get((p.id, p.version), (None, []))
                    seen[(p.id, p.version)] = {"id": p.id, "version": p.version, "source": p.source,
                                               "messages": list(p.messages), "model": p.model, "params": p.params,
                                               "number": number, "labels": labels,
                                               "production": self._production(p, number)}
        return [seen[k] for k in sorted(seen)]

    def _production(self, p: Prompt, number: int | None) -> dict[str, Any] | None:
        from ..versions import RegistryError

        try:
            reg = self.prompt_registry()
            prod = (reg.entry(p.id).get("labels") or {}).get("production") if p.id in reg.data["prompts"] else None
            if prod is None or prod == number:
                return None
            other = load_prompt(reg.snapshot(p.id, prod), self.settings.root, default_id=p.id)
        except (RegistryError, CaseError, OSError):
            return None
        return {"number": prod, "version": other.version, "messages": list(other.messages), "model": other.model,
                "params": other.params}

    def finish(self) -> list[str]:
        """Write what the run produced (controller only); returns lines to announce. Each file
        is written whole (to a temporary file, then renamed), so an interrupted run leaves the
        finished cases' reports and never a truncated file."""
        lines: list[str] = []
        if self.is_worker:
            return lines
        run = self.settings.run
        if run.json or run.report:
            from ..results import document as results

            doc = self.document()
            for target in run.json:
                results.write(Path(target), doc)
                lines.append(f"promstack: wrote {target}")
            if run.report:
                from ..report import html

                size = html.write(Path(run.report), doc)
                lines.append(f"promstack: wrote {run.report} ({html.human_size(size)}, {len(doc['cases'])} cases)")
        if self.settings.cache_mode == CacheMode.RECORD:
            from ..execute.cassettes import write

            for suite, entries in sorted(self.cassette_entries.items()):
                path = write(self.settings.cassette_dir, suite, entries, self.planner.all_ids())
                lines.append(f"promstack: wrote {_rel(path, self.settings.root)} ({len(entries)} recorded)")
        return lines

    def arena_result(self) -> dict[str, Any] | None:
        arena = self.settings.arena
        games = [g for r in self.records.values() for g in r.get("arena") or []]
        if not arena or not games:
            return None
        from ..score.arena import summarise

        games.sort(key=lambda g: (g["case"], g["a"], g["b"]))
        return summarise(games, arena["contenders"], arena["seed"], arena["bootstrap"])

    def header(self, items: list[pytest.Item]) -> str:
        cases = [i for i in items if isinstance(i, CaseItem)]
        files = {i.plan.case.file for i in cases}
        s = self.settings
        cache = "off" if s.cache_mode == CacheMode.OFF else f"{s.cache_mode} ({_rel(s.cache_dir, s.root)})"
        if s.cache_url:
            from ..util.redact import safe_url

            cache += f" + redis {safe_url(s.cache_url)}"
        repeat = f", repeat {s.repeat} (min_pass {s.min_pass})" if s.repeat > 1 else ""
        decoded = "".join(f"; {rel} read as {enc}" for rel, enc in sorted(self.planner.loader.decoded.items()))
        line = (f"promstack: {len(cases)} cases from {len(files)} files, suites {', '.join(s.suites) or '-'}, "
                f"cache {cache}, concurrency {s.concurrency}{repeat}{decoded}")
        return safe(line + ("" if cases else self._outside()), newlines=True)

    def _outside(self) -> str:
        """Why nothing was collected when the suites' files lie outside what pytest collects
        (e.g. --promstack-config names a project in another folder)."""
        here = self.config.invocation_params.dir
        args = [a.split("::")[0] for a in self.config.args] or ["."]
        roots = [Path(here, a).resolve() for a in args]
        files = self.planner.files
        if not files or any(f == r or f.is_relative_to(r) for f in files for r in roots):
            return ""
        root = self.settings.tests_folder()
        return (f"\npromstack: warning: the suites' test files are under {root}, outside what pytest collects "
                f"({', '.join(args)}); run pytest there, or name it: pytest --promstack {os.path.relpath(root, here)}")

    def summary(self) -> list[str]:
        from ..report.summary import run_summary

        if self.log is not None and self.log.failed:
            self.warn(f"call log not written: {self.log.failed}")
        for note in self.engine.notes if self.engine is not None else []:  # e.g. a judge's structured output refused
            self.warn(note)
        records = list(self.records.values())
        return run_summary(records, comparison=self.comparison, prompt_name=self.prompt_name,
                           arena=self.arena_result(), gate_lines=[v.line() for v in self.gate_verdicts]
                           + self.gate_warnings, selection=self.selection(), notes=self.notes,
                           cache_mode=self.settings.cache_mode,
                           interrupted=max(len(self.mine), self.planned, len(records)) if self.interrupted else None,
                           warnings=self.warnings)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
        elif self.cache is not None:  # --promstack-estimate reads the cache with no engine
            self.cache.close()
        if self._root_on_path and str(self.settings.root) in sys.path:
            sys.path.remove(str(self.settings.root))


def _question(plan: Planned) -> str:
    """What the judge sees as the question: the last user message sent, else the input."""
    if plan.requests:
        for msg in reversed(plan.requests[0].messages):
            if msg.get("role") == "user":
                return str(msg.get("content", ""))
    return str(plan.case.vars.get("input", plan.case.vars))


def _outcome(report: pytest.TestReport, current: str) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "error" if report.when != "call" else "failed"
    if report.skipped:
        return "skipped"
    return current


def _na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
