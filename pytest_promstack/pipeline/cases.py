"""The stages for planned cases, whatever runs them: their requests go to the engine
(execute), the arena's games and the judged assertions' verdicts are asked for (score), each
case is checked and scored to an ``Outcome`` and turned into its record (results).

Plain data in and out: a case is a ``Planned`` under an owner key (the plugin uses the item's
node id); the pytest glue (plugin/items.py) keeps what comes back on the item and raises
``CaseErrored``/``CaseFailed`` for pytest to report."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config.modes import CacheMode
from ..config.settings import Settings
from ..model.errors import PromstackError
from ..model.types import Request, Response
from ..plan.planned import Planned
from ..results import records
from ..score.case import Outcome, score_case
from ..score.registry import Registry
from .chains import Chains, chain_record

if TYPE_CHECKING:
    from ..execute.engine import Engine


class CaseFailed(PromstackError):
    """The response did not meet the case's expectations."""


class CaseErrored(PromstackError):
    """The case could not be run (template, provider, bad prompt, a judge with no verdict)."""


class Batch:
    """Planned cases on their way through the stages; holds the engine, the judges' verdicts
    and the arena's games of this process."""

    def __init__(self, settings: Settings, registry: Registry, run_id: str, warn: Callable[[str], None]) -> None:
        self.settings = settings
        self.registry = registry
        self.run_id = run_id
        self.warn = warn
        self.plans: dict[str, Planned] = {}
        self.engine: Engine | None = None
        self.verdicts: dict[str, dict[tuple[str, int], Any]] = {}  # owner -> (spec id, reply) -> verdict
        self.judge_jobs: dict[str, list[Any]] = {}  # owner -> its judge and arena jobs
        self.arena_games: dict[str, list[dict[str, Any]]] = {}  # owner -> its pairwise games
        self._counts = (0, 0, 0)  # calls done, hits, errors when the last wait ended
        self._last_end = (0, 0.0)  # calls done, and when that count last changed (the stall guard)
        # when the items are scored as their answers arrive (``judge`` did not wait): since when
        self.streaming: float | None = None
        self.chains = Chains(settings)  # conversations and agent loops: their steps
        # told (calls done, calls submitted, cache hits, errors) while the run waits for calls
        self.listeners: list[Callable[[int, int, int, int], None]] = []

    # -- execute ----------------------------------------------------------------------------

    def open(self) -> Engine:
        if self.engine is None:
            from ..execute.cache import build_cache
            from ..execute.engine import open_engine

            self.engine = open_engine(self.settings, self.run_id, self.warn,
                                      cache=build_cache(self.settings, self.warn))
        return self.engine

    def submit(self, plans: Mapping[str, Planned]) -> None:
        """Resolve every request of these cases: cache hits at once, misses concurrently."""
        self.plans.update(plans)
        self.open().submit([r for plan in plans.values() for r in plan.requests])

    def wait(self, reporter: Any, what: str = "calls") -> None:
        """Show calls done / total, cache hits and errors until every submitted call finished."""
        from ..report.terminal import Progress

        engine = self.open()
        start_done, start_hits, start_errors = self._counts
        total = engine.total - start_done
        if total <= 0:
            return
        progress = Progress(reporter, total, what)
        self._last_end = (engine.done, time.monotonic())
        while engine.done < engine.total:
            progress.update(engine.done - start_done, engine.hits - start_hits, engine.errors - start_errors)
            self._tell(engine)
            engine.settled.wait(0.05)  # set when the last call submitted so far ends
            self._guard(engine)
        progress.finish(engine.done - start_done, engine.hits - start_hits, engine.errors - start_errors)
        self._tell(engine)
        self._counts = (engine.done, engine.hits, engine.errors)

    def _guard(self, engine: Engine) -> None:
        """Every call has a deadline (`timeout`, its retries and waits included), so while calls
        are pending one must end at least that often; a longer silence means the engine is
        stuck, and the waiting ends instead of hanging the CI job until its own limit."""
        slack = max(2.0, self.settings.timeout / 10)
        stall = self.settings.timeout + slack
        done, since = self._last_end
        if engine.done != done:
            self._last_end = (engine.done, time.monotonic())
        elif time.monotonic() - since > stall:
            engine.expire(f"no call of this run ended for {stall:g} s (timeout {self.settings.timeout:g} s + "
                          f"{slack:g} s), so no answer came; please report it as a bug of pytest-promstack")

    def streamed(self, reporter: Any) -> None:
        """The line ``wait`` ends with (calls done / total, cache hits, errors, seconds) for
        calls the items waited for one by one (``judge``): written once, after the items."""
        if self.streaming is None or self.engine is None:
            return
        from ..report.terminal import Progress

        engine, (done, hits, errors) = self.engine, self._counts
        if engine.total > done:
            progress = Progress(reporter, engine.total - done, "calls")
            progress.start = self.streaming
            progress.done_line(engine.done - done, engine.hits - hits, engine.errors - errors)
        self._tell(engine)
        self._counts = (engine.done, engine.hits, engine.errors)
        self.streaming = None

    def _tell(self, engine: Engine) -> None:
        for listener in self.listeners:
            listener(engine.done, engine.total, engine.hits, engine.errors)

    def answers(self, plan: Planned) -> list[Response]:
        """The case's answers, one per request (a row's ``__output`` stands in for a call); a
        conversation's or an agent's, every model call's of every run (driven to its end first)."""
        if plan.case.provider_output is not None:
            return [Response(text=plan.case.provider_output)]
        if plan.chain is not None:
            if not self.chains.done(plan):  # a case this process did not pre-run
                self.chains.run(self.open(), [plan], lambda: self.wait(None))
            return self.chains.answers(plan)
        return [self._result(r) for r in plan.requests]

    def run_chains(self, reporter: Any) -> None:
        """Every submitted conversation and agent loop to its end, round by round: one line for
        all the rounds (rewritten in place on a terminal while they run)."""
        plans = [p for p in self.plans.values() if p.chain is not None]
        if not plans:
            return
        engine = self.open()
        done, hits, errors = engine.done, engine.hits, engine.errors
        start = time.monotonic()
        live = reporter if reporter is not None and reporter.isatty else None
        rounds = self.chains.run(engine, plans, lambda: self.wait(live, "conversation and agent steps"))
        if rounds and reporter is not None and reporter.verbosity >= 0:
            reporter.write_line(f"promstack: conversation and agent steps: {rounds} rounds, {engine.done - done} "
                                f"calls done, {engine.hits - hits} from cache, {engine.errors - errors} errors, "
                                f"{time.monotonic() - start:.1f} s")

    def _result(self, request: Request) -> Response:
        engine = self.open()
        if request.key not in engine.futures:
            engine.submit([request])  # a case this process did not pre-run
        future = engine.futures[request.key]
        if not future.done() and self.streaming is None:  # not since ``judge``: the waiting starts now
            self._last_end = (engine.done, time.monotonic())
        while not future.done():  # the items are scored as the answers arrive (``judge``)
            with contextlib.suppress(TimeoutError):
                future.result(timeout=0.25)
            self._tell(engine)
            self._guard(engine)
        if self.streaming is not None:  # the calls counted before the case that waited for one
            self._tell(engine)
        return engine.result(request)

    # -- score: the arena and the judges ------------------------------------------------------

    def judge(self, reporter: Any) -> None:
        """After the calls: every arena case's games, then every judged assertion's verdicts,
        each phase concurrently through the same engine. When calls are still on their way and
        no case waits for another's answers (no judge, arena, select-best, conversation or
        agent), nothing is waited for here: each item is scored as soon as its own answers are
        in, while the later calls are still on their way (``streamed`` tells how the calls
        went, after the items)."""
        if self.engine is None:
            return
        if self.engine.done < self.engine.total and not any(
                p.judged or p.contenders or p.chain is not None for p in self.plans.values()):
            self.streaming = time.monotonic()
            self._last_end = (self.engine.done, self.streaming)
            return
        self.wait(reporter, "calls")
        self.run_chains(reporter)
        self._arena(reporter)
        jobs = self._judge_jobs()
        if jobs:
            from ..score import judging

            judging.run(self.open(), jobs, self.settings, lambda: self.wait(reporter, "judge calls"))
            for job in jobs:
                self.verdicts.setdefault(job.owner, {})[(job.spec, job.index)] = judging.aggregate(job)
                self.judge_jobs.setdefault(job.owner, []).append(job)
        self._select_best(reporter)

    def _select_best(self, reporter: Any) -> None:
        """select-best: one verdict per test row over its variants (xdist keeps a row's items on
        one worker, plugin/xdist.py), replacing the lone-variant line ``jobs_for`` left."""
        from ..model.specs import SELECT_BEST

        plans = {o: p for o, p in self.plans.items() if not p.error and not p.case.error and p.chain is None
                 and any(a.type == SELECT_BEST for a in p.asserts)}
        if not plans:
            return
        from ..score import judging

        jobs, decided = judging.select_jobs(self.settings, plans, self.answers)
        judging.run_select(self.open(), jobs, self.settings, lambda: self.wait(reporter, "select-best judge calls"))
        for owner, found in decided.items():
            self.verdicts.setdefault(owner, {}).update(found)
        for job in jobs:
            for owner, verdict in judging.select_verdicts(job).items():
                self.verdicts.setdefault(owner, {})[(job.spec, job.index)] = verdict
            self.judge_jobs.setdefault(job.owners[0], []).append(job)  # its cost and call count once

    def _arena(self, reporter: Any) -> None:
        """Judge every pair of contenders of every arena case, in both orders."""
        arena = self.settings.arena
        cases = {o: p for o, p in self.plans.items() if p.contenders and not p.error and not p.case.error}
        judge = self.settings.judges.get(arena["judge"]) if arena else None
        if not cases or judge is None:
            return
        from ..score import judging

        jobs = judging.pair_jobs(self.settings, judge, cases, self.answers)
        judging.run_pairs(self.open(), jobs, self.settings, lambda: self.wait(reporter, "arena judge calls"))
        for job in jobs:
            self.arena_games.setdefault(job.owner, []).append(judging.pair_result(job))
            self.judge_jobs.setdefault(job.owner, []).append(job)

    def _judge_jobs(self) -> list[Any]:
        """One job per judged assertion x reply of the submitted cases."""
        judged = {owner: plan for owner, plan in self.plans.items()
                  if plan.judged and not plan.error and not plan.case.error}
        if not judged:
            return []
        from ..score import judging

        jobs = []
        for owner, plan in judged.items():
            if plan.chain is not None:
                self.answers(plan)
                found, decided = self.chains.judge_jobs(plan, owner)
                jobs += found
                self.verdicts.setdefault(owner, {}).update(decided)
                continue
            found, decided = judging.jobs_for(self.settings, owner, plan.asserts, self.answers(plan), plan.question,
                                              plan.meta, plan.case.vars)
            jobs += found
            if decided:
                self.verdicts.setdefault(owner, {}).update(decided)
        return jobs

    # -- score: each case -----------------------------------------------------------------------

    def setup(self, owner: str, plan: Planned) -> tuple[list[Response], str | None]:
        """The case's answers, and why it cannot be scored (None when it can): a planning
        problem, a failed call, an arena judge or a judge with no usable verdict (fail closed).
        A malformed row gets neither: it fails when scored."""
        where = plan.where
        if plan.case.error:
            return [], None
        if plan.error:
            return [], f"{where}: {plan.error}"
        responses = self.answers(plan)
        stopped = self.chains.problem(plan) if plan.chain is not None else None
        if stopped is not None:
            return responses, stopped
        errors = [r for r in responses if r.error and not r.miss]
        if errors:
            r = errors[0]
            return responses, f"{where}: model call failed: {r.error} (after {r.attempts} attempt" \
                              f"{'s' if r.attempts != 1 else ''})"
        for game in self.arena_games.get(owner, []):
            if "error" in game:
                return responses, (f"{where}: arena judge gave no usable verdict for {game['a']} vs {game['b']}: "
                                   f"{game['error']}")
        for verdict in self.verdicts.get(owner, {}).values():
            if isinstance(verdict, dict) and "error" in verdict:
                who = verdict["judge"] if verdict.get("measured") else f"judge {verdict['judge']}"
                return responses, f"{where}: {who} gave no usable verdict: {verdict['error']}"
        return responses, None

    def score(self, owner: str, plan: Planned, responses: Sequence[Response]) -> Outcome:
        """The case's outcome; raises ``CaseFailed`` when it cannot be scored (a malformed row,
        no expectations, an answer missing from the cassette)."""
        if plan.case.error:
            raise CaseFailed(plan.case.error)
        if plan.contenders:
            return Outcome(True, 1, None, ())  # scored by the arena's games, not assertions
        if plan.chain is not None:
            missed = next((r for r in responses if r.miss), None)
            if missed is not None:  # a turn or step missing from the cassette: the chain stopped there
                raise CaseFailed(f"{plan.where}: {missed.error}")
            verdicts_of = self.verdicts.get(owner, {})
            return self.chains.score(self.registry, plan,
                                     lambda i: {sid: v for (sid, n), v in verdicts_of.items() if n == i},
                                     self.settings.min_pass, self.settings.judge_aggregate)
        if not plan.asserts:
            raise CaseFailed(f"{plan.where}: the case has no expectations; add an "
                             "__expected column (e.g. icontains:환불) or a suite assert:")
        misses = [r for r in responses if r.miss]
        if misses:
            raise CaseFailed(f"{plan.where}: {misses[0].error}")
        verdicts = self.verdicts.get(owner, {})
        return score_case(self.registry, plan.asserts, responses,
                          lambda i: {sid: v for (sid, n), v in verdicts.items() if n == i}, plan.case.vars,
                          where=plan.where, threshold=plan.case.threshold, min_pass=self.settings.min_pass,
                          judge_aggregate=self.settings.judge_aggregate, scoring=plan.case.scoring,
                          params=plan.requests[0].params if plan.requests else None,
                          messages=plan.requests[0].messages if plan.requests else ())

    # -- results --------------------------------------------------------------------------------

    def record(self, owner: str, plan: Planned, responses: Sequence[Response], outcome: Outcome | None,
               when: str = "call", problem: str | None = None) -> dict[str, Any]:
        """The case's record; ``problem``: why its setup failed. In record mode it carries the
        case's cassette entries (its judges' and arena's calls too)."""
        out = records.case_record(plan, responses, outcome, when=when, problem=problem,
                                  verdicts=list(self.verdicts.get(owner, {}).values()),
                                  judge_jobs=self.judge_jobs.get(owner, []),
                                  arena_games=self.arena_games.get(owner, []))
        if plan.chain is not None and responses:
            out.update(chain_record(self.chains, plan))
            out["turns"] = list(outcome.turns) if outcome is not None else []
            simulated = out.pop("simulated_user")  # evaluation's cost, as the judges' is: not the model's
            out["eval_cost_usd"] = (out["eval_cost_usd"] or 0.0) + (simulated["cost_usd"] or 0.0)
            out["judge_calls"] += simulated["calls"]
        if self.settings.cache_mode == CacheMode.RECORD and out["called"] and when == "call":
            from ..execute.cassettes import entry

            calls = self.open().recorded(plan.suite, plan.case_id)
            masking = self.settings.masking if self.settings.masking.on("cassettes") else None
            out["cassette"] = [entry(plan.case_id, req, r, masking) for req, r in calls]
        return out

    def forget(self, owner: str) -> None:
        """Let go of what is kept for a case that was recorded and will not run again: its plan,
        its judges' verdicts and jobs, its arena games."""
        for kept in (self.plans, self.verdicts, self.judge_jobs, self.arena_games):
            kept.pop(owner, None)

    def run_one(self, owner: str, plan: Planned) -> dict[str, Any]:
        """Setup, score and record one case whose answers are in (an interrupted run scores
        the finished cases pytest never ran this way): its record with ``outcome`` and the
        JUnit message and properties."""
        outcome = None
        responses, message = self.setup(owner, plan)
        when = "setup" if message is not None else "call"
        if message is None:
            try:
                outcome = self.score(owner, plan, responses)
                message = outcome.failure
            except CaseFailed as exc:
                message = str(exc)
        verdict = "error" if when == "setup" else "passed" if outcome is not None and outcome.passed else "failed"
        props = records.junit_properties(plan, responses) if responses else []
        record = self.record(owner, plan, responses, outcome, when, message)
        if message is not None and self.settings.masking.on("failures"):
            from ..results.masking import masked_text

            message = masked_text(message, record, self.settings.masking)
        return {"outcome": verdict, **record, "junit": {"message": message, "properties": props}}

    def salvage(self, plans: Mapping[str, Planned]) -> dict[str, dict[str, Any]]:
        """After an interrupt: stop the calls in flight, then score those of ``plans`` whose
        calls had all finished (``run_one``), by owner. Cases waiting for a judge or the arena
        are left out: their verdicts never came."""
        engine = self.engine
        if engine is None:
            return {}
        from ..execute.engine import INTERRUPTED

        engine.close()  # what finished by now is what the reports hold
        out = {}
        for owner, plan in plans.items():
            if plan.case.error or plan.error or plan.contenders or plan.judged:
                continue
            if plan.chain is not None:  # a conversation's later turns may not have been asked
                if self.chains.done(plan):
                    out[owner] = self.run_one(owner, plan)
                continue
            futures = [engine.futures.get(r.key) for r in plan.requests]
            if futures and all(f is not None and f.done() and f.result().error != INTERRUPTED for f in futures):
                out[owner] = self.run_one(owner, plan)
        return out

    def close(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
