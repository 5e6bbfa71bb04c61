"""The judge phase: after the model calls, every judged assertion's verdicts are requested
concurrently through the same engine (cache, retries, call log), parsed strictly, repaired
once, and aggregated over the judge's repeats."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.judges import Judge
from ..config.settings import Settings
from ..model.errors import JudgeError
from ..model.specs import JUDGED, MEASURED, SELECT_BEST, spec_id
from ..model.types import AssertionSpec, Request, Response
from ..plan.requests import build as build_request
from . import judges

if TYPE_CHECKING:
    from ..plan.planned import Planned


@dataclass
class Job:
    """One judged assertion on one reply: its judge, prompt and one request per judge repeat."""

    owner: str  # the item's node id
    spec: str  # specs.spec_id
    index: int  # which reply (repeat) of the case
    judge: Judge
    messages: list[dict[str, Any]]
    requests: list[Request] = field(default_factory=list)
    raws: list[str | None] = field(default_factory=list)
    results: list[judges.Verdict | str] = field(default_factory=list)  # a verdict, or why there is none
    responses: list[Response] = field(default_factory=list)
    # g-eval: the call that writes the criterion's evaluation steps (one per criterion and judge,
    # so cached and shared by every case), and what makes the judge's prompt once they are known
    prepare: Request | None = None
    build: Callable[[str], list[dict[str, Any]]] | None = None
    prepared: Response | None = None  # the steps call's answer


# promptfoo's model-graded types: the one criterion the default judge scores, in English and
# Korean, and whether the judge is shown the case's context (its ``context`` variable)
MODEL_GRADED: dict[str, tuple[str, str, bool]] = {
    "factuality": ("Is the reply factually consistent with the expected reply: the same facts, or a subset or a "
                   "superset of them, with none contradicting it?",
                   "응답이 기대하는 응답과 사실관계가 일치하는가? "
                   "같은 사실이거나 그 일부·확장이며, 어긋나는 사실이 없어야 한다.",
                   False),
    "model-graded-closedqa": ("Does the reply meet this criterion: {value}",
                              "응답이 다음 기준을 만족하는가: {value}", False),
    "answer-relevance": ("Is the reply relevant to the question, answering what was asked and nothing else?",
                         "응답이 질문과 관련 있고, 물은 것에 답하는가?", False),
    "context-faithfulness": ("Is every claim in the reply supported by the context?",
                             "응답의 모든 주장이 참고 문맥으로 뒷받침되는가?", True),
    "context-recall": ("Is every statement of the expected reply supported by the context?",
                       "기대하는 응답의 모든 내용이 참고 문맥에 들어 있는가?", True),
    "context-relevance": ("Does the context hold what is needed to answer the question, and little else?",
                          "참고 문맥이 질문에 답하는 데 필요한 내용을 담고 있는가?", True),
    # promptfoo runs a HuggingFace text classifier; here the judge's score is its confidence
    "classifier": ("Classify the reply: is it of the class \"{value}\"? Score your confidence that it is: the top "
                   "of the scale means certainly that class, the bottom certainly not.",
                   "응답을 분류하세요: 응답이 \"{value}\" 부류에 속하는가? 그렇다고 확신하는 정도로 점수를 주세요. "
                   "가장 높은 점수는 확실히 그 부류, 가장 낮은 점수는 확실히 아님을 뜻한다.", False),
    # conversation judges: the reply is the whole transcript (User:/Assistant: lines)
    "goal-achieved": ("Read the whole conversation. By its end, has the assistant brought the user to their goal: "
                      "{value}?",
                      "대화 전체를 읽으세요. 대화가 끝날 때 상담원이 사용자를 목표에 도달하게 했는가: {value}?", False),
    "role-adherence": ("Read the whole conversation. Does the assistant keep to its role in every reply, never "
                       "stepping out of it: {value}?",
                       "대화 전체를 읽으세요. 상담원이 모든 응답에서 역할을 벗어나지 않고 지키는가: {value}?", False),
    "knowledge-retention": ("Read the whole conversation. Does the assistant remember what the user already told it: "
                            "it never asks again for something the user gave, and never contradicts it?",
                            "대화 전체를 읽으세요. 상담원이 사용자가 이미 말한 내용을 기억하는가? 이미 받은 정보를 "
                            "다시 묻지 않고, 그 내용과 어긋나게 말하지 않아야 한다.", False),
}
MODEL_GRADED["model-graded-factuality"] = MODEL_GRADED["factuality"]
# what a conversation judge asks about when its assertion names nothing: the case's scenario, else this
CONVERSATION_DEFAULT = {"goal-achieved": ("what the user came for", "사용자가 원한 것"),
                        "role-adherence": ("the role its instructions give it", "지시받은 역할")}
EXPECTED_VALUE = ("factuality", "model-graded-factuality", "context-recall")
STEPS = {"en": "Write 3 to 5 short evaluation steps a grader follows to judge a reply against these criteria:\n"
               "{criteria}\nAnswer with the steps only, one per line, numbered.",
         "ko": "다음 기준으로 응답을 평가할 때 심사자가 따를 짧은 평가 단계를 3~5개 쓰세요:\n{criteria}\n"
               "번호를 붙여 한 줄에 하나씩, 단계만 답하세요."}
MAX_STEPS_CHARS = 2000


@dataclass(frozen=True)
class Resolved:
    """What a judged assertion asks: its judge, the expected reply and context it is shown,
    or why no judge can be asked (``problem``); all None when no judge is set."""

    judge: Judge | None = None
    expectation: str | None = None
    problem: str | None = None
    context: str | None = None


def resolve(settings: Settings, spec: AssertionSpec, variables: Mapping[str, Any] | None = None) -> Resolved:
    kind = spec.type.removeprefix("not-")
    if kind == "judge":
        name = str(spec.value or settings.default_judge or "")
        judge = settings.judges.get(name)
        if judge is None:
            known = ", ".join(sorted(settings.judges)) or "none configured"
            return Resolved(problem=f"judge {name!r} is not configured (judges: {known})")
        return Resolved(judge)
    default = settings.judges.get(settings.default_judge or "")
    if default is None:
        return Resolved()
    if kind in ("llm-rubric", "grade"):
        return Resolved(default.with_criteria((str(spec.value),), f"{default.name}:rubric"))
    if kind == "g-eval":
        criteria = "\n".join(str(v) for v in spec.value) if isinstance(spec.value, list) else str(spec.value)
        return Resolved(default.with_criteria((criteria,), f"{default.name}:g-eval"))
    if kind in MODEL_GRADED:
        english, korean, shown = MODEL_GRADED[kind]
        value = spec.value
        if value is None and kind in CONVERSATION_DEFAULT:
            scenario = (variables or {}).get("scenario") if kind == "goal-achieved" else None
            value = scenario or CONVERSATION_DEFAULT[kind][default.language == "ko"]
        criterion = (korean if default.language == "ko" else english).format(value=value)
        context = (variables or {}).get("context")
        if shown and (context is None or str(context).strip() == ""):
            return Resolved(problem=f"{kind} judges the reply against the case's context: give the case a context "
                                    "variable (a column or vars: key named context)")
        return Resolved(default.with_criteria((criterion,), f"{default.name}:{kind}"),
                        str(spec.value) if kind in EXPECTED_VALUE else None,
                        context=None if context is None or not shown else str(context))
    lang = default.language if default.language in judges.EXPECTATION else "en"
    return Resolved(default.with_criteria((judges.EXPECTATION[lang],), f"{default.name}:expected"), str(spec.value))


def jobs_for(settings: Settings, owner: str, asserts: Sequence[AssertionSpec], replies: Sequence[Response],
             question: str, meta: dict[str, Any], variables: Mapping[str, Any] | None = None,
             run_transforms: bool = True) -> tuple[list[Job], dict[tuple[str, int], Any]]:
    """One job per judged assertion x answered reply (one request per judge repeat), and the
    verdicts decided without asking, by (spec id, reply index): ``None`` when no judge is set
    (the assertion then names the missing setting), a problem when the named judge is unknown
    or a context type has no context, ``{"judge", "error"}`` when the judge's template does not
    render (fail closed). Test files, the fixture's ``check``, the SDK and the estimate all
    build their judge calls here; ``variables`` are the case's (its ``context``). The judge is
    shown the reply after the assertion's transforms, as promptfoo grades the transformed output
    (``run_transforms=False``: the estimate, which runs no code, shows it as it is)."""
    from .assertions import TransformFailed, shown

    jobs: list[Any] = []
    decided: dict[tuple[str, int], Any] = {}
    if any(spec.type.removeprefix("not-") in MEASURED for spec in asserts):  # similar, moderation: no judge
        from . import measures

        jobs, decided = measures.route(settings, owner, asserts, replies, meta, variables, run_transforms)
    for spec in asserts:
        if spec.type.removeprefix("not-") not in JUDGED:
            continue
        sid = spec_id(spec)
        if spec.type == SELECT_BEST:  # judged over the row's variants (select_jobs), which replace this
            lone = None if settings.judges.get(settings.default_judge or "") is None else LONE_VARIANT
            decided.update({(sid, i): lone for i in range(len(replies))})
            continue
        found = resolve(settings, spec, variables)
        judge = found.judge
        if found.problem is not None or judge is None:
            decided.update({(sid, i): found.problem for i in range(len(replies))})
            continue
        template = judges.template_text(judge)
        geval = spec.type.removeprefix("not-") == "g-eval"
        for i, reply in enumerate(replies):
            if reply.error:
                continue  # the case errors on its own call
            try:
                answer = shown(spec, reply, variables) if run_transforms and spec.transform else reply.output
            except TransformFailed as exc:  # no verdict
                decided[(sid, i)] = {"judge": judge.name, "error": str(exc)}
                continue
            if geval:
                jobs.append(_g_eval_job(settings, owner, sid, i, judge, question, answer, template, meta))
                continue
            try:
                msgs = judges.messages(judge, question, answer, template, found.expectation, found.context)
            except JudgeError as exc:
                decided[(sid, i)] = {"judge": judge.name, "error": str(exc)}
                continue
            job = Job(owner, sid, i, judge, msgs)
            job.requests = [request(settings, job, j, msgs, meta) for j in range(judge.repeat)]
            jobs.append(job)
    return jobs, decided


def _g_eval_job(settings: Settings, owner: str, sid: str, index: int, judge: Judge, question: str, answer: str,
                template: str, meta: dict[str, Any]) -> Job:
    """G-Eval: the judge first writes evaluation steps for the criteria (one call per criteria
    and judge model, cached like any call, so shared by every case), then scores the reply on
    the criteria with those steps."""
    criteria = judge.criteria[0]
    lang = "ko" if judge.language == "ko" else "en"
    ask = [{"role": "user", "content": STEPS[lang].format(criteria=criteria)}]
    job = Job(owner, sid, index, judge, [])
    job.prepare = build_request(settings, judge.model, ask, meta, params={"temperature": 0, "max_tokens": 400},
                                defaults=False, judge=True)

    def build(steps: str) -> list[dict[str, Any]]:
        label = "평가 단계" if lang == "ko" else "Evaluation steps"
        stepped = judge.with_criteria((f"{criteria}\n{label}:\n{steps}",), judge.name)
        return judges.messages(stepped, question, answer, template)

    job.build = build
    return job


def _prepare(engine: Any, jobs: list[Job], settings: Settings, wait: Callable[[], None]) -> None:
    """The steps of every g-eval job (one call per distinct request), then its judge requests;
    a steps call that failed, or a prompt that cannot render, is the job's result (fail closed)."""
    pending = [job for job in jobs if job.prepare is not None and not job.requests]
    if not pending:
        return
    engine.submit(list({job.prepare.key: job.prepare for job in pending if job.prepare is not None}.values()))
    wait()
    for job in pending:
        if job.prepare is None or job.build is None:
            continue
        resp = job.prepared = engine.result(job.prepare)
        steps = (resp.text or "").strip()[:MAX_STEPS_CHARS]
        if resp.error or not steps:
            job.results = [f"the g-eval steps call failed: {resp.error or 'an empty answer'}"]
            continue
        try:
            job.messages = job.build(steps)
        except JudgeError as exc:
            job.results = [str(exc)]
            continue
        job.requests = [request(settings, job, j, job.messages, job.prepare.meta) for j in range(job.judge.repeat)]


