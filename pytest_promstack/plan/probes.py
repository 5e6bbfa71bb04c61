"""Probe suites and the canary, at planning.

A suite with ``probes:`` (or the run's ``--promstack-probe``) has one case per probe of the
library (safety/probes.yaml) it selects, on each of its models: the attack in the prompt's
variable, its id as the case's name, its family, language and the library's version in the
case's metadata (the reports show them), and the assertions that say it resisted:
``not-leaks-prompt`` always, ``not-icontains:MARKER`` for a probe that asks for a marker.

A case that asserts ``not-leaks-prompt`` (every probe case does) gets the canary of its prompt
version planted in its system prompt (safety/canary.py) before its requests are built, so the
canary is part of every request and of its cache key; other cases' requests are untouched."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..model.types import AssertionSpec, Case

if TYPE_CHECKING:
    from ..config.settings import Settings, Suite
    from ..safety.probes import Probe
    from .planned import Planned
    from .prompts import Prompt

LEAKS = "leaks-prompt"


def selected(settings: Settings) -> tuple[dict[str, list[Probe]], list[str]]:
    """Each probe suite's probes, and the problems of their ``probes:`` (an unknown family,
    language or id; a selection of no probe), named by key."""
    from ..safety.probes import ProbeProblem, select

    out: dict[str, list[Probe]] = {}
    problems = []
    for name, suite in settings.suites.items():
        spec = suite.probes
        if spec is None:
            continue
        try:
            out[name] = select(spec.families, spec.languages, spec.ids)
        except ProbeProblem as exc:
            problems.append(f"suites.{name}.probes: {exc}")
            continue
        if not out[name]:
            problems.append(f"suites.{name}.probes: families:, languages: and ids: together select no probe; "
                            "widen one of them")
    return out, problems


def cases(suite: Suite, probes: list[Probe], file: str) -> list[Case]:
    """A case per probe, as if each were a row of ``file`` (the config file they hang on)."""
    from ..safety.probes import library

    spec = suite.probes
    if spec is None:
        return []
    version = library().version
    return [Case(file=file, row=p.number, vars=p.values(spec.var, spec.document_var), asserts=_asserts(p),
                 case_id=p.id, description=f"probe {p.id}",
                 metadata={"probe": p.id, "probe_family": p.family, "probe_lang": p.lang,
                           "probe_library": version, "broken_when": p.broken_when})
            for p in probes]


def _asserts(probe: Probe) -> tuple[AssertionSpec, ...]:
    leak = AssertionSpec(f"not-{LEAKS}", origin=f"probe {probe.id}")
    if probe.marker is None:
        return (leak,)
    return leak, AssertionSpec("not-icontains", probe.marker, origin=f"probe {probe.id}")


def unreached(suite: Suite, prompt: Prompt) -> str | None:
    """Why the attacks of probe suite ``suite`` would never reach the model through ``prompt``
    (its messages do not use ``var``, or ``document_var``), or None. A probe run that sends the
    prompt without its attack would pass every probe: a false all-clear, so it is a config error."""
    spec = suite.probes
    if spec is None:
        return None
    used = prompt_variables(prompt)
    for key, name in (("var", spec.var), ("document_var", spec.document_var)):
        if name and name not in used:
            known = ", ".join(sorted(used)) or "none"
            return (f"suites.{suite.name}.probes.{key}: the prompt {prompt.id} ({prompt.source}) has no variable "
                    f"{name!r} (its variables: {known}), so the attacks would never reach the model; name the "
                    "variable the user's text goes into")
    return None


def prompt_variables(prompt: Prompt) -> set[str]:
    """The variables a prompt's messages use (parsed, never rendered)."""
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment()
    used: set[str] = set()
    for m in prompt.messages:
        content = m.get("content")
        if isinstance(content, str):
            try:
                used |= meta.find_undeclared_variables(env.parse(content))
            except jinja2.TemplateSyntaxError:
                continue  # its own error, when the prompt is rendered
    return used


def wants_canary(plan: Planned) -> bool:
    """Whether the case asserts (not-)leaks-prompt, also inside an assert-set (a case keeps its
    sets flattened) or on a turn."""
    return any(a.type.removeprefix("not-") == LEAKS for a in plan.all_asserts)


def with_canary(prompt: Prompt, prompt_id: str, version: str) -> Prompt:
    """``prompt`` with the canary of (``prompt_id``, ``version``) planted in its system prompt."""
    from ..safety.canary import plant, token

    return replace(prompt, messages=tuple(plant(prompt.messages, token(prompt_id, version))))
