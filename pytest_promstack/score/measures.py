"""The checks that ask a model something other than a judge's verdict: ``similar`` (the
embeddings of the reply and of each expected text, compared by cosine, dot product or
euclidean distance, as promptfoo does) and ``moderation`` (the moderation model's flags on the
reply). Their calls go through the engine in the judge phase (cached, retried, logged, their
cost counted as eval cost like the judges'); each check then reads its ``verdict``.

The embedding model is ``embedding_model`` in promstack.yaml (promptfoo's default,
``openai/text-embedding-3-large``, when unset), the moderation model ``moderation_model``
(``openai/omni-moderation-latest``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model.specs import MEASURED, spec_id
from ..model.types import AssertionSpec, Request, Response
from ..plan.requests import measure
from .outcome import Outcome

if TYPE_CHECKING:
    from ..config.settings import Settings
    from .assertions import Context

DEFAULT_EMBEDDING_MODEL = "openai/text-embedding-3-large"  # promptfoo's default embedding provider
DEFAULT_MODERATION_MODEL = "openai/omni-moderation-latest"  # promptfoo's default moderation provider
SIMILAR_THRESHOLD = 0.75  # promptfoo's, for the YAML form; the CSV form's is 0.8 (model/specs.CSV_THRESHOLD)
METRICS = {"similar": "cosine", "similar:cosine": "cosine", "similar:dot": "dot", "similar:euclidean": "euclidean"}


@dataclass
class MeasureJob:
    """One similar or moderation check on one reply: its requests (the reply's, then one per
    expected text), their answers, and the verdict made of them."""

    owner: str
    spec: str  # specs.spec_id
    index: int  # which reply (repeat) of the case
    kind: str  # "similar", "similar:dot", ..., "moderation"
    model: str
    expected: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    prepare: None = None  # (what the estimate and eval cost read of a judge's job)
    prepared: None = None


def model_for(settings: Settings, kind: str) -> str:
    if kind == "moderation":
        return getattr(settings, "moderation_model", None) or DEFAULT_MODERATION_MODEL
    return getattr(settings, "embedding_model", None) or DEFAULT_EMBEDDING_MODEL


def jobs_for(settings: Settings, owner: str, spec: AssertionSpec, replies: Sequence[Response],
             meta: dict[str, Any], variables: Mapping[str, Any] | None = None, run_transforms: bool = True
             ) -> tuple[list[MeasureJob], dict[tuple[str, int], Any]]:
    """The calls of one similar or moderation assertion for each answered reply (its output
    after the assertion's transforms), and the verdicts decided without a call (a value that is
    not text, a transform that raised: the problem; an empty output to moderate: none needed)."""
    kind = spec.type.removeprefix("not-")
    sid = spec_id(spec)
    model = model_for(settings, kind)
    expected: list[str] = []
    if kind != "moderation":
        values = spec.value if isinstance(spec.value, list | tuple) else [spec.value]
        if not values or any(v is None or isinstance(v, dict | list | bool) for v in values):
            problem = f"{kind}: give the expected text (or a list of texts) as its value"
            return [], {(sid, i): problem for i in range(len(replies))}
        expected = [str(v) for v in values]
    elif spec.value is not None and not (isinstance(spec.value, list | tuple)
                                         and all(isinstance(v, str) for v in spec.value)):
        problem = "moderation: its value is the list of categories that fail the check (e.g. [harassment, violence])"
        return [], {(sid, i): problem for i in range(len(replies))}
    from .assertions import TransformFailed, shown

    jobs = []
    decided: dict[tuple[str, int], Any] = {}
    call = "moderation" if kind == "moderation" else "embedding"
    for i, reply in enumerate(replies):
        if reply.error:
            continue  # the case errors on its own call
        try:
            output = shown(spec, reply, variables) if run_transforms else reply.output
        except TransformFailed as exc:
            decided[(sid, i)] = {"judge": f"{kind} check", "error": str(exc), "measured": True}
            continue
        if kind == "moderation" and not output:
            continue  # nothing to moderate: the check passes without a call
        job = MeasureJob(owner, sid, i, kind, model, expected)
        texts = [output, *expected]
        job.requests = [measure(settings, model, call, text, meta) for text in texts]
        jobs.append(job)
    return jobs, decided


def run(engine: Any, jobs: list[MeasureJob], wait: Callable[[], None]) -> None:
    """Every job's calls, concurrently (an expected text shared by many cases is one call)."""
    engine.submit(list({r.key: r for job in jobs for r in job.requests}.values()))
    wait()
    for job in jobs:
        job.responses = [engine.result(r) for r in job.requests]


def verdict(job: MeasureJob) -> dict[str, Any]:
    """What the check reads: the similarity to each expected text, or the moderation's flags;
    ``error`` when a call failed or answered something else (fail closed, as a judge does)."""
    what = f"{'moderation' if job.kind == 'moderation' else 'embedding'} model {job.model}"
    out = _verdict(job, what)
    return {**out, "measured": True}  # not a judge's: kept out of quality and the judges' figures