def request(settings: Settings, job: Job, repeat: int, messages: list[dict[str, Any]], meta: dict[str, Any]
            ) -> Request:
    # the key holds what the judge asks for (json_schema), not the step a server took after
    # refusing it (execute/negotiate.py): the same verdict request has one key on every server, so a
    # cassette recorded against either kind replays without knowing how the call went
    return build_request(settings, job.judge.model, messages, meta, params=judges.request_params(job.judge),
                         defaults=False, repeat=repeat, judge=True)


def run(engine: Any, jobs: list[Job], settings: Settings, wait: Callable[[], None]) -> None:
    """Ask, parse, repair once, parse again. Results land in ``job.results``. The similar and
    moderation checks' calls (score/measures.py) are made alongside."""
    measured = [job for job in jobs if not isinstance(job, Job)]
    if measured:
        from . import measures

        measures.run(engine, measured, wait)
        jobs = [job for job in jobs if isinstance(job, Job)]
    _prepare(engine, jobs, settings, wait)
    jobs = [job for job in jobs if job.requests]  # a g-eval job whose steps failed has its result
    _ask(engine, jobs, wait)
    for job in jobs:
        job.results = [_parse(r, job.judge) for r in job.responses]
    broken = [(job, i) for job in jobs for i, r in enumerate(job.results) if isinstance(r, str)
              and job.responses[i].error is None]
    if broken:
        repairs = []
        for job, i in broken:
            raw = job.responses[i].text or ""
            msgs = judges.repair_messages(job.messages, raw, str(job.results[i]), job.judge.language)
            req = request(settings, job, i, msgs, job.requests[i].meta)
            repairs.append((job, i, req))
        engine.submit([req for _, _, req in repairs])
        wait()
        for job, i, req in repairs:
            resp = engine.result(req)
            job.responses.append(resp)
            parsed = _parse(resp, job.judge)
            job.results[i] = parsed if not isinstance(parsed, str) else (
                f"{parsed}; raw answer: {(resp.text or job.responses[i].text or '')[:300]!r}")


