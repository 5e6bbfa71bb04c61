"""Run prompts outside of test files: the machinery behind the ``promstack`` fixture (and
the SDK). Same prompts, cache, cassettes, call log and assertion language as the files."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import assertions
from .cache import cache_key
from .config import InlinePrompt, ModelSpec, Settings
from .errors import PromstackError
from .prompts import Prompt, from_mapping, load_prompt
from .registry import Registry, builtin_registry
from .types import Request, Response, Score


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

    @classmethod
    def of(cls, req: Request, resp: Response, prompt: Prompt | None, variables: dict[str, Any]) -> Reply:
        return cls(text=resp.text or "", model=req.model, prompt_id=prompt.id if prompt else None,
                   prompt_version=prompt.version if prompt else None, latency_ms=resp.latency_ms,
                   input_tokens=resp.input_tokens, output_tokens=resp.output_tokens, cost_usd=resp.cost_usd,
                   cached=resp.cached, error=resp.error, vars=variables)


class Runner:
    def __init__(self, settings: Settings, registry: Registry | None = None, warn: Any = None) -> None:
        self.settings = settings
        self.registry = registry or builtin_registry()
        self.warnings: list[str] = []
        self.warn = warn or self.warnings.append
        self.replies: list[Reply] = []
        self._engine: Any = None
        self._prompts: dict[str, Prompt] = {}
        self.run_id = uuid.uuid4().hex[:12]

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
                    return from_mapping(p.model_dump(exclude_none=True), f"suites.{suite.name}.prompt", ref)
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
        spec = self.settings.models.get(name) or ModelSpec(name=name, model=name)
        merged = {**self.settings.defaults, **spec.params, **(p.params if p else {}), **(params or {})}
        is_app = spec.model.startswith("python:")
        key = cache_key(spec.model, messages, merged, spec.api_base, extra={"vars": variables} if is_app else None)
        info = {"suite": "fixture", "case_id": (meta or {}).get("case_id"), "prompt_id": p.id if p else None,
                "prompt_version": p.version if p else None, **({"vars": variables} if is_app else {})}
        return Request(model=name, litellm_model=spec.model, messages=tuple(messages), params=merged, key=key,
                       api_base=spec.api_base, api_key_env=spec.api_key_env, timeout=self.settings.timeout,
                       meta=info), p

    def run_many(self, jobs: Iterable[dict[str, Any]]) -> list[Reply]:
        """Each job is the keyword arguments of ``request`` (``prompt``, ``vars``, ``model``,
        ``params``); all calls run concurrently; replies come back in order."""
        planned = []
        for job in jobs:
            job = dict(job)
            variables = job.pop("vars", None) or {}
            req, p = self.request(job.pop("prompt"), variables, **job)
            planned.append((req, p, variables))
        engine = self.engine()
        engine.submit([req for req, _, _ in planned])
        replies = [Reply.of(req, engine.result(req.key), p, v) for req, p, v in planned]
        self.replies.extend(replies)
        return replies

    def engine(self) -> Any:
        if self._engine is None:
            from .cache import build_cache
            from .calllog import CallLog, user_id
            from .execute import Engine, RetryPolicy

            s = self.settings
            log = CallLog(s.log_path, self.run_id, s.user_id or user_id()) if s.log_path else None
            self._engine = Engine(s.concurrency, build_cache(s, self.warn), s.cache_mode,
                                  RetryPolicy(s.max_retries, s.retry_backoff, s.retry_max_wait), log,
                                  transport=s.transport)
            self._log = log
        return self._engine

    # -- checks -----------------------------------------------------------------------------

    def check(self, reply: Reply, *specs: str | dict[str, Any], threshold: float | None = None) -> list[Score]:
        """Score ``reply`` with assertions in the files' language; raises ``AssertionError``
        listing every assertion when the reply does not pass."""
        if reply.error:
            raise AssertionError(f"the model call failed: {reply.error}")
        known = self.registry.assertions.__contains__
        parsed = [assertions.from_structured(s, known) for s in specs]
        ctx = assertions.Context(vars=reply.vars, response=Response(
            text=reply.text, latency_ms=reply.latency_ms, cost_usd=reply.cost_usd,
            input_tokens=reply.input_tokens, output_tokens=reply.output_tokens))
        scores = [assertions.evaluate(spec, self.registry.assertions[spec.type.removeprefix("not-")],
                                      reply.text, ctx) for spec in parsed]
        passed, value = assertions.combine(scores, threshold)
        if not passed:
            lines = [f"{'✓' if s.passed else '✗'} {s.reason}" for s in scores]
            raise AssertionError("\n".join([f"reply did not pass (score {value:.2f}):", *lines,
                                            f"output: {reply.text!r}"]))
        return scores

    def records(self) -> list[dict[str, Any]]:
        return [{"suite": "fixture", "model": r.model, "prompt_id": r.prompt_id or "messages",
                 "prompt_version": r.prompt_version or "-", "case_id": "", "litellm_model": None, "called": True,
                 "latencies": [r.latency_ms] if r.latency_ms is not None else [], "input_tokens": r.input_tokens,
                 "output_tokens": r.output_tokens, "cost_usd": r.cost_usd, "cached": r.cached,
                 "error": r.error, "outcome": "error" if r.error else "passed", "repeats": 1, "passes": None}
                for r in self.replies]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            if self._engine.cache is not None:
                self._engine.cache.close()
            if self._log is not None:
                self._log.close()


def default_root(start: Path) -> Path:
    from .config import CONFIG_NAMES

    for folder in (start, *start.parents):
        if any((folder / n).is_file() for n in CONFIG_NAMES) or (folder / "pyproject.toml").is_file():
            return folder
    return start