def _verdict(job: MeasureJob, what: str) -> dict[str, Any]:
    failed = next((r for r in job.responses if r.error), None)
    if failed is not None:
        return {"judge": what, "error": f"the call failed: {failed.error}"}
    if job.kind == "moderation":
        from ..execute.measured import verdict as flags

        try:
            return {"judge": what, "kind": job.kind, **flags(job.responses[0])}
        except ValueError:
            return {"judge": what, "error": "the moderation answer is not a verdict; clear the cache entry"}
    vectors = [r.vector for r in job.responses]
    if any(v is None for v in vectors):
        return {"judge": what, "error": "the answer holds no embedding; is it an embedding model?"}
    reply = vectors[0]
    if any(len(v) != len(reply) for v in vectors if v is not None):
        return {"judge": what, "error": "the embeddings differ in length; use one embedding model"}
    metric = METRICS[job.kind]
    values = [_compare(metric, reply, v) for v in vectors[1:] if v is not None]
    if any(not math.isfinite(v) for v in values):
        return {"judge": what, "error": "an embedding is all zeros: the similarity is undefined"}
    return {"judge": what, "kind": job.kind, "metric": metric, "values": values}


def _compare(metric: str, a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    if metric == "dot":
        return dot
    if metric == "euclidean":
        return math.sqrt(math.fsum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norms if norms else math.nan


# ---- the checks ------------------------------------------------------------------------------


def _no_verdict(ctx: Context, kind: str) -> Outcome | None:
    v = ctx.verdict
    if v is None:
        return Outcome(False, f"{kind} was not measured: it runs in a test file or the fixture's check")
    if isinstance(v, str):
        return Outcome(False, v)
    return None


def similar(output: str, value: Any, ctx: Context) -> Outcome:
    """promptfoo's ``similar``: passes when the reply is similar enough to one of the expected
    texts (a similarity at least the threshold, default 0.75; ``similar:euclidean``: a distance
    at most it). The score is the similarity (1 / (1 + distance) for euclidean) of the first
    text that passes, else of the closest; ``not-similar`` then passes only when the reply is
    far from every text, scored 1 minus that."""
    missing = _no_verdict(ctx, "similar")
    if missing is not None:
        return missing
    v = ctx.verdict
    threshold = SIMILAR_THRESHOLD if ctx.threshold is None else ctx.threshold
    distance = v["metric"] == "euclidean"
    best: tuple[float, float] | None = None  # (score, measured)
    for measured in v["values"]:
        score = 1 / (1 + measured) if distance else measured
        if (measured <= threshold + 1e-12) if distance else (measured >= threshold - 1e-12):
            return Outcome(True, _told(v["metric"], measured, threshold, True), score)
        if best is None or score > best[0]:
            best = (score, measured)
    assert best is not None
    return Outcome(False, _told(v["metric"], best[1], threshold, False, len(v["values"])), best[0])


def _told(metric: str, measured: float, threshold: float, passed: bool, count: int = 1) -> str:
    if metric == "euclidean":
        said = f"distance {measured:.2f} {'≤' if passed else '>'} threshold {threshold:g}"
    else:
        said = f"{metric} similarity {measured:.2f} {'≥' if passed else '<'} threshold {threshold:g}"
    return said + (f" (the closest of {count} expected texts)" if count > 1 and not passed else "")


def moderation(output: str, value: Any, ctx: Context) -> Outcome:
    """promptfoo's ``moderation``: fails when the moderation model flags the reply (only the
    listed categories count when the value lists some); an empty reply passes unasked."""
    if not output:
        return Outcome(True, "no output to moderate")
    missing = _no_verdict(ctx, "moderation")
    if missing is not None:
        return missing
    flagged = list(ctx.verdict["categories"])
    wanted = list(value) if isinstance(value, list | tuple) and value else None
    counted = [c for c in flagged if wanted is None or c in wanted]
    if counted:
        return Outcome(False, f"flagged: {', '.join(counted)}", 0.0)
    if flagged:
        return Outcome(True, f"flagged only {', '.join(flagged)}, not a category checked", 1.0)
    return Outcome(True, "no moderation flags", 1.0)


def measured(asserts: Sequence[AssertionSpec]) -> list[AssertionSpec]:
    return [a for a in asserts if a.type.removeprefix("not-") in MEASURED]


def route(settings: Settings, owner: str, asserts: Sequence[AssertionSpec], replies: Sequence[Response],
          meta: dict[str, Any], variables: Mapping[str, Any] | None = None, run_transforms: bool = True
          ) -> tuple[list[MeasureJob], dict[tuple[str, int], Any]]:
    """Every similar/moderation assertion's jobs and decided verdicts."""
    jobs: list[MeasureJob] = []
    decided: dict[tuple[str, int], Any] = {}
    for spec in measured(asserts):
        found, known = jobs_for(settings, owner, spec, replies, meta, variables, run_transforms)
        jobs += found
        decided.update(known)
    return jobs, decided