def _ask(engine: Any, jobs: list[Job], wait: Callable[[], None]) -> None:
    engine.submit([r for job in jobs for r in job.requests])
    wait()
    for job in jobs:
        job.responses = [engine.result(r) for r in job.requests]


def _parse(resp: Response, judge: Judge) -> judges.Verdict | str:
    return _parsed(resp, lambda text: judges.parse(text, judge))


def _parsed(resp: Response, parse: Callable[[str | None], Any]) -> Any:
    """``parse`` of the judge's answer, or why there is none (the call failed, it did not parse)."""
    if resp.error:
        return f"the judge's call failed: {resp.error}"
    try:
        return parse(resp.text)
    except JudgeError as exc:
        return str(exc)


def aggregate(job: Job) -> dict[str, Any]:
    """Majority verdict over the judge's repeats, the mean score, and the agreement (a
    similar or moderation check: what it measured, see score/measures.verdict)."""
    if not isinstance(job, Job):
        from . import measures

        return measures.verdict(job)
    problems = [r for r in job.results if isinstance(r, str)]
    if problems:
        return {"judge": job.judge.name, "error": problems[0]}
    verdicts = [r for r in job.results if not isinstance(r, str)]
    passes = sum(v.passed for v in verdicts)
    majority = passes * 2 > len(verdicts)  # a tie of verdicts does not pass: fail closed
    agreeing = passes if majority else len(verdicts) - passes
    first = verdicts[0]
    return {
        "judge": job.judge.name, "passed": majority, "repeats": len(verdicts),
        "agreement": agreeing / len(verdicts),
        "mean": sum(v.mean for v in verdicts) / len(verdicts),
        "normalised": sum(v.normalised for v in verdicts) / len(verdicts),
        "scale": list(job.judge.scale),
        "scores": [{"criterion": s.criterion, "score": s.score, "reason": s.reason} for s in first.scores],
    }


