"""The per-run state: plans items from test files, pre-runs every model call
concurrently, scores items, aggregates their reports and writes the summary."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import assertions
from .cache import cache_key
from .cases import Loader
from .config import InlinePrompt, ModelSpec, Settings, Suite
from .errors import CaseError, ConfigError, TemplateError
from .items import CaseErrored, CaseFailed, CaseItem
from .prompts import Prompt, from_mapping, load_prompt
from .registry import Registry
from .types import AssertionSpec, Case, Request, Response, Score

if TYPE_CHECKING:
    from .execute import Engine

from .stash import SESSION_KEY  # noqa: F401 - re-exported for callers of the session


@dataclass(frozen=True)
class Planned:
    """Everything an item needs, decided at collection."""

    case: Case
    suite: str
    model: str
    prompt_id: str
    prompt_version: str
    name: str
    asserts: tuple[AssertionSpec, ...]
    request: Request | None = None
    error: str | None = None
    markers: tuple[Any, ...] = ()
    keywords: frozenset[str] = field(default_factory=frozenset)


class PromstackSession:
    def __init__(self, config: pytest.Config, settings: Settings, registry: Registry) -> None:
        self.config = config
        self.settings = settings
        self.registry = registry
        self.loader = Loader(settings.root, registry.assertions.__contains__, registry.suggest,
                             settings.encoding)
        self.files = {p: s for p, s in settings.files().items()}
        self._prompts: dict[str, list[Prompt | str]] = {}
        self.engine: Engine | None = None
        self.records: dict[str, dict[str, Any]] = {}
        self.cache: Any = None
        self.suite_asserts = self._parse_suite_asserts()
        # `python:module:function` assertions import from the project root, like pytest's pythonpath.
        self._root_on_path = str(settings.root) not in sys.path
        if self._root_on_path:
            sys.path.insert(0, str(settings.root))

    # -- collection -------------------------------------------------------------------------

    def wants(self, path: Path) -> bool:
        return path.resolve() in self.files

    def plan_file(self, path: Path) -> list[Planned]:
        suites = self.files[path.resolve()]
        cases = self.loader.load(path)
        names = _names(cases)
        plans: list[Planned] = []
        many_suites = len(suites) > 1
        for suite in suites:
            prompts = self.prompts(suite)
            for case in cases:
                for prompt in prompts:
                    for model in self._models(suite, prompt):
                        plans.append(self._plan(case, names[case.row], suite, prompt, model,
                                                many_suites, len(prompts) > 1))
        return plans

    def prompts(self, suite: Suite) -> list[Prompt | str]:
        """The suite's prompts, loaded once; a broken prompt is its error text."""
        if suite.name not in self._prompts:
            out: list[Prompt | str] = []
            for ref in suite.prompts:
                try:
                    if isinstance(ref, InlinePrompt):
                        out.append(from_mapping(ref.model_dump(exclude_none=True), f"suites.{suite.name}.prompt",
                                                str(ref.id)))
                    else:
                        out.append(load_prompt(self.settings.root / ref, self.settings.root))
                except CaseError as exc:
                    out.append(str(exc))
            self._prompts[suite.name] = out
        return self._prompts[suite.name]

    def _models(self, suite: Suite, prompt: Prompt | str) -> list[str]:
        if suite.models:
            return list(suite.models)
        if isinstance(prompt, Prompt) and prompt.model:
            return [prompt.model]
        return ["<no model>"]

    def _plan(self, case: Case, base: str, suite: Suite, prompt: Prompt | str, model: str,
              show_suite: bool, show_prompt: bool) -> Planned:
        pid = prompt.id if isinstance(prompt, Prompt) else "<broken>"
        version = prompt.version if isinstance(prompt, Prompt) else "-"
        params = [suite.name] if show_suite else []
        params += [f"{pid}@{version}"] if show_prompt else []
        params.append(model)
        name = f"{base}[{'-'.join(params)}]"
        plan = Planned(case=case, suite=suite.name, model=model, prompt_id=pid, prompt_version=version,
                       name=name, asserts=case.asserts + self._suite_asserts(suite))
        markers, keywords, mark_error = self._markers(case, suite, model)
        error = mark_error or self._plan_error(case, prompt, model)
        request = None
        if error is None and case.error is None and case.provider_output is None and isinstance(prompt, Prompt):
            request, error = self._request(case, suite, prompt, model)
        return Planned(**{**plan.__dict__, "request": request, "error": error,
                          "markers": tuple(markers), "keywords": frozenset(keywords)})

    def _plan_error(self, case: Case, prompt: Prompt | str, model: str) -> str | None:
        if isinstance(prompt, str):
            return prompt
        if model == "<no model>":
            return ("no model to run: list models: in promstack.yaml, set model: in the prompt, "
                    "or pass --promstack-model")
        return None

    def _suite_asserts(self, suite: Suite) -> tuple[AssertionSpec, ...]:
        return self.suite_asserts[suite.name]

    def _parse_suite_asserts(self) -> dict[str, tuple[AssertionSpec, ...]]:
        """Suite ``assert:`` lists are config: a bad one stops the run, listing every problem."""
        known = self.registry.assertions.__contains__
        out: dict[str, tuple[AssertionSpec, ...]] = {}
        problems = []
        for suite in self.settings.suites.values():
            specs = []
            for i, item in enumerate(suite.asserts):
                where = f"suites.{suite.name}.assert[{i}]"
                try:
                    spec = assertions.from_structured(item, known)
                except (assertions.AssertionSyntaxError, ValueError) as exc:
                    name = str(exc)
                    hint = self.registry.suggest(name) if name.replace("-", "").isalnum() else ""
                    problems.append(f"{where}: unknown assertion {name!r}{hint}" if hint else f"{where}: {name}")
                    continue
                specs.append(AssertionSpec(spec.type, spec.value, spec.threshold, spec.weight, where))
            out[suite.name] = tuple(specs)
        if problems:
            raise ConfigError(self.settings.source, problems)
        return out

    def _request(self, case: Case, suite: Suite, prompt: Prompt, model: str) -> tuple[Request | None, str | None]:
        spec = self.settings.models.get(model) or ModelSpec(name=model, model=model)
        try:
            messages = prompt.render({**suite.vars, **case.vars}, case.prefix, case.suffix)
        except TemplateError as exc:
            return None, str(exc)
        params = {**self.settings.defaults, **spec.params, **prompt.params}
        key = cache_key(spec.model, messages, params, spec.api_base)
        return Request(model=model, litellm_model=spec.model, messages=tuple(messages), params=params,
                       key=key, api_base=spec.api_base, api_key_env=spec.api_key_env,
                       timeout=self.settings.timeout), None

    def _markers(self, case: Case, suite: Suite, model: str) -> tuple[list[Any], set[str], str | None]:
        markers: list[Any] = []
        keywords = {suite.name, model}
        for key, value in case.metadata.items():
            keywords.update(str(v) for v in (value if isinstance(value, list) else [value]))
            if key.isidentifier():
                self.config.addinivalue_line("markers", f"{key}: promstack case metadata")
                markers.append(getattr(pytest.mark, key)(value=value))
        for mark in case.marks:
            name, _, reason = (part.strip() for part in mark.partition(":"))
            try:
                decorator = getattr(pytest.mark, name)
            except pytest.fail.Exception:
                return [], keywords, (f"__marks: {name!r} is not a registered marker; "
                                      "add it to markers in your pytest config")
            markers.append(decorator(reason=reason) if reason else decorator)
        return markers, keywords, None

    # -- running ----------------------------------------------------------------------------

    def start_calls(self, items: list[pytest.Item]) -> None:
        """Resolve every collected request now: cache hits at once, misses concurrently."""
        from .execute import Engine

        requests = [i.plan.request for i in items if isinstance(i, CaseItem) and i.plan.request]
        self.engine = Engine(self.settings.concurrency, self._cache(), self.settings.cache_mode)
        self.engine.submit(requests)

    def _cache(self) -> Any:
        if self.settings.cache_mode == "off":
            return None
        if self.cache is None:
            from .cache import DiskCache

            self.cache = DiskCache(self.settings.cache_dir)
        return self.cache

    def setup_item(self, item: CaseItem) -> None:
        plan = item.plan
        where = f"{plan.case.where} [{plan.model}]"
        if plan.case.error:
            return  # a malformed row fails in runtest
        if plan.error:
            raise CaseErrored(f"{where}: {plan.error}")
        if plan.case.provider_output is not None:
            item.response = Response(text=plan.case.provider_output)
        else:
            item.response = self._response(plan.request)
        item.user_properties.extend(self._properties(item))
        if item.response.error:
            raise CaseErrored(f"{where}: model call failed: {item.response.error}")

    def _response(self, request: Request | None) -> Response:
        if request is None:
            return Response(error="nothing to call (no request was planned)")
        if self.engine is None or request.key not in self.engine.futures:
            if self.engine is None:
                from .execute import Engine

                self.engine = Engine(self.settings.concurrency, self._cache(), self.settings.cache_mode)
            self.engine.submit([request])
        return self.engine.result(request.key)

    def _properties(self, item: CaseItem) -> list[tuple[str, Any]]:
        r, plan = item.response, item.plan
        return [("model", plan.model), ("prompt_id", plan.prompt_id), ("prompt_version", plan.prompt_version),
                ("latency_ms", _na(r.latency_ms)), ("input_tokens", _na(r.input_tokens)),
                ("output_tokens", _na(r.output_tokens)), ("cost_usd", _na(r.cost_usd)),
                ("cached", str(r.cached).lower())]

    def run_item(self, item: CaseItem) -> None:
        plan = item.plan
        if plan.case.error:
            raise CaseFailed(plan.case.error)
        output = item.response.text or ""
        ctx = assertions.Context(vars=plan.case.vars, response=item.response)
        scores = [assertions.evaluate(spec, self.registry.assertions[spec.type.removeprefix("not-")],
                                      output, ctx) for spec in plan.asserts]
        passed, value = assertions.combine(scores, plan.case.threshold)
        item.scores, item.score = scores, value
        if not scores:
            raise CaseFailed(f"{plan.case.where} [{plan.model}]: the case has no expectations; add an "
                             "__expected column (e.g. icontains:환불) or a suite assert:")
        if not passed:
            raise CaseFailed(_failure(plan, scores, value, output))

    # -- results ----------------------------------------------------------------------------

    def result_of(self, item: CaseItem) -> dict[str, Any]:
        plan, r = item.plan, item.response
        return {
            "suite": plan.suite, "model": plan.model,
            "litellm_model": plan.request.litellm_model if plan.request else None, "prompt_id": plan.prompt_id,
            "prompt_version": plan.prompt_version, "file": plan.case.file, "row": plan.case.row,
            "called": plan.request is not None and r is not None,
            "latency_ms": getattr(r, "latency_ms", None), "input_tokens": getattr(r, "input_tokens", None),
            "output_tokens": getattr(r, "output_tokens", None), "cost_usd": getattr(r, "cost_usd", None),
            "cached": bool(getattr(r, "cached", False)), "error": getattr(r, "error", None),
            "score": getattr(item, "score", None),
        }

    def file_error_result(self, item: pytest.Item) -> dict[str, Any]:
        """An unreadable file counts once, as an error, under each suite that uses it."""
        suite = self.files[Path(item.path).resolve()][0].name
        return {"suite": suite, "model": "-", "litellm_model": None, "prompt_id": "-", "prompt_version": "-",
                "file": str(item.path), "row": None, "called": False, "latency_ms": None,
                "input_tokens": None, "output_tokens": None, "cost_usd": None, "cached": False,
                "error": None, "score": None}

    def record(self, report: pytest.TestReport) -> None:
        data = getattr(report, "promstack", None)
        if data is None:
            return
        rec = self.records.setdefault(report.nodeid, {"outcome": "passed"})
        rec.update(data)
        rec["outcome"] = _outcome(report, rec["outcome"])

    def header(self, items: list[pytest.Item]) -> str:
        cases = [i for i in items if isinstance(i, CaseItem)]
        files = {i.plan.case.file for i in cases}
        s = self.settings
        cache = "off" if s.cache_mode == "off" else f"{s.cache_mode} ({_rel(s.cache_dir, s.root)})"
        return (f"promstack: {len(cases)} cases from {len(files)} files, suites {', '.join(s.suites) or '-'}, "
                f"cache {cache}, concurrency {s.concurrency}")

    def summary(self) -> list[str]:
        from .metrics import summarise, unpriced
        from .report.terminal import summary_lines

        records = list(self.records.values())
        return summary_lines(summarise(records), unpriced(records))

    def close(self) -> None:
        if self._root_on_path and str(self.settings.root) in sys.path:
            sys.path.remove(str(self.settings.root))
        if self.engine is not None:
            self.engine.close()
        if self.cache is not None:
            self.cache.close()


def _outcome(report: pytest.TestReport, current: str) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "error" if report.when != "call" else "failed"
    if report.skipped:
        return "skipped"
    return current if report.when == "teardown" else ("passed" if current == "passed" else current)


def _names(cases: list[Case]) -> dict[int, str]:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.name] = counts.get(c.name, 0) + 1
    return {c.row: c.name if counts[c.name] == 1 else f"{c.name} (row {c.row})" for c in cases}


def _failure(plan: Planned, scores: list[Score], value: float, output: str) -> str:
    failed = [s for s in scores if not s.passed]
    head = f"{plan.case.where} [{plan.model}]: {len(failed)} of {len(scores)} assertions failed"
    if plan.case.threshold is not None:
        head += f" (score {value:.2f} < threshold {plan.case.threshold:g})"
    lines = [head] + [f"  {'✓' if s.passed else '✗'} {s.reason}" for s in scores]
    shown = output if len(output) <= 500 else output[:499] + "…"
    lines.append(f"  output: {shown!r}")
    return "\n".join(lines)


def _na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


