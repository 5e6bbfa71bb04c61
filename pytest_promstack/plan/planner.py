"""Planning: the suites' test files and prompts, with the settings, become planned cases
(``Planned``) and the requests each will make. Collection calls ``plan_file``; nothing here
calls a model. pytest's marks are given by the caller (``marks``), and so is the swap of a
prompt file for a recorded version (``swap``, the registry's business)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config.promptfoo import ProviderProblem, litellm_model
from ..config.settings import InlinePrompt, Settings, Suite
from ..model.errors import CaseError, ConfigError, TemplateError
from ..model.specs import ASSERT_SET
from ..model.types import AssertionSpec, Case, Request, Turn
from ..util.text import safe
from .cases import Loader
from .chain import ChainProblem
from .planned import Planned
from .probes import cases as probe_cases
from .probes import unreached, wants_canary, with_canary
from .prompts import Prompt, from_mapping, load_prompt, with_branches
from .requests import build as build_request
from .tools import request_tools
from .values import ValueProblem, transform_code, with_file_vars
from .values import render as render_values

LOGPROBS = ("perplexity", "perplexity-score")  # assertion types that need the answer's log probabilities
Marks = Callable[[Case, Suite, str], tuple[Any, set[str], str | None]]  # -> (marks, keywords, error)
Swap = Callable[[Prompt, Path], Prompt | str]  # a prompt file -> the version to run instead (or why not)


def _keywords_only(case: Case, suite: Suite, model: str) -> tuple[Any, set[str], str | None]:
    return (), {suite.name, model}, None


class Planner:
    def __init__(self, settings: Settings, known: Callable[[str], bool], suggest: Callable[[str], str], *,
                 marks: Marks = _keywords_only, swap: Swap | None = None) -> None:
        self.settings = settings
        self.known, self.suggest = known, suggest
        self.loader = Loader(settings.root, known, suggest, settings.encoding)
        self.files = settings.files()  # each test file -> the suites that use it
        self._marks, self._swap = marks, swap
        self._prompts: dict[str, list[Prompt | str]] = {}
        self._variants: dict[str, list[str]] = {}  # suite -> the name of each of its prompts in item ids
        self.prompt_files: dict[str, Path] = {}  # prompt id -> its file
        self.planned_ids: set[str] = set()
        self._default_transforms: dict[str, tuple[str, ...]] = {}  # suite -> its case_defaults transform
        self.suite_vars: dict[str, dict[str, Any]] = {}  # suite -> its vars:, a file:// value read
        self._keyword_sets: dict[frozenset[str], frozenset[str]] = {}
        self.suite_asserts = self._parse_suite_asserts()
        self.probes = self._probes()  # each probe suite -> its probes (safety/probes.yaml)

    def wants(self, path: Path) -> bool:
        return path.resolve() in self.files

    def plan_file(self, path: Path) -> list[Planned]:
        suites = self.files[path.resolve()]
        loaded = self.loader.load(path) if any(s.probes is None for s in suites) else []  # probes: the config file
        rel = self.loader.rel(path)
        plans: list[Planned] = []
        for suite in suites:
            prompts = self.prompts(suite)
            if suite.probes is not None:
                cases = probe_cases(suite, self.probes[suite.name], rel)
            else:
                cases = _threaded(loaded, prompts, Path(rel).stem)
            names = _names(cases)
            variants = self._variants[suite.name] if len(prompts) > 1 else [None] * len(prompts)
            for index, case in enumerate(self._with_defaults(c, suite) for c in cases):
                for prompt, variant in zip(prompts, variants, strict=True):
                    for model in (["arena"] if suite.arena else self._models(suite, prompt, case)):
                        plan = self._plan(case, rel, names[index], suite, prompt, model,
                                          len(suites) > 1, variant)
                        self.planned_ids.add(plan.case_id)
                        plans.append(plan)
        return plans

    def _with_defaults(self, case: Case, suite: Suite) -> Case:
        """The suite's case_defaults (promptfoo's defaultTest) on a case that does not set them:
        threshold, prefix, suffix, metadata (the case's keys win)."""
        d = suite.defaults
        if d is None or case.error:
            return case
        return replace(
            case, threshold=case.threshold if case.threshold is not None else d.threshold,
            metadata={**d.metadata, **case.metadata}, prefix=case.prefix or d.prefix or "",
            suffix=case.suffix or d.suffix or "")

    def _asserts(self, case: Case, suite: Suite) -> tuple[AssertionSpec, ...]:
        """The case's assertions, then the suite's, each after the output transform: the case's
        own (promptfoo's test options.transform), else the suite's default one, as promptfoo merges
        options (the test's replaces the default's); an assertion's own transform runs after it.
        A set's own assertions get it, not the set again."""
        return _led(case.asserts + self.suite_asserts[suite.name], self._lead(case, suite))

    def _lead(self, case: Case, suite: Suite) -> tuple[str, ...]:
        """The output transform every assertion of the case runs first."""
        return (case.transform,) if case.transform else self._default_transforms.get(suite.name, ())

    def all_ids(self) -> set[str]:
        """Every case id of the configured suites' files, run or deselected (the files are
        planned here when collection did not: under xdist only the workers collect)."""
        if not self.planned_ids:
            for path in self.files:
                try:
                    self.plan_file(path)
                except CaseError:
                    continue
        return self.planned_ids

    def prompts(self, suite: Suite) -> list[Prompt | str]:
        """The suite's prompts, loaded once; a broken prompt is its error text. With
        --promstack-prompt-branches a file's branches (``name@branch.yaml``) run beside it;
        --promstack-prompt-version swaps a file for a recorded version."""
        if suite.name not in self._prompts:
            out: list[Prompt | str] = []
            stems: list[str] = []  # each prompt's file stem (or inline id): names it when ids clash
            for ref in suite.prompts:
                if isinstance(ref, InlinePrompt):
                    try:
                        out.append(from_mapping(ref.model_dump(exclude_none=True), f"suites.{suite.name}.prompt",
                                                str(ref.id), self.settings.root, self.settings.root))
                    except CaseError as exc:
                        out.append(str(exc))
                    stems.append(str(ref.id))
                    continue
                path = self.settings.root / ref
                paths = with_branches(path) if self.settings.run.prompt_branches else [path]
                out += [self._load_prompt(p) for p in paths]
                stems += [p.stem for p in paths]
            self._prompts[suite.name] = out
            self._variants[suite.name] = _variant_names(out, stems)
        return self._prompts[suite.name]

    def _load_prompt(self, path: Path) -> Prompt | str:
        try:
            prompt = load_prompt(path, self.settings.root)
            self.prompt_files.setdefault(prompt.id, path)
            return self._swap(prompt, path) if self._swap is not None else prompt
        except CaseError as exc:
            return str(exc)

    def _models(self, suite: Suite, prompt: Prompt | str, case: Case) -> list[str]:
        if case.provider is not None:  # a promptfoo test's own provider: a configured name, else its litellm name
            if case.provider in self.settings.models:
                return [case.provider]
            try:
                return [litellm_model(case.provider)]
            except ProviderProblem:
                return [case.provider]  # the plan error names it
        if suite.models:
            chosen = [m for m in suite.models if self._chosen(m, case.providers)]
            return chosen or list(suite.models)  # none: every item errors naming the filter (_plan_error)
        if isinstance(prompt, Prompt) and prompt.model:
            return [prompt.model]
        return ["<no model>"]

    def _plan(self, case: Case, rel: str, base: str, suite: Suite, prompt: Prompt | str, model: str,
              show_suite: bool, variant: str | None) -> Planned:
        """``variant``: the prompt's name in the id when the suite runs several prompts. Ids
        never carry a content hash, so editing a prompt keeps its items' ids (and their JUnit
        history, --lf and baseline matching); the version is a property of the case."""
        pid = prompt.id if isinstance(prompt, Prompt) else "<broken>"
        version = prompt.version if isinstance(prompt, Prompt) else "-"
        params = [suite.name] if show_suite else []
        params += [variant] if variant else []
        params.append(model)
        name = safe(f"{base}[{'-'.join(params)}]")  # a case name from a file is shown by pytest: no escapes
        markers, keywords, mark_error = self._marks(case, suite, model)
        error = mark_error or self._plan_error(prompt, model, suite, case)
        asserts, value_error = render_values(self._asserts(case, suite),
                                             {**self.suite_vars[suite.name], **case.vars}, case.where)
        error = error or value_error
        plan = Planned(case=case, suite=suite.name, model=model, prompt_id=pid, prompt_version=version,
                       name=name, case_id=f"{rel}::{name}", asserts=asserts,
                       error=error, markers=tuple(markers), keywords=self._shared(frozenset(keywords)),
                       variant="-".join(params))
        if suite.arena:
            plan = replace(plan, asserts=(), contenders=suite.models)
        if error is None and case.error is None and case.provider_output is None and isinstance(prompt, Prompt):
            plan = self._with_requests(plan, suite, prompt)
        return plan

    def _chosen(self, model: str, patterns: tuple[str, ...]) -> bool:
        """Whether a test's ``providers:`` filter takes ``model``, as promptfoo matches it: its
        name (a label or a provider id), ``openai:*`` (any whose name or litellm name starts so),
        or a bare prefix ``openai`` (``openai:…`` and ``openai/…``). No filter takes every model."""
        if not patterns:
            return True
        spec = self.settings.models.get(model)
        names = {model, spec.model if spec is not None else model}
        for p in patterns:
            stem = p[:-1] if p.endswith("*") else None
            forms = {p, p.replace(":", "/", 1)} if stem is None else {stem, stem.replace(":", "/", 1)}
            with contextlib.suppress(ProviderProblem):  # a promptfoo id: as its litellm name too
                forms.add(litellm_model(p) if stem is None else litellm_model(stem.rstrip(":") + ":x")[:-1])
            if stem is None and (names & forms or any(n.startswith((f"{p}:", f"{p}/")) for n in names)):
                return True
            if stem is not None and any(n.startswith(f) for n in names for f in forms):
                return True
        return False

    def _plan_error(self, prompt: Prompt | str, model: str, suite: Suite, case: Case) -> str | None:
        if isinstance(prompt, str):
            return prompt
        if case.providers and not self._chosen(model, case.providers):
            return (f"providers: {', '.join(case.providers)} matches none of this suite's models "
                    f"({', '.join(suite.models) or 'none'}); name one (its label or id) or a prefix like openai:*")
        from ..config.policy import refused

        models = suite.models if suite.arena else (model,)
        turns = tuple(a for t in case.turns for a in t.asserts)  # a conversation's turns' too
        code = refused(self.settings, models, self._asserts(case, suite) + turns, arena=suite.arena,
                       scoring=case.scoring, tool_impl=case.agent.impl if case.agent is not None else None)
        if code is not None:
            return code
        if case.provider is not None and case.provider == model and model not in self.settings.models:
            try:
                litellm_model(model)
            except ProviderProblem as exc:
                return f"{case.where}: {exc}"
        if model == "<no model>":
            return ("no model to run: list models: in promstack.yaml, set model: in the prompt, "
                    "or pass --promstack-model")
        return None

    def _parse_suite_asserts(self) -> dict[str, tuple[AssertionSpec, ...]]:
        """Suite ``assert:`` lists are config: a bad one stops the run, listing every problem."""
        config = self.settings.config_file
        base = config.resolve().parent if config is not None else self.settings.root  # file:// is relative to it
        out: dict[str, tuple[AssertionSpec, ...]] = {}
        problems = []
        for suite in self.settings.suites.values():
            specs = []
            try:
                self.suite_vars[suite.name] = with_file_vars(suite.vars, base, self.settings.root)
            except ValueProblem as exc:
                problems.append(f"suites.{suite.name}.vars: {exc}")
            transform = suite.defaults.transform if suite.defaults is not None else None
            if transform:
                try:
                    self._default_transforms[suite.name] = (self._code(transform, base),)
                except ValueProblem as exc:
                    problems.append(f"suites.{suite.name}.case_defaults.transform: {exc}")
            for i, item in enumerate(suite.asserts):
                try:  # read as a test file's assertion: an assert-set too
                    found = self.loader.config_assertions(f"suites.{suite.name}.assert[{i}]", item, base)
                except ValueProblem as exc:
                    problems.append(str(exc))
                    continue
                specs += found
            out[suite.name] = tuple(specs)
        if problems:
            raise ConfigError(self.settings.source, problems)
        return out

    def _probes(self) -> dict[str, list[Any]]:
        """The probe suites' probes; a selection naming an unknown family or id stops the run."""
        if not any(s.probes is not None for s in self.settings.suites.values()):
            return {}
        from .probes import selected

        found, problems = selected(self.settings)
        for suite in self.settings.suites.values():
            prompts = self.prompts(suite) if suite.probes is not None else []
            problems += [why for p in prompts if isinstance(p, Prompt) and (why := unreached(suite, p))]
        if problems:
            raise ConfigError(self.settings.source, problems)
        return found

    def _code(self, code: str, base: Path) -> str:
        """A transform as written, or its file://x.py:fn resolved relative to the config (inside the project)."""
        return transform_code(code, base, self.settings.root)

    def _shared(self, keywords: frozenset[str]) -> frozenset[str]:
        """One set object for the many cases with the same keywords (a suite's, a model's)."""
        return self._keyword_sets.setdefault(keywords, keywords)

    def _with_requests(self, plan: Planned, suite: Suite, prompt: Prompt) -> Planned:
        """The case's requests (one per repeat, or per contender); a conversation's or an agent's
        first ones, with what builds the rest (``chain``)."""
        case = plan.case
        variables = {**self.suite_vars[suite.name], **case.vars}
        if wants_canary(plan):  # its system prompt gets the canary, in every request it makes
            prompt = with_canary(prompt, plan.prompt_id, plan.prompt_version)
        try:
            tools = request_tools(self.settings, plan.model, prompt.params, variables)
            if tools:
                prompt = replace(prompt, params={**prompt.params, **tools})  # read and rendered for this case
            if case.turns or case.agent is not None or case.simulation is not None:
                return self._chained(plan, suite, prompt, variables)
            messages = prompt.render(variables, case.prefix, case.suffix)
        except (TemplateError, ValueProblem, ChainProblem) as exc:
            return replace(plan, error=str(exc))
        if plan.contenders:  # each contender with its own tools (a model's params may declare them)
            try:
                own = [replace(prompt, params={**prompt.params, **request_tools(self.settings, m, prompt.params,
                                                                                  variables)})
                       for m in plan.contenders]
            except ValueProblem as exc:
                return replace(plan, error=str(exc))
            return replace(plan, requests=tuple(r for m, p in zip(plan.contenders, own, strict=True)
                                                for r in self._model_requests(plan, m, p, messages, variables,
                                                                              repeats=1)))
        return replace(plan, requests=self._model_requests(plan, plan.model, prompt, messages, variables,
                                                           self.settings.repeat))

    def _chained(self, plan: Planned, suite: Suite, prompt: Prompt, variables: dict[str, Any]) -> Planned:
        """A conversation (its turns' assertions each turn's, then the suite's; the case's own judge
        the whole transcript) or an agent's run: its first request per repeat, and its chain."""
        from .chain import ChainPlan, first_messages, request_for, simulated_user, simulator_model

        case = plan.case
        if plan.contenders:
            return replace(plan, error="an arena compares one-shot answers; a conversation or an agent run "
                                       "(turns:, tool_results:, tool_impl:) cannot be a contest here: test it in "
                                       "a suite of its own")
        turn_asserts: tuple[tuple[AssertionSpec, ...], ...] = ()
        asserts = plan.asserts
        sim = case.simulation
        if case.turns or sim is not None:
            lead = self._lead(case, suite)
            turns = case.turns or (Turn(vars={}),) * sim.max_turns  # type: ignore[union-attr]
            turn_asserts = tuple(_led(t.asserts + self.suite_asserts[suite.name], lead) for t in turns)
            asserts, problem = render_values(_led(case.asserts, lead), variables, case.where)
            if problem:
                return replace(plan, error=problem)
        params = prompt.params
        if any(a.type.removeprefix("not-") in LOGPROBS for a in asserts + tuple(a for t in turn_asserts for a in t)):
            params = {**params, "logprobs": True}
        chain = ChainPlan(prompt=prompt, variables=variables, params=params, turn_asserts=turn_asserts,
                          conversation=bool(turn_asserts))
        plan = replace(plan, asserts=asserts, chain=chain)
        if sim is not None:
            model = simulator_model(self.settings, plan)
            if not model:
                return replace(plan, error="scenario: name the model that plays the user (scenario: {instructions: "
                                           "..., model: NAME}, a models: name), or set default_judge in promstack.yaml")
            return replace(plan, requests=tuple(simulated_user(self.settings, plan, i, [], 0)
                                                for i in range(self.settings.repeat)))
        messages = first_messages(plan, prompt)
        return replace(plan, requests=tuple(request_for(self.settings, plan, i, messages)
                                            for i in range(self.settings.repeat)))

    def _model_requests(self, plan: Planned, model: str, prompt: Prompt, messages: list[dict[str, Any]],
                        variables: dict[str, Any], repeats: int) -> tuple[Request, ...]:
        params = prompt.params
        if any(a.type.removeprefix("not-") in LOGPROBS for a in plan.asserts):
            params = {**params, "logprobs": True}  # a perplexity check reads the answer's token log probabilities
        return tuple(build_request(self.settings, model, messages, {**plan.meta, "repeat": i}, params=params,
                                   repeat=i, variables=variables) for i in range(repeats))


def _threaded(cases: list[Case], prompts: list[Prompt | str], name: str) -> list[Case]:
    """promptfoo's threads: when a prompt writes the history itself (``_conversation``) or a test
    stores its output for later ones (``storeOutputAs``), the file's tests that are no
    conversation of their own (``metadata.conversationId``) run in order as one conversation."""
    from .cases import conversation
    from .chain import owns_history

    if not any(c.store_as for c in cases) and not any(isinstance(p, Prompt) and owns_history(p) for p in prompts):
        return cases
    loose = [c for c in cases if not c.turns and c.provider_output is None]
    if len(loose) < 2:
        return cases
    threaded = {id(c) for c in loose}
    at = next(i for i, c in enumerate(cases) if id(c) in threaded)
    return [*cases[:at], conversation(loose, name), *(c for c in cases[at:] if id(c) not in threaded)]


def _led(specs: tuple[AssertionSpec, ...], lead: tuple[str, ...]) -> tuple[AssertionSpec, ...]:
    """Each assertion after ``lead`` (the case's output transform); an assert-set's own get it, not the set."""
    if not lead:
        return specs
    return tuple(a if a.type == ASSERT_SET else replace(a, transform=(*lead, *a.transform)) for a in specs)


def _variant_names(prompts: list[Prompt | str], stems: list[str]) -> list[str]:
    """Each prompt of a suite by its id, or by its file stem where ids clash or it is broken."""
    ids = [p.id if isinstance(p, Prompt) else None for p in prompts]
    return [i if i is not None and ids.count(i) == 1 else stem for i, stem in zip(ids, stems, strict=True)]


def _names(cases: list[Case]) -> list[str]:
    """Each case's name in item ids: its own, with its row when another case has the same one."""
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.name] = counts.get(c.name, 0) + 1
    return [c.name if counts[c.name] == 1 else f"{c.name} (row {c.row})" for c in cases]