def eval_cost(jobs: Sequence[Job | PairJob]) -> tuple[float | None, int]:
    """(cost of the judge calls, None when a price is unknown; number of calls made)."""
    prepared = [getattr(job, "prepared", None) for job in jobs]  # a g-eval job's steps call (not an arena game's)
    responses = [r for job in jobs for r in job.responses] + [r for r in prepared if r is not None]
    costs = [r.cost_usd for r in responses if r.error is None]
    cost = None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))
    return cost, len(responses)


# ---- select-best: one verdict over the variants of one test -----------------------------------

LONE_VARIANT = ("select-best compares the replies of one test across its prompts and models, and this one has "
                "only one; run the row with a second prompt or model (promptfoo stops the eval here), or write "
                "llm-rubric: with the criterion")


@dataclass
class SelectJob:
    """One select-best assertion on one repeat of one test row: its variants' replies (in
    collection order) shown to the default judge at once, which names the best."""

    owners: list[str]  # the variants' items (node ids)
    variants: list[str]  # what each one's id brackets hold: [prompt-]model
    spec: str
    index: int  # which reply (repeat) of the row's cases
    judge: Judge
    criterion: str
    messages: list[dict[str, Any]]
    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    result: tuple[int, str] | str | None = None  # (best variant's index, the judge's reason), or why none


