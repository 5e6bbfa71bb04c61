"""Run prompts outside of test files: the machinery behind the ``promstack`` fixture (and
the SDK). Same prompts, cache, cassettes, call log and assertion language as the files."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config.modes import CacheMode
from ..config.settings import InlinePrompt, Settings
from ..model.errors import CallFailed, CheckFailed, PromstackError
from ..model.types import AssertionSpec, Request, Response, Score
from ..plan.prompts import Prompt, from_mapping, load_prompt
from ..plan.requests import build as build_request
from ..score.case import score_case
from ..score.registry import Registry, builtin_registry

FIXTURE_SUITE = "fixture"  # the suite name of fixture calls: call log, summary, cassettes/fixture.jsonl


@dataclass(frozen=True)
class Reply:
    """A model's answer: ``text`` plus figures. ``error`` is set when the call failed."""

    text: str
    model: str
    prompt_id: str | None
    prompt_version: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    cached: bool
    error: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    messages: tuple[dict[str, Any], ...] = ()  # what was sent
    case_id: str | None = None  # the test that asked (the fixture), for the call log and cassette
    tool_calls: tuple[dict[str, Any], ...] | None = None  # OpenAI's shape: {id, type, function: {name, arguments}}
    function_call: dict[str, Any] | None = None  # OpenAI's legacy single call: {name, arguments}
    params: dict[str, Any] = field(default_factory=dict)  # the request's params as sent: its tools, tool_choice, ...
    # what the guards (guards: in promstack.yaml) decided: {"guard", "action", "detail", "score"?}
    guards: tuple[dict[str, Any], ...] = ()
    blocked: bool = False  # the input guard stopped the call: no model was asked, text is the notice

    @classmethod
    def of(cls, req: Request, resp: Response, prompt: Prompt | None, variables: dict[str, Any]) -> Reply:
        return cls(text=resp.text or "", model=req.model, prompt_id=prompt.id if prompt else None,
                   prompt_version=prompt.version if prompt else None, latency_ms=resp.latency_ms,
                   input_tokens=resp.input_tokens, output_tokens=resp.output_tokens, cost_usd=resp.cost_usd,
                   cached=resp.cached, error=resp.error, vars=variables, finish_reason=resp.finish_reason,
                   messages=req.messages, case_id=req.meta.get("case_id"), tool_calls=resp.tool_calls,
                   function_call=resp.function_call, params=dict(req.params))

    @property
    def output(self) -> str:
        """What the checks read: the text, or the tool calls as JSON (``Response.output``)."""
        return self.response().output

    @property
    def calls(self) -> list[tuple[str, Any]]:
        """The tool calls as ``(name, arguments)``, the arguments parsed from their JSON text
        (left as text when they are not JSON); the legacy function call too."""
        return self.response().calls

    @property
    def question(self) -> str:
        """The last user message sent (what a judge sees as the question)."""
        users = [m for m in self.messages if m.get("role") == "user"]
        return str(users[-1].get("content", "")) if users else str(self.vars.get("input", ""))

    def response(self) -> Response:
        return Response(text=self.text, latency_ms=self.latency_ms, cost_usd=self.cost_usd, cached=self.cached,
                        input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                        finish_reason=self.finish_reason, error=self.error, tool_calls=self.tool_calls,
                        function_call=self.function_call)


