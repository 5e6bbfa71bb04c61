"""promptfoo's own specification of its deterministic assertions, run against ours.

``tests/data/promptfoo_cases.yaml`` holds promptfoo's unit-test cases as data (see the README
there): each one is written as a promptfoo test file, read by our ``Loader`` (so ``file://``,
thresholds and read-time checks count), scored by our assertions on a reply with the case's
output, finish reason, cost and latency, and must give promptfoo's verdict (and its score,
where the test states one). Its ``csv_shorthand`` table is promptfoo's CSV loader tests: each
cell must parse to promptfoo's assertion.

Where we differ on purpose, the case is a strict xfail naming why (``DIFFERENT``, listed on the
migration page); a type we do not have yet is a strict xfail too, so adding it turns its cases
into failures until they agree. ``python -m tests.unit.test_promptfoo_cases`` prints the
agreement per type.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_promstack.execute.stored import function_call_of, tool_calls_of
from pytest_promstack.model.specs import LISTS, AssertionSyntaxError, parse_shorthand, value_problem
from pytest_promstack.model.types import Response
from pytest_promstack.plan.cases import Loader
from pytest_promstack.plan.tools import TOOL_PARAMS, prepared
from pytest_promstack.plan.values import ValueProblem
from pytest_promstack.score.assertions import _items
from pytest_promstack.score.case import score_reply
from pytest_promstack.score.ngrams import _NoSynonyms, wordnet
from pytest_promstack.score.registry import builtin_registry

DATA = yaml.safe_load((Path(__file__).parents[1] / "data" / "promptfoo_cases.yaml").read_text(encoding="utf-8"))
REGISTRY = builtin_registry()

# promptfoo's verdict, which we do not give on purpose: source (or CSV cell) -> why
DIFFERENT: dict[str, str] = {  # keyed by source, or "source | note" where a source has several cases
    **dict.fromkeys([f"test/assertions/cost-latency-threshold-edge-cases.test.ts: Cost and Latency Assertion Threshold "
                     f"Edge Cases: {kind} assertion threshold handling: should handle various falsy threshold values | "
                     f"threshold=null, {what}=0; promptfoo compares {what} <= threshold, and JavaScript reads null and "
                     "false as 0 there" for kind, what in (("Cost", "cost"), ("Latency", "latency"))],
                    "a cost or latency check with threshold: null is refused when the file is read (it has no "
                    "limit); promptfoo's JavaScript compares with null as 0"),
    **dict.fromkeys(["'cost:Expected output'", "'latency:Expected output'"],
                    "cost:X and latency:X read X as the limit (cost:0.002, latency:5000) and refuse text; promptfoo "
                    "ignores the value and uses a limit of 0.75 (USD or ms): write cost(0.002) for its form"),
    "test/assertions/trajectory.test.ts: trajectory assertions: trajectory:tool-sequence: rejects invalid sequence "
    "values": "trajectory:tool-sequence reads text as a comma list of tools in order (a CSV cell has no other way to "
              "write a sequence); promptfoo refuses text",
}
if isinstance(wordnet(), _NoSynonyms):  # nltk's WordNet data is a download of its own
    DIFFERENT.update(dict.fromkeys(
        [f"test/assertions/meteor.integration.test.ts: METEOR assertions with natural: {title}" for title in
         ("combines real Porter stemming and WordNet synonym matching",
          "routes a real not-meteor assertion through the assertion pipeline")],
        "METEOR aligns synonyms (couch/sofa) only with nltk's WordNet data installed "
        "(python -m nltk.downloader wordnet); without it, words and stems"))


@dataclass
class Verdict:
    agrees: bool
    detail: str


def _loader(root: Path) -> Loader:
    return Loader(root, REGISTRY.assertions.__contains__, REGISTRY.suggest)


def _reply(case: dict[str, Any]) -> Response:
    given = case.get("provider_response") or {}
    text, calls, function_call = _answer(case.get("output"))
    return Response(text=text, finish_reason=given.get("finishReason"),
                    cost_usd=given.get("cost"), latency_ms=given.get("latencyMs"),
                    logprobs=tuple(given["logProbs"]) if given.get("logProbs") is not None else None,
                    tool_calls=calls, function_call=function_call)


def _answer(output: Any) -> tuple[str, tuple[dict[str, Any], ...] | None, dict[str, Any] | None]:
    """(text, tool calls, function call) of the reply a case's output stands for. An OpenAI
    message (a list of tool calls, ``{content?, tool_calls}``, a function call ``{name,
    arguments}`` or ``{function_call}``) is a reply that called tools, read as the transports
    read one (``tool_calls_of``); any other structured output (Anthropic's or Google's blocks,
    a provider's own object) is its JSON text, as promptfoo stringifies it."""
    if output is None or isinstance(output, str):
        return output or "", None, None
    message = ({"tool_calls": output} if isinstance(output, list) else
               output if isinstance(output, dict) and set(output) <= {"content", "tool_calls", "function_call"} else
               {"function_call": output} if isinstance(output, dict) and set(output) == {"name", "arguments"} else None)
    content = (message or {}).get("content")
    if message is not None and isinstance(content, str | None) and (message.get("tool_calls") or
                                                                    message.get("function_call")):
        try:
            calls = tool_calls_of([_openai_call(c) for c in message.get("tool_calls") or ()])
            return content or "", calls, function_call_of(message.get("function_call"))
        except ValueError:
            pass  # not OpenAI's shape after all: its JSON text
    return json.dumps(output, ensure_ascii=False, separators=(",", ":")), None, None


def _openai_call(call: Any) -> Any:
    """A tool call as a case writes it, with the ``type`` and ``id`` OpenAI always sends."""
    return {"id": None, "type": "function", **call} if isinstance(call, dict) and set(call) <= {
        "id", "type", "function"} else call


def check_case(case: dict[str, Any], root: Path) -> Verdict:
    """Our verdict on one promptfoo case, read from a promptfoo-shaped test file in ``root``."""
    if case["type"].removeprefix("not-") not in REGISTRY.assertions:
        return Verdict(False, f"{case['type']} is not supported")
    for name, content in (case.get("files") or {}).items():
        text = content if isinstance(content, str) else json.dumps(content)
        (root / name).write_text(text, encoding="utf-8")
    check = {k: case[k] for k in ("type", "value", "threshold") if k in case}
    if check["type"] == "assert-set":  # the data keeps a set's assertions under value (README); promptfoo's key
        check["assert"] = check.pop("value")
    (root / "tests.yaml").write_text(yaml.safe_dump([{"vars": case.get("vars") or {}, "assert": [check]}],
                                                    allow_unicode=True), encoding="utf-8")
    (loaded,) = _loader(root).load(root / "tests.yaml")
    expected = case["pass"]
    if loaded.error:
        return Verdict(expected is None and "error" in case, f"refused when read: {loaded.error}")
    try:  # the provider's tools, as a run prepares a request's: file:// read, {{ var }} rendered
        params = {k: prepared(k, v, loaded.vars, root, root) for k, v in (case.get("provider_config") or {}).items()
                  if k in TOOL_PARAMS}
    except ValueProblem as exc:
        return Verdict(expected is None and "error" in case, f"refused when planned: {exc}")
    trajectory = None if "trajectory" not in case else [  # promptfoo's trace, as our record of the steps
        {"step": 1, "name": step["name"], "arguments": step["arguments"], "result": None} for step in case["trajectory"]]
    passed, _, scores = score_reply(REGISTRY, loaded.asserts, _reply(case), loaded.vars, {}, None, "each",
                                    params=params, trajectory=trajectory)
    score, reason = scores[0].score, scores[0].reason
    seen = f"pass={passed} score={score:.4f} ({reason})"
    if expected is None and "error" in case:
        return Verdict(not passed, f"promptfoo raises {case['error']!r}; we gave {seen}")
    agrees = expected is None or passed == expected
    if "score" in case:
        agrees = agrees and math.isclose(score, case["score"], rel_tol=1e-3, abs_tol=1e-4)
    if "score_gt" in case:
        agrees = agrees and score > case["score_gt"]
    if "score_lt" in case:
        agrees = agrees and score < case["score_lt"]
    want = {k: case[k] for k in ("pass", "score", "score_gt", "score_lt") if k in case}
    return Verdict(agrees, f"promptfoo: {want}; we gave {seen}")


def check_cell(entry: dict[str, Any]) -> Verdict:
    """A CSV ``__expected`` cell (as the CSV reader gives it) parsed by our shorthand parser
    and checked as the loader checks it, against the assertion promptfoo's parser returns.
    (Reading the files a ``file://`` names is the cases' business, above.)"""
    want = entry["parsed"]
    try:
        spec = parse_shorthand(entry["cell"], REGISTRY.assertions.__contains__)
    except AssertionSyntaxError as exc:
        return Verdict("error" in want, f"refused: {exc}")
    problem = spec and value_problem(spec)
    if problem:
        return Verdict("error" in want, f"refused: {problem}")
    if "error" in want or spec is None:
        return Verdict(False, f"promptfoo: {want}; we read {spec}")
    value = spec.value
    if spec.type.removeprefix("not-") in LISTS and value is not None:
        value = _items(value)
    got = {"type": spec.type, "value": value, "threshold": spec.threshold}
    wanted = {"type": want["type"], "value": want.get("value"), "threshold": want.get("threshold")}
    got = {k: v for k, v in got.items() if k in entry.get("checks", got)}
    wanted = {k: v for k, v in wanted.items() if k in got}
    return Verdict(got == wanted, f"promptfoo: {wanted}; we read {got}")


def _marks(key: str, kind: str, note: str | None = None) -> list[Any]:
    why = DIFFERENT.get(f"{key} | {note}") or DIFFERENT.get(key)
    if why:
        return [pytest.mark.xfail(strict=True, reason=f"deliberate: {why}")]
    name = kind.removeprefix("not-")
    if name not in REGISTRY.assertions and name.split(":")[0] not in REGISTRY.assertions:
        return [pytest.mark.xfail(strict=True, reason=f"{kind}: not supported yet")]
    return []


CASES = [pytest.param(c, id=c["source"].split(": ", 1)[1][:90], marks=_marks(c["source"], c["type"], c.get("note")))
         for c in DATA["cases"]]
CELLS = [pytest.param(e, id=repr(e["cell"])[:60], marks=_marks(repr(e["cell"]), e["parsed"].get("type", "contains")))
         for e in DATA["csv_shorthand"]]


@pytest.mark.parametrize("case", CASES)
def test_promptfoo_assertion_case(case, tmp_path):
    verdict = check_case(case, tmp_path)
    assert verdict.agrees, f"{case['source']}: {verdict.detail}"


@pytest.mark.parametrize("entry", CELLS)
def test_promptfoo_csv_shorthand(entry):
    verdict = check_cell(entry)
    assert verdict.agrees, f"{entry['source']}: {entry['cell']!r}: {verdict.detail}"


def test_the_specification_is_big_enough_and_names_its_sources():
    sources = DATA["sources"]
    assert len(DATA["cases"]) >= 200
    for case in DATA["cases"]:
        assert case["source"].split(": ", 1)[0] in sources, case["source"]


def agreement() -> dict[str, tuple[int, int]]:
    """type -> (agreeing, cases), for every case and CSV cell."""
    counts: dict[str, Counter[bool]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(DATA["cases"]):
            root = Path(tmp, f"c{i}")
            root.mkdir()
            counts.setdefault(case["type"].removeprefix("not-"), Counter())[check_case(case, root).agrees] += 1
        for entry in DATA["csv_shorthand"]:
            counts.setdefault("CSV __expected cells", Counter())[check_cell(entry).agrees] += 1
    return {k: (c[True], c[True] + c[False]) for k, c in sorted(counts.items())}


if __name__ == "__main__":
    rows = agreement()
    for kind, (ok, n) in rows.items():
        print(f"{kind:24} {ok:4} of {n:4}")
    total = [sum(x) for x in zip(*rows.values(), strict=False)]
    print(f"{'all':24} {total[0]:4} of {total[1]:4}", file=sys.stdout)