def row_key(plan: Planned) -> tuple[Any, ...]:
    """The variants of one test share it: suite, file, row and the case (a row whose vars list
    values is several cases, each its own test, as in promptfoo)."""
    import json

    return (plan.suite, plan.case.file, plan.case.row, plan.case.name,
            json.dumps(plan.case.vars, sort_keys=True, ensure_ascii=False, default=str))


def select_jobs(settings: Settings, plans: Mapping[str, Planned], replies: Callable[[Planned], list[Response]]
                ) -> tuple[list[SelectJob], dict[str, dict[tuple[str, int], Any]]]:
    """A job per select-best assertion x repeat of every row with two or more variants whose
    calls answered, and the verdicts decided without asking, by owner (a template that cannot
    render: fail closed). A row's variants are the plans given here under one ``row_key``."""
    judge = settings.judges.get(settings.default_judge or "")
    rows: dict[tuple[Any, ...], list[str]] = {}
    for owner, plan in plans.items():
        if judge is not None and any(a.type == SELECT_BEST for a in plan.asserts):
            rows.setdefault(row_key(plan), []).append(owner)
    jobs: list[SelectJob] = []
    decided: dict[str, dict[tuple[str, int], Any]] = {}
    for owners in rows.values():
        if len(owners) > 1 and judge is not None:
            _row_jobs(settings, judge, [(o, plans[o]) for o in owners], replies, jobs, decided)
    return jobs, decided


def _row_jobs(settings: Settings, judge: Judge, row: list[tuple[str, Planned]],
              replies: Callable[[Planned], list[Response]], jobs: list[SelectJob],
              decided: dict[str, dict[tuple[str, int], Any]]) -> None:
    answers = [replies(plan) for _, plan in row]
    first = row[0][1]
    judged = judge.with_criteria((), f"{judge.name}:select-best")
    failed = [p.variant or p.model for (_, p), rs in zip(row, answers, strict=True) if any(r.error for r in rs)]
    for spec in (a for a in first.asserts if a.type == SELECT_BEST):
        sid = spec_id(spec)
        if failed:  # no fair comparison: every variant errors (fail closed), the failed ones on their own call
            why = f"the call of variant [{failed[0]}] failed, so the row's {len(row)} replies were not compared"
            for owner, _ in row:
                decided.setdefault(owner, {}).update(
                    {(sid, i): {"judge": judged.name, "error": why} for i in range(len(answers[0]))})
            continue
        for i in range(min(len(rs) for rs in answers)):
            texts = [rs[i].output for rs in answers]
            try:
                msgs = judges.select_best_messages(judge, str(spec.value), _row_question(first), texts)
            except Exception as exc:  # the built-in template under the sandbox's limits (huge replies)
                for owner, _ in row:
                    decided.setdefault(owner, {})[(sid, i)] = {"judge": judged.name, "error": str(exc)}
                continue
            job = SelectJob([o for o, _ in row], [p.variant or p.model for _, p in row], sid, i, judged,
                            str(spec.value), msgs)
            job.requests = [build_request(settings, judge.model, msgs, {**first.meta, "repeat": i},
                                          params=judges.select_best_params(judge, len(texts)), defaults=False,
                                          judge=True)]
            jobs.append(job)


def _row_question(plan: Planned) -> str:
    """What the row asks, the same for every variant: its ``input`` (else its vars), not one
    prompt's rendering of it, which would favour that prompt's reply."""
    import json

    variables = plan.case.vars
    if "input" in variables:
        return str(variables["input"])
    return json.dumps(variables, ensure_ascii=False, default=str) if variables else ""


def run_select(engine: Any, jobs: list[SelectJob], settings: Settings, wait: Callable[[], None]) -> None:
    """Ask each row's judge; an answer that does not parse is shown back once, then the row's
    cases error with it (fail closed)."""
    engine.submit([r for job in jobs for r in job.requests])
    wait()
    repairs = []
    for job in jobs:
        job.responses = [engine.result(job.requests[0])]
        job.result = _select_parse(job.responses[0], len(job.owners))
        if isinstance(job.result, str) and job.responses[0].error is None:
            msgs = judges.repair_messages(job.messages, job.responses[0].text or "", job.result,
                                          job.judge.language)
            req = build_request(settings, job.judge.model, msgs, job.requests[0].meta,
                                params=judges.select_best_params(job.judge, len(job.owners)), defaults=False,
                                judge=True)
            repairs.append((job, req))
    if repairs:
        engine.submit([req for _, req in repairs])
        wait()
        for job, req in repairs:
            resp = engine.result(req)
            job.responses.append(resp)
            fixed = _select_parse(resp, len(job.owners))
            job.result = fixed if not isinstance(fixed, str) else f"{fixed}; raw answer: {(resp.text or '')[:300]!r}"