class Runner:
    def __init__(self, settings: Settings, registry: Registry | None = None, warn: Any = None) -> None:
        self.settings = settings
        self.registry = registry or builtin_registry()
        self.warnings: list[str] = []
        self.warn = warn or self.warnings.append
        self.replies: list[Reply] = []
        self._engine: Any = None
        self._unimport: Any = None  # takes the project root off sys.path again (set with the engine)
        self._prompts: dict[str, Prompt] = {}
        self._guard: Any = None
        self._opening = threading.Lock()
        self._audit_log: Any = None  # safety/audit.AuditLog once opened; False: audit is off
        self.audit_failed: str | None = None
        self.run_id = uuid.uuid4().hex[:12]
        self.fresh: list[str] = []  # one-time problems (the call log, telemetry) not yet shown to an SDK caller
        self._tracer: Any = None  # execute/telemetry.Tracer once a span is made; False: telemetry failed

    # -- prompts ----------------------------------------------------------------------------

    def prompt(self, ref: str | Prompt) -> Prompt:
        """A prompt by id (from the suites' prompts, else ``prompts/<id>.yaml``) or by path."""
        if isinstance(ref, Prompt):
            return ref
        if ref not in self._prompts:
            self._prompts[ref] = self._find(ref)
        return self._prompts[ref]

    def _find(self, ref: str) -> Prompt:
        root = self.settings.root
        for suite in self.settings.suites.values():
            for p in suite.prompts:
                if isinstance(p, InlinePrompt) and str(p.id) == ref:
                    return from_mapping(p.model_dump(exclude_none=True), f"suites.{suite.name}.prompt", ref, root, root)
                if isinstance(p, str):
                    loaded = load_prompt(root / p, root)
                    if loaded.id == ref or p == ref:
                        return loaded
        for candidate in (root / ref, root / "prompts" / f"{ref}.yaml", root / "prompts" / f"{ref}.yml"):
            if candidate.is_file():
                return load_prompt(candidate, root)
        raise PromstackError(f"no prompt {ref!r}: not a prompt id of the configured suites, not a file, "
                             f"and no prompts/{ref}.yaml under {root}")

    # -- requests ---------------------------------------------------------------------------

    def request(self, prompt: str | Prompt | Sequence[dict[str, Any]], variables: dict[str, Any] | None = None,
                model: str | None = None, params: dict[str, Any] | None = None,
                meta: dict[str, Any] | None = None) -> tuple[Request, Prompt | None]:
        variables = dict(variables or {})
        p: Prompt | None = None
        if isinstance(prompt, str | Prompt):
            p = self.prompt(prompt)
            messages = p.render(variables)
        else:
            messages = [dict(m) for m in prompt]
        name = model or (p.model if p and p.model else None) or next(iter(self.settings.models), None)
        if name is None:
            raise PromstackError("no model: pass model=..., set model: in the prompt, or list models: in "
                                 "promstack.yaml")
        self._allowed([name], [])
        masks = (meta or {}).get("mask_inputs")
        if masks is None and self.settings.guards is not None and self.settings.guards.mask:
            masks = True
        info = {"suite": FIXTURE_SUITE, "case_id": (meta or {}).get("case_id"), "prompt_id": p.id if p else None,
                "prompt_version": p.version if p else None, "mask_inputs": masks}
        if (meta or {}).get("session_id") is not None:  # the application's session: call log and spans
            info["session_id"] = str((meta or {})["session_id"])
        merged = {**(p.params if p else {}), **(params or {})}
        return build_request(self.settings, name, messages, info, params={**merged, **self._tools(name, merged,
                                                                                                 variables)},
                             variables=variables), p

    def _tools(self, model: str, params: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
        """The request's tools read from their file:// and rendered with ``variables``, as a case's are."""
        from ..plan.tools import request_tools
        from ..plan.values import ValueProblem

        try:
            return request_tools(self.settings, model, params, variables)
        except ValueProblem as exc:
            raise PromstackError(str(exc)) from None

    def run_many(self, jobs: Iterable[dict[str, Any]], allow_error: bool = True) -> list[Reply]:
        """Each job is the keyword arguments of ``request`` (``prompt``, ``vars``, ``model``,
        ``params``, ``meta``); all calls run concurrently; replies come back in order. With
        ``allow_error=False`` a failed call raises ``CallFailed`` naming it."""
        planned = []
        for job in jobs:
            job = dict(job)
            variables = job.pop("vars", None) or {}
            guarded = job.pop("guards", None) is not False
            req, p = self.request(job.pop("prompt"), variables, **job)
            planned.append((req, p, variables, self._guards() if guarded else None))
        engine = self.engine()
        checked = [(g.check_input(req.messages) if g is not None else None) for req, _, _, g in planned]
        blocked = [d is not None and d.action == "blocked" for d in checked]
        called = [req for (req, *_), no in zip(planned, blocked, strict=True) if not no]
        start_ns = time.time_ns()
        reused = iter(engine.submit(called))
        answers = [None if no else self._answer(req, next(reused)) for (req, *_), no in zip(planned, blocked,
                                                                                          strict=True)]
        replies = [self._guarded(req, p, v, g, d, a) for (req, p, v, g), d, a in zip(planned, checked, answers,
                                                                                     strict=True)]
        self._trace([(req, a) for (req, *_), a in zip(planned, answers, strict=True) if a is not None], start_ns)
        self._logged()
        engine.forget_failed([req for req, *_ in planned])  # errors are never kept: the next call asks again
        self.replies.extend(replies)
        self._audit(replies)
        failed = [r for r in replies if r.error]
        if failed and not allow_error:
            r = failed[0]
            more = f" (and {len(failed) - 1} more of {len(replies)})" if len(failed) > 1 else ""
            prompt = f", prompt {r.prompt_id}" if r.prompt_id else ""
            raise CallFailed(self._shown(f"model call failed: {r.model}{prompt}: {r.error}{more}; pass "
                                         "allow_error=True to get the reply with its error", r))
        return replies

    def _logged(self) -> None:
        """A call log that could not be written, or rotated, is said once (the calls went on)."""
        log = self.engine().log
        failed = log.unreported() if log is not None else None
        if failed:
            self._once(f"call log not written: {failed}; the calls go on without it")
        unrotated = log.unreported_rotation() if log is not None else None
        if unrotated:
            self._once(f"call log not rotated: {unrotated}")

    def _once(self, message: str) -> None:
        self.warn(message)
        self.fresh.append(message)

    def take_fresh(self) -> list[str]:
        """The one-time problems since the last ask (the SDK turns each into one warning)."""
        fresh, self.fresh = self.fresh, []
        return fresh

    def _answer(self, req: Request, reused: bool) -> Response:
        """The engine's answer to ``req``; cached when an earlier request of this runner asked the
        same (the engine answers it from memory and its call log line says cached)."""
        resp = self.engine().result(req)
        return replace(resp, cached=True) if reused and not resp.cached else resp

    def _trace(self, called: list[tuple[Request, Response]], start_ns: int) -> None:
        """``telemetry: {otel: true}``: each call made is a span of the application's OpenTelemetry,
        from when it was sent until its answer was back (a cache hit: from before the lookup
        until the answer was there), never the one-time setup before a first call. A span that
        cannot be made is said once and telemetry stops for this runner; the reply is never
        touched."""
        if not self.settings.telemetry or self._tracer is False or not called:
            return
        end_ns = time.time_ns()
        try:
            if self._tracer is None:
                from ..execute.telemetry import Tracer

                self._tracer = Tracer(self.settings.masking)
            for req, resp in called:
                sent = None if resp.cached else self.engine().sent.pop(req.key, None)
                self._tracer.span(req, resp, *(sent or (start_ns, end_ns)), req.meta.get("session_id"))
        except ImportError:
            self._tracer = False
            self._once("telemetry.otel is on but OpenTelemetry is not installed: pip install "
                       "'pytest-promstack[otel]' (the calls go on without spans)")
        except Exception as exc:  # telemetry never fails a call
            self._tracer = False
            self._once(f"telemetry.otel: no span could be made ({type(exc).__name__}: {exc}); the calls go on "
                       "without spans")

    def _audit(self, replies: list[Reply]) -> None:
        """``audit: {enabled: true}``: a ``call`` line per reply (the SDK's and the fixture's), with
        its guards' decisions; a line that cannot be written is kept in ``audit_failed`` and warned
        about (the reply still reaches the caller)."""
        from ..safety import audit

        if self._audit_log is None:
            from ..execute.calllog import user_id

            self._audit_log = audit.open_log(self.settings, self.run_id, self.settings.user_id or user_id()) or False
        if not self._audit_log:
            return
        models = self.settings.models
        self._audit_log.write_many([("call", {**audit.reply_fields(r, models[r.model].model if r.model in models
                                                                     else None), "guards": list(r.guards)})
                                    for r in replies])
        if self._audit_log.failed:
            self.audit_failed, self._audit_log.failed = self._audit_log.failed, None
            self.warn(f"audit log not written: {self.audit_failed}")
        unrotated = self._audit_log.unreported_rotation()
        if unrotated:
            self._once(f"audit log not rotated: {unrotated}")

    def _guards(self) -> Any:
        """The run-time guards of promstack.yaml's ``guards:`` (None without it)."""
        if self.settings.guards is None:
            return None
        if self._guard is None:
            from ..safety.guards import Guards

            self._guard = Guards(self.settings.guards)
        return self._guard

    def _guarded(self, req: Request, p: Prompt | None, variables: dict[str, Any], guards: Any, flagged: Any,
                 answer: Any) -> Reply:
        """The reply to ``req`` (``answer``: the engine's, None when blocked) after the guards: the
        blocked notice (no call was made), or the answer with its text filtered; each decision
        goes to the call log."""
        if guards is None:
            return Reply.of(req, answer, p, variables)
        decisions = [flagged] if flagged is not None else []
        if answer is None:
            reply = replace(Reply.of(req, Response(text=guards.policy.blocked_notice, cached=False), p, variables),
                            blocked=True, latency_ms=None, input_tokens=0, output_tokens=0, cost_usd=0.0)
        else:
            reply = Reply.of(req, answer, p, variables)
            if reply.error is None:
                text, filtered = guards.filter_output(reply.text)
                reply, decisions = replace(reply, text=text), decisions + filtered
        for d in decisions:
            self.engine().log_guard(req, d.to_json())
        return replace(reply, guards=tuple(d.to_json() for d in decisions))

    def engine(self) -> Any:
        with self._opening:  # one engine, also when an application's threads share the client
            if self._engine is None:
                from ..execute.engine import open_engine
                from ..util.paths import importable

                self._unimport = importable(self.settings.root)  # python: targets import from the root, as in a run
                self._engine = open_engine(self.settings, self.run_id, self.warn)
        return self._engine

    # -- checks -----------------------------------------------------------------------------

    def check(self, reply: Reply, *specs: str | dict[str, Any], threshold: float | None = None) -> list[Score]:
        """Score ``reply`` with assertions in the files' language (judged types ask the
        configured judge); raises ``AssertionError`` listing every assertion when the reply does
        not pass, and ``PromstackError`` for an unknown assertion or a judge with no verdict."""
        parsed = self.parse(*specs)  # a bad assertion is named first, whatever the reply
        self._allowed([], parsed)
        if reply.error:
            raise CallFailed(self._shown(f"model call failed: {reply.model}: {reply.error}", reply))
        verdicts = self._verdicts(reply, parsed)
        outcome = score_case(self.registry, parsed, [reply.response()], lambda _i: verdicts, reply.vars,
                             where="reply", threshold=threshold, judge_aggregate=self.settings.judge_aggregate,
                             params=reply.params, messages=reply.messages)
        if not outcome.passed:
            raise CheckFailed(self._shown(outcome.failure, reply))
        return list(outcome.scores)

    def _shown(self, text: str, reply: Reply) -> str:
        """A failure about ``reply`` as the terminal, JUnit and an application's log get it: masked
        like a test file's failure text (``masking: {failures: true}``, the default), the reply's
        question and answer priming the masker, so a value cut short in the text is masked too."""
        if not self.settings.masking.on("failures"):
            return text
        from ..results.masking import masked_text

        return masked_text(text, {"vars": reply.vars, "messages": list(reply.messages), "output": reply.output,
                                  "error": reply.error}, self.settings.masking)

    def _allowed(self, models: list[str], specs: list[AssertionSpec]) -> None:
        from ..config.policy import refused

        problem = refused(self.settings, models, specs)
        if problem is not None:
            raise PromstackError(problem)

    def parse(self, *specs: str | dict[str, Any]) -> list[AssertionSpec]:
        """Assertions as ``check`` reads them (an assert-set with its own), or ``PromstackError``
        naming a bad one."""
        return [p for s in specs for p in self._specs(s)]

    def _specs(self, spec: str | dict[str, Any]) -> list[AssertionSpec]:
        """One assertion as a test file reads it (an assert-set: it and its own assertions;
        ``file://`` relative to the project root)."""
        from ..plan.cases import Loader
        from ..plan.values import ValueProblem

        loader = Loader(self.settings.root, self.registry.assertions.__contains__, self.registry.suggest)
        try:
            found = loader.config_assertions("check", spec, self.settings.root)
        except ValueProblem as exc:
            raise PromstackError(str(exc)) from None  # "check: unknown assertion 'contians' (did you mean ...)"
        return [replace(s, origin=f"check[{spec!r}]{(s.origin or 'check')[len('check'):]}") for s in found]

    def _verdicts(self, reply: Reply, specs: list[AssertionSpec]) -> dict[str, Any]:
        """The judge's verdict for each judged assertion, through the same engine (cache,
        cassettes, call log), the same judge calls and the same ask-parse-repair loop as the
        test files (score/judging.py)."""
        from ..score import judging

        meta = {"suite": FIXTURE_SUITE, "case_id": reply.case_id, "prompt_id": reply.prompt_id,
                "prompt_version": reply.prompt_version}
        jobs, decided = judging.jobs_for(self.settings, reply.case_id or "", specs, [reply.response()],
                                         reply.question, meta, reply.vars)
        if jobs:
            judging.run(self.engine(), jobs, self.settings, lambda: None)
        verdicts = {**decided, **{(job.spec, job.index): judging.aggregate(job) for job in jobs}}
        for verdict in verdicts.values():
            if isinstance(verdict, dict) and "error" in verdict:  # fail closed: no verdict, no pass
                who = verdict["judge"] if verdict.get("measured") else f"judge {verdict['judge']}"
                raise CallFailed(f"{who} gave no usable verdict: {verdict['error']}")
        return {sid: verdict for (sid, _index), verdict in verdicts.items()}

    def records(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """Per reply, the record the summary reads (of one test when ``case_id`` is given)."""
        from ..results.records import reply_record

        return [reply_record(FIXTURE_SUITE, r) for r in self.replies if case_id is None or r.case_id == case_id]

    def cassette_entries(self, case_id: str) -> list[dict[str, Any]]:
        """Record mode: the test's finished calls (its judges' too), as cassette entries."""
        from ..execute.cassettes import entry

        if self._engine is None or self.settings.cache_mode != CacheMode.RECORD:
            return []
        masking = self.settings.masking if self.settings.masking.on("cassettes") else None
        return [entry(case_id, req, resp, masking) for req, resp in self._engine.recorded(FIXTURE_SUITE, case_id)]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._unimport()


def default_root(start: Path) -> Path:
    from ..config.settings import CONFIG_NAMES

    for folder in (start, *start.parents):
        if any((folder / n).is_file() for n in CONFIG_NAMES) or (folder / "pyproject.toml").is_file():
            return folder
    return start