def _select_parse(resp: Response, count: int) -> tuple[int, str] | str:
    return _parsed(resp, lambda text: judges.parse_select_best(text, count))


def select_verdicts(job: SelectJob) -> dict[str, Any]:
    """Each variant's verdict, by owner: the chosen one passes (score 1), the others fail (0);
    every one names the chosen variant. No usable answer: each errors with why."""
    if not isinstance(job.result, tuple):
        return {owner: {"judge": job.judge.name, "error": str(job.result)} for owner in job.owners}
    best, reason = job.result
    chosen = job.variants[best]
    out = {}
    for n, owner in enumerate(job.owners):
        won = n == best
        out[owner] = {"judge": job.judge.name, "passed": won, "repeats": 1, "agreement": 1.0, "mean": float(won),
                      "normalised": 100.0 * won, "scale": [0, 1], "chosen": chosen, "of": len(job.owners),
                      "scores": [{"criterion": job.criterion, "score": int(won), "reason": reason}]}
    return out


# ---- arena: pairwise, both orders ------------------------------------------------------------


@dataclass
class PairJob:
    owner: str
    case: str
    a: str
    b: str
    judge: Judge
    messages: list[list[dict[str, Any]]]  # order a-first, then b-first
    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    results: list[str] = field(default_factory=list)  # "A" | "B" | "tie" | "!problem"


def pair_jobs(settings: Settings, judge: Judge, cases: Mapping[str, Planned],
              replies: Callable[[Planned], list[Response]]) -> list[PairJob]:
    """Both orders of every pair of contenders of each arena case (by owner)."""
    from . import arena

    jobs = []
    for owner, plan in cases.items():
        answers = dict(zip(plan.contenders, replies(plan), strict=False))
        if any(r.error for r in answers.values()):
            continue  # the case errors on its own replies
        q = plan.question
        for a, b in arena.pairs(list(plan.contenders)):
            ta, tb = answers[a].output, answers[b].output
            msgs = [arena.messages(judge, q, ta, tb), arena.messages(judge, q, tb, ta)]
            job = PairJob(owner, plan.case_id, a, b, judge, msgs)
            job.requests = [_pair_request(settings, judge, m, plan.meta) for m in msgs]
            jobs.append(job)
    return jobs


def _pair_request(settings: Settings, judge: Judge, messages: list[dict[str, Any]], meta: dict[str, Any]
                  ) -> Request:
    from . import arena

    return build_request(settings, judge.model, messages, meta, params=arena.request_params(judge), defaults=False,
                         judge=True)


def run_pairs(engine: Any, jobs: list[PairJob], settings: Settings, wait: Callable[[], None]) -> None:
    """Ask both orders of every pair; repair an unusable answer once."""
    engine.submit([r for job in jobs for r in job.requests])
    wait()
    repairs = []
    for job in jobs:
        job.responses = [engine.result(r) for r in job.requests]
        job.results = [_pair_parse(r) for r in job.responses]
        for i, res in enumerate(job.results):
            if res.startswith("!") and job.responses[i].error is None:
                msgs = judges.repair_messages(job.messages[i], job.responses[i].text or "", res[1:],
                                              job.judge.language)
                repairs.append((job, i, _pair_request(settings, job.judge, msgs, job.requests[i].meta)))
    if repairs:
        engine.submit([req for _, _, req in repairs])
        wait()
        for job, i, req in repairs:
            resp = engine.result(req)
            job.responses.append(resp)
            fixed = _pair_parse(resp)
            job.results[i] = fixed if not fixed.startswith("!") else f"{fixed}; raw answer: {(resp.text or '')[:200]!r}"


def _pair_parse(resp: Response) -> str:
    from . import arena

    if resp.error:
        return f"!the judge's call failed: {resp.error}"
    try:
        return arena.parse(resp.text)
    except JudgeError as exc:
        return f"!{exc}"


def pair_result(job: PairJob) -> dict[str, Any]:
    from . import arena

    problems = [r[1:] for r in job.results if r.startswith("!")]
    if problems:
        return {"case": job.case, "a": job.a, "b": job.b, "error": problems[0]}
    winner, flipped = arena.combine(job.results[0], job.results[1], job.a, job.b)
    return {"case": job.case, "a": job.a, "b": job.b, "winner": winner, "flipped": flipped,
            "verdicts": list(job.results)}
