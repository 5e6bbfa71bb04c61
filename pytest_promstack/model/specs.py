"""The assertion language: the CSV shorthand (``contains:환불``, ``not-icontains:x``,
``levenshtein(5):Paris``) and the structured form, parsed into ``AssertionSpec``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from .types import AssertionSpec

# a type qualified by a second part (promptfoo's similar:dot(0.8):x, not-similar:euclidean:x)
QUALIFIED = re.compile(r"^(?P<not>not-)?(?P<type>[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*)(?:\((?P<arg>[^)]*)\))?"
                       r"(?::(?P<value>.*))?$", re.S)
SHORTHAND = re.compile(r"^(?P<not>not-)?(?P<type>[a-z][a-z0-9_-]*)(?:\((?P<arg>[^)]*)\))?(?::(?P<value>.*))?$", re.S)


NEEDS_JUDGE = "llm-expectation"


# promptfoo's model-graded types, judged here by the default judge with one criterion each
# (score/judging.MODEL_GRADED); a value is the expected answer or the criterion where it needs one
# conversation judges (DeepEval's): on a conversation's own assertions they read its transcript
CONVERSATION_JUDGED = ("goal-achieved", "role-adherence", "knowledge-retention")
MODEL_GRADED = ("factuality", "model-graded-factuality", "model-graded-closedqa", "answer-relevance",
                "context-faithfulness", "context-recall", "context-relevance", "g-eval", "classifier",
                *CONVERSATION_JUDGED)
NEEDS_VALUE = ("factuality", "model-graded-factuality", "model-graded-closedqa", "context-recall", "g-eval")
SELECT_BEST = "select-best"  # one verdict over the replies of one test's prompts x models (score/judging.py)
JUDGED = ("judge", "llm-rubric", "grade", NEEDS_JUDGE, *MODEL_GRADED, SELECT_BEST)
# the types whose own calls (an embedding, a moderation) are made in the judge phase (score/measures.py)
MEASURED = ("similar", "similar:cosine", "similar:dot", "similar:euclidean", "moderation")


def spec_id(spec: AssertionSpec) -> str:
    """Identifies an assertion within a case (for its judge verdict)."""
    return f"{spec.origin}|{spec.type}|{json.dumps(spec.value, sort_keys=True, ensure_ascii=False, default=str)}"


class AssertionSyntaxError(ValueError):
    pass


# promptfoo's CSV rules (its csv.ts and test/csv.test.ts): ``file://x.py`` and ``file://x.py:fn`` are
# python checks (the extension in any case; the file name itself has no ':', '?' or '#'); any
# other ``scheme://...`` cell is an equals value, not a type named ``file`` or ``http``
PYTHON_FILE = re.compile(r"^file://(?:[^?]*[/\\])?[^/\\:?#]+\.py(?::[^:/\\?#]+)?$", re.I)
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
JAVASCRIPT = ("javascript:", "fn:", "eval:")
JAVASCRIPT_FILE = re.compile(r"^file://(?:[^?]*[/\\])?[^/\\:?#]+\.(?:js|ts|mjs|cjs)(?::[A-Za-z_$][\w$]*)?$", re.I)
ALIASES = {"grade": "llm-rubric"}  # a promptfoo CSV's grade:x is llm-rubric
# types whose CSV form without "(N)" gets a threshold (promptfoo: similar 0.8, the rest 0.75)
CSV_THRESHOLD = {"similar": 0.8, **dict.fromkeys(
    ("answer-relevance", "classifier", "context-faithfulness", "context-recall", "context-relevance", "cost",
     "latency", "levenshtein", "perplexity", "perplexity-score", "rouge-n", "rouge-l", "rouge-s", "starts-with"),
    0.75)}
RAW_VALUE = ("is-json", "contains-json")  # a schema after is-json: is kept as written


def parse_shorthand(text: str, known: Callable[[str], bool]) -> AssertionSpec | None:
    """A CSV ``__expected`` cell, read as promptfoo reads one: ``contains:환불``,
    ``not-icontains:error``, ``levenshtein(5):Paris``, ``file://check.py:fn``; plain text is
    ``equals``. Returns None for an empty cell; raises on an unknown type."""
    text = text.lstrip()
    if not text.strip():
        return None
    if text.startswith(JAVASCRIPT) or JAVASCRIPT_FILE.match(text.rstrip()):
        raise AssertionSyntaxError(javascript_refused(text.strip()))
    if PYTHON_FILE.match(text.rstrip()):
        return AssertionSpec("python", text.strip())
    m = QUALIFIED.match(text)
    if m is None or not (known(m.group("type")) or promptfoo_unsupported(m.group("type"))):
        m = SHORTHAND.match(text)  # similar:cosine similarity text is similar, valued "cosine similarity text"
    has_value = m is not None and m.group("value") is not None
    if m is not None and not has_value and not URL.match(text) and promptfoo_unsupported(m.group("type")):
        raise AssertionSyntaxError(promptfoo_unsupported(m.group("type")) or "")  # moderation, similar: a type
    if m is None or URL.match(text) or (not has_value and not known(m.group("type"))):
        return AssertionSpec("equals", text.strip())
    name = ALIASES.get(m.group("type"), m.group("type"))
    if not known(name):
        raise AssertionSyntaxError(promptfoo_unsupported(name) or name)
    value = m.group("value")
    if value is not None and name not in RAW_VALUE:
        value = value.rstrip()
        if name == "python":
            value = value.strip()
    if name in LISTS and value is not None and not value.lstrip().startswith("["):
        try:  # split now, as promptfoo does: each item renders {{ var }} on its own
            value = split_list(value)
        except ValueError as exc:
            raise AssertionSyntaxError(f"{name}: {value!r}: {exc}") from None
    threshold = CSV_THRESHOLD.get(name)
    if m.group("arg"):
        try:
            threshold = float(m.group("arg"))
        except ValueError:
            raise AssertionSyntaxError(f"{name}: threshold {m.group('arg')!r} is not a number") from None
    return AssertionSpec(f"{m.group('not') or ''}{name}", value, threshold)


def javascript_refused(code: str) -> str:
    """One line for a promptfoo ``javascript`` assertion: what to write instead."""
    return (f"javascript assertions are not run here ({code[:60]!r}); write the check as python:, e.g. "
            "python: 'refund' in output.lower() (for output.includes('refund')) or python: len(output) < 100 "
            "(for output.length < 100), or file://check.py:fn")


# promptfoo's assertion types that are not run here, and what to write instead
PROMPTFOO_UNSUPPORTED = {
    "webhook": "a webhook check sends the output to a URL, and a test file never makes the run call a URL; write "
               "the check as python: (or file://check.py:fn)",
    "trajectory:goal-success": "a judge's verdict on whether the agent reached its goal; write it as goal-achieved "
                               "(judged over a conversation's transcript, its tool calls included) or as an "
                               "llm-rubric over the answer (llm-rubric: the flight to 대구 was booked)",
    "pi": "pi (prompt-injection scoring) is not run here",
    "guardrails": "guardrails checks a provider's own guardrail verdict, which is not recorded here",
}


def promptfoo_unsupported(name: str) -> str | None:
    """The one line for a promptfoo assertion type we do not run, or None."""
    why = PROMPTFOO_UNSUPPORTED.get(name)
    return f"{name}: {why}" if why else None


def from_structured(item: Any, known: Callable[[str], bool],
                    members: Callable[[int, Any], AssertionSpec] | None = None) -> AssertionSpec:
    """``{type, value, threshold, weight}`` (YAML/JSON) or a shorthand string. An
    ``assert-set`` needs ``members``, which reads its ``assert:`` items (``(index, item) ->
    spec``, so the reader can check each and name it); without it the set is refused."""
    if isinstance(item, str):
        spec = parse_shorthand(item, known)
        if spec is None:
            raise AssertionSyntaxError("empty assertion")
        return spec
    if not isinstance(item, dict) or "type" not in item:
        raise AssertionSyntaxError("an assertion is a string like 'contains:x' or {type: ..., value: ...}")
    if str(item["type"]).removeprefix("not-") == ASSERT_SET:
        return _assert_set(item, members)
    extra = set(item) - ASSERTION_KEYS
    if str(item["type"]).removeprefix("not-") == "classifier" and isinstance(item.get("provider"), str):
        # promptfoo's HuggingFace model, which does not run offline: the default judge classifies
        # instead (docs/promptfoo.md#classifier), so a promptfoo file runs as it is
        extra.discard("provider")
    if extra:
        key = sorted(extra)[0]
        hint = NOT_YET.get(key, f"known keys: {', '.join(sorted(ASSERTION_KEYS))}")
        raise AssertionSyntaxError(f"assertion key {key!r} is not supported here; {hint}")
    name = str(item["type"])
    if name.removeprefix("not-") == "javascript":
        raise AssertionSyntaxError(javascript_refused(str(item.get("value", ""))))
    if not known(name.removeprefix("not-")):
        raise AssertionSyntaxError(promptfoo_unsupported(name.removeprefix("not-")) or name.removeprefix("not-"))
    transform = item.get("transform")
    if transform is not None and not (isinstance(transform, str) and transform.strip()):
        raise AssertionSyntaxError("transform: write a python expression over output, or file://x.py:fn")
    metric = item.get("metric")
    return AssertionSpec(name, item.get("value"), _number(item, "threshold"), _number(item, "weight", 1.0),
                         metric=None if metric is None else str(metric),
                         transform=(transform.strip(),) if transform else ())


ASSERTION_KEYS = {"type", "value", "threshold", "weight", "metric", "transform"}

# promptfoo's assert-set: assertions scored as one (score/assertions._assert_set)
ASSERT_SET = "assert-set"
SET_KEYS = {"type", "assert", "threshold", "weight", "metric"}


def _assert_set(item: dict[str, Any], members: Callable[[int, Any], AssertionSpec] | None) -> AssertionSpec:
    if str(item["type"]) != ASSERT_SET:
        raise AssertionSyntaxError("not-assert-set: an assert-set cannot be negated (promptfoo has no "
                                   "not-assert-set); negate the assertions inside it")
    extra = sorted(set(item) - SET_KEYS, key=str)
    if extra:
        hint = ("its assertions go under assert:" if extra[0] == "value" else
                f"an assert-set has {', '.join(sorted(SET_KEYS))}")
        raise AssertionSyntaxError(f"assert-set: key {extra[0]!r} is not supported here; {hint}")
    inner = item.get("assert")
    if not isinstance(inner, list) or not inner:
        raise AssertionSyntaxError("assert-set: list its assertions under assert:, e.g. "
                                   "assert: [{type: contains, value: 환불}, {type: is-json}]")
    if members is None:
        raise AssertionSyntaxError("assert-set groups the assertions of one test: write it in a test file's assert: "
                                   "list; here, list its assertions themselves")
    for j, raw in enumerate(inner):
        if isinstance(raw, dict) and str(raw.get("type", "")).removeprefix("not-") == ASSERT_SET:
            raise AssertionSyntaxError(f"assert[{j}]: an assert-set cannot hold another assert-set (promptfoo "
                                       "refuses it too); list the inner set's assertions in the outer one")
    specs = tuple(members(j, raw) for j, raw in enumerate(inner))
    metric = item.get("metric")
    return AssertionSpec(ASSERT_SET, specs, _number(item, "threshold"), _number(item, "weight", 1.0),
                         metric=None if metric is None else str(metric))


def flatten_sets(spec: AssertionSpec) -> list[AssertionSpec]:
    """How an assert-set is kept in a case's list: the set, whose value is then the number of
    assertions after it that are its own, followed by them. So whatever looks at a case's
    assertions (judges, ``{{ var }}`` values, the python policy) sees every one of them;
    ``group_sets`` puts them back in the set for scoring. Any other spec is itself."""
    if spec.type != ASSERT_SET or not isinstance(spec.value, tuple):
        return [spec]
    return [replace(spec, value=len(spec.value)), *spec.value]


def group_sets(asserts: Sequence[AssertionSpec]) -> list[AssertionSpec]:
    """The inverse of ``flatten_sets`` over a case's list: each set holding its assertions."""
    out: list[AssertionSpec] = []
    i = 0
    while i < len(asserts):
        spec = asserts[i]
        if spec.type == ASSERT_SET and isinstance(spec.value, int):
            out.append(replace(spec, value=tuple(asserts[i + 1:i + 1 + spec.value])))
            i += 1 + spec.value
        else:
            out.append(spec)
            i += 1
    return out
NOT_YET = {  # promptfoo's other assertion keys, and what to write instead
    "provider": "the judge is set for the project (default_judge:, judges:) or per assertion as judge:NAME; "
                "similar's embedding model as embedding_model:, moderation's as moderation_model:",
    "rubricPrompt": "a judge's template is a file named in judges: (prompt: judges/custom.j2) in promstack.yaml",
    "config": "a python check reads the case's vars (context['vars']); put its settings there",
    "contextTransform": "give the context as a variable of the case (vars: {context: ...})",
}


def as_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _number(item: dict[str, Any], key: str, default: float | None = None) -> Any:
    """An assertion's ``threshold`` or ``weight`` as a number; anything else is the row's error."""
    value = item.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int | float | str):  # a bool too: false is 0, as JavaScript (and promptfoo) reads it
        raise AssertionSyntaxError(f"{key}: {value!r} is not a number; write e.g. {key}: 0.8")
    try:
        number = float(value)
    except ValueError:
        raise AssertionSyntaxError(f"{key}: {value!r} is not a number; write e.g. {key}: 0.8") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AssertionSyntaxError(f"{key}: {value!r} is not a finite number")
    return number


def bounds(value: Any) -> tuple[float | None, float | None]:
    """``length``'s value: ``<=200``, ``>=10``, ``10..200``, ``..200``, ``200`` (at most) or
    ``{min, max}``; raises ValueError for anything else."""
    if isinstance(value, dict):
        return as_float(value.get("min")), as_float(value.get("max"))
    text = str(value).strip()
    if text.startswith("<="):
        return None, float(text[2:])
    if text.startswith(">="):
        return float(text[2:]), None
    if ".." in text:
        lo, hi = text.split("..", 1)
        return (as_float(lo) if lo.strip() else None), (as_float(hi) if hi.strip() else None)
    return None, float(text)


def word_bounds(value: Any) -> tuple[int | None, int | None]:
    """``word-count``'s value: a number (exactly that many), ``{min, max}`` (either or both), or
    in a CSV cell our ``3..7``, ``>=3``, ``<=7``; raises ValueError with the fix otherwise."""
    if value is None or value == "":
        raise ValueError("word-count needs a value: a number (word-count:50) or {min: 10, max: 50}")
    if isinstance(value, dict):
        if set(value) - {"min", "max"} or not value:
            raise ValueError("word-count: an object has min and/or max, e.g. {min: 10, max: 50}")
        lo, hi = (None if value.get(k) is None else _whole(value[k]) for k in ("min", "max"))
    elif isinstance(value, str) and (".." in value or value.strip()[:2] in ("<=", ">=")):
        lo_f, hi_f = bounds(value)
        lo, hi = (None if b is None else _whole(b) for b in (lo_f, hi_f))
    else:
        lo = hi = _whole(value)
    if lo is None and hi is None:
        raise ValueError("word-count: give min and/or max")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"word-count: min ({lo}) is more than max ({hi})")
    return lo, hi


# ``is-sql``/``contains-sql``'s databaseType: promptfoo passes it to node-sql-parser, whose names
# (any case) are on the left; the sqlglot dialect that reads each is on the right. The last six
# are sqlglot's, which node-sql-parser lacks (an extension); DB2, FlinkSQL and Noql have no dialect.
SQL_DATABASES = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgres", "redshift": "redshift",
                 "sqlite": "sqlite", "transactsql": "tsql", "bigquery": "bigquery", "snowflake": "snowflake",
                 "hive": "hive", "athena": "athena", "trino": "trino", "oracle": "oracle", "duckdb": "duckdb",
                 "clickhouse": "clickhouse", "spark": "spark", "databricks": "databricks", "presto": "presto"}
SQL_NAMES = ("MySQL, MariaDB, PostgreSQL, Redshift, SQLite, TransactSQL, BigQuery, Snowflake, Hive, Athena, Trino, "
             "Oracle, DuckDB, ClickHouse, Spark, Databricks, Presto")
SQL_KEYS = ("databaseType", "allowedTables", "allowedColumns")
NO_DIALECT = ("db2", "flinksql", "noql")


def sql_options(kind: str, value: Any) -> tuple[str, str, list[str] | None, list[str] | None]:
    """``is-sql``'s value, promptfoo's ``{databaseType, allowedTables, allowedColumns}`` (all
    optional): (the database's name as written, its sqlglot dialect, allowed table authorities,
    allowed column authorities). Raises ValueError with the fix."""
    if value is None or value == "" or value == {}:
        return "MySQL", "mysql", None, None
    example = f"{kind}: {{databaseType: PostgreSQL, allowedTables: ['select::null::users']}}"
    if not isinstance(value, dict):
        raise ValueError(f"{kind}: the value is a mapping of databaseType, allowedTables and allowedColumns, not "
                         f"{str(value)[:40]!r}; write it in YAML, e.g. {example}")
    unknown = [str(k) for k in value if k not in SQL_KEYS]
    if unknown:
        raise ValueError(f"{kind}: unknown key {unknown[0]!r}; the value has {', '.join(SQL_KEYS)} (e.g. {example})")
    name = value.get("databaseType") or "MySQL"
    dialect = SQL_DATABASES.get(name.lower()) if isinstance(name, str) else None
    if dialect is None:
        why = "sqlglot, our parser, has no dialect for it" if str(name).lower() in NO_DIALECT else "not one we know"
        raise ValueError(f"{kind}: databaseType {str(name)[:40]!r}: {why}; write one of {SQL_NAMES}")
    return name, dialect, _authorities(kind, value, "allowedTables"), _authorities(kind, value, "allowedColumns")


def _authorities(kind: str, value: dict[str, Any], key: str) -> list[str] | None:
    entries = value.get(key)
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
        form, example = (
            ("<statement>::<database or null>::<table>", "['select::null::users', '(select|insert)::null::orders']")
            if key == "allowedTables" else
            ("<statement>::<table or null>::<column>", "['select::null::name', 'update::users::email']"))
        raise ValueError(f"{kind}: {key} is a list of authorities {form} (regular expressions), e.g. {example}")
    import regex

    for entry in entries:
        try:
            regex.compile(entry)
        except regex.error as exc:
            raise ValueError(f"{kind}: {key} entry {entry!r} is not a valid regular expression ({exc}); "
                             "fix the pattern") from None
    return entries


def _whole(value: Any) -> int:
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"word-count: {value!r} is not a number of words; write word-count:50 or "
                         "{min: 10, max: 50}") from None
    if n != int(n) or n < 0:
        raise ValueError(f"word-count: {value!r} is not a whole number of words")
    return int(n)


REFERENCED = ("bleu", "gleu", "meteor", "rouge-n")  # scored against reference text


NEEDS_TEXT = ("contains", "icontains", "starts-with", "contains-any", "contains-all", "icontains-any",
              "icontains-all", "regex")  # an empty value would pass every output


LISTS = ("contains-any", "contains-all", "icontains-any", "icontains-all", "no-banned-words")


def split_list(text: str) -> list[str]:
    """A comma list as promptfoo reads one (``contains-any:환불,"a, b"``): items are trimmed and
    empty ones skipped; an item in double quotes keeps its commas and spaces, with ``""`` or
    ``\\"`` for a quote and ``\\\\`` for a backslash. Raises ``ValueError`` for a quote left
    open or text after a closing quote."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        if text[i] != '"':
            end = text.find(",", i)
            end = n if end < 0 else end
            out.append(text[i:end].strip())
            i = end
            continue
        item, i = _quoted(text, i)
        out.append(item)
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] != ",":
            raise ValueError(f"text after the quoted item {item!r}; put a comma after its closing quote")
    return out


def _quoted(text: str, start: int) -> tuple[str, int]:
    item, i, n = [], start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
            item.append(text[i + 1])
            i += 2
        elif c == '"' and i + 1 < n and text[i + 1] == '"':
            item.append('"')
            i += 2
        elif c == '"':
            return "".join(item), i + 1
        else:
            item.append(c)
            i += 1
    raise ValueError(f"the quote opened at {text[start:start + 20]!r} is never closed; close it with \"")


def value_problem(spec: AssertionSpec) -> str | None:
    """What is wrong with the value of a built-in assertion, with the fix, found when the file
    is read (not after the model was called): ``length:abc``, ``latency:soon``, ``regex:(``,
    ``contains:`` with nothing after it."""
    kind, value = spec.type.removeprefix("not-"), spec.value
    if kind == ASSERT_SET and (spec.type != ASSERT_SET or not isinstance(value, tuple)):
        return ("assert-set is written in YAML or JSON, not negated: {type: assert-set, assert: [...]} with its "
                "assertions under assert:")
    empty = value is None or (isinstance(value, str) and not value.strip()) or value == []
    if kind in NEEDS_TEXT and empty:
        return f"{kind} needs a value, which an empty one would match in any output: write {kind}:환불"
    if kind == SELECT_BEST and (spec.type != SELECT_BEST or empty or not isinstance(value, str)):
        return ("select-best takes the criterion as text and cannot be negated: write select-best:<criterion> "
                "(e.g. select-best:the most polite reply)")
    if kind == "classifier" and (empty or not isinstance(value, str)):
        return ("classifier needs the expected class as text (the judge is asked whether the reply is of it): "
                "write classifier:<class>, e.g. classifier(0.75):positive")
    if kind in NEEDS_VALUE and empty:
        what = "the criterion" if kind == "model-graded-closedqa" else "the expected answer"
        return f"{kind} needs {what} as its value: write {kind}:<text>"
    try:
        if kind == "length":
            lo, hi = bounds(value)
            if lo is None and hi is None:
                raise ValueError
        elif kind in ("latency", "cost") and not (empty and spec.threshold is not None):
            float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        example = {"length": "length:<=200, length:>=10 or length:10..200", "latency": "latency:5000 (ms)",
                   "cost": "cost:0.002 (USD)"}[kind]
        if empty:
            return f"{kind} needs a limit: write {example}" + (", or a threshold" if kind != "length" else "")
        return f"{kind}: {value!r} is not a limit; write {example}"
    if kind == "word-count":
        try:
            word_bounds(value)
        except ValueError as exc:
            return str(exc)
    if kind in REFERENCED and not ((isinstance(value, str) and value.strip()) or (
            kind != "rouge-n" and isinstance(value, list) and value and all(isinstance(v, str) for v in value))):
        more = "" if kind == "rouge-n" else ", or a list of references in YAML"
        return f"{kind} compares with reference text: write {kind}:<text>{more}"
    if kind in ("is-xml", "contains-xml") and isinstance(value, dict) and set(value) != {"requiredElements"}:
        return (f"{kind}: the value names required elements: a comma list (analysis.color,analysis.size), a list, "
                "or {requiredElements: [...]}")
    if kind in ("is-sql", "contains-sql"):
        try:
            sql_options(kind, value)
        except ValueError as exc:
            return str(exc)
    if kind == "tool-call-f1" and not any(str(v).strip() for v in (value if isinstance(value, list) else
                                                                   str(value or "").split(","))):
        return ("tool-call-f1 needs the names of the tools the model should call: write "
                "tool-call-f1:get_weather,book_flight (or value: [get_weather, book_flight])")
    if kind in ("tool-called", "tool-args-match"):
        return tool_value_problem(spec)
    if kind.startswith("trajectory:"):
        from . import trajectory_values

        return trajectory_values.problem(kind, value) if kind in trajectory_values.KINDS else None
    if kind == "leaks-prompt" and not empty:
        return (f"{spec.type} takes no value (it compares the answer with the request's system prompt and its "
                f"canary): write {spec.type} alone")
    if kind in ("no-pii", "no-secrets"):
        from . import safety_values

        return safety_values.privacy_problem(kind, value)
    if kind in ("injection-score", "no-invisible-text", "no-banned-words"):
        from . import safety_values

        return safety_values.problem(kind, value, spec.threshold)
    if kind == "levenshtein" and not isinstance(value, str):
        return f"levenshtein compares with text: write the value as a string (value: '{value}')"
    if kind in LISTS and isinstance(value, str) and not value.lstrip().startswith("["):
        try:
            split_list(value)
        except ValueError as exc:
            return f"{kind}: {value!r}: {exc}"
    if kind == "regex":
        import regex

        try:
            regex.compile(str(value))
        except regex.error as exc:
            return f"regex: {value!r} is not a valid regular expression ({exc}); fix the pattern"
    if kind == "json-path":
        try:
            json_path_parts(value)
        except ValueError as exc:
            return str(exc)
    return None


JSON_PATH_OPS = ("==", "!=", "<=", ">=", "<", ">")  # the two-character ones first
JSON_PATH_WORDS = ("contains", "matches")
JSON_PATH_EXAMPLE = ('write json-path:$.label == "billing", json-path:$.items[*].price < 100 or '
                     'json-path:$.customer.name')


def json_path_parts(value: Any) -> tuple[Any, str | None, Any]:
    """``$.label == "billing"`` as (compiled path, operator, literal), or (path, None, None)
    for ``$.customer.name`` (it must exist and not be null). The path is RFC 9535 JSONPath
    (python-jsonpath); the literal is JSON. Raises ``ValueError`` with the fix."""
    text = value.strip() if isinstance(value, str) else ""
    if not text.startswith("$"):
        return _json_path_bad(value, "needs a JSONPath starting with $")
    path, op, literal = _split_comparison(text)
    env, error = _rfc9535()
    try:
        compiled = env.compile(path)
    except error as exc:
        return _json_path_bad(value, f"the path {path!r} is not valid JSONPath ({str(exc).splitlines()[0]})")
    if op is None:
        return compiled, None, None
    try:
        expected = json.loads(literal)
    except json.JSONDecodeError:
        return _json_path_bad(value, f"{literal!r} after {op} is not a JSON literal (strings in double quotes, "
                              "numbers, true, false, null)")
    if op in ("<", "<=", ">", ">=") and not _orderable(expected):
        return _json_path_bad(value, f"{op} compares with a number or a string, not {literal}")
    if op == "matches":
        import regex

        if not isinstance(expected, str):
            return _json_path_bad(value, 'matches takes a regular expression in double quotes: matches "^[0-9]+$"')
        try:
            regex.compile(expected)
        except regex.error as exc:
            return _json_path_bad(value, f"{expected!r} is not a valid regular expression ({exc})")
    return compiled, op, expected


@functools.cache
def _rfc9535() -> tuple[Any, type[Exception]]:
    """python-jsonpath held to RFC 9535 (no extensions of its own), and its syntax error class
    from the same import, imported when a json-path assertion is first read."""
    import jsonpath

    return jsonpath.JSONPathEnvironment(strict=True), jsonpath.JSONPathError


def _orderable(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _json_path_bad(value: Any, why: str) -> Any:
    raise ValueError(f"json-path: {value!r}: {why}; {JSON_PATH_EXAMPLE}")


def _split_comparison(text: str) -> tuple[str, str | None, str]:
    """(path, operator, literal text): the first operator outside brackets, parentheses and
    quotes (a filter's own ``==`` in ``$.items[?@.id == 1].price`` stays in the path)."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0:
            op = next((o for o in JSON_PATH_OPS if text.startswith(o, i)), None)
            if op is None and text[i - 1].isspace():
                op = next((w for w in JSON_PATH_WORDS if text.startswith(w, i) and text[i + len(w):i + len(w) + 1]
                           .isspace()), None)
            if op is not None:
                return text[:i].strip(), op, text[i + len(op):].strip()
        i += 1
    return text, None, ""


TOOL_NAME = re.compile(r"^[^\s,]+$")


def tool_value_problem(spec: AssertionSpec) -> str | None:
    """``tool-called``: no name, a name, a comma list or a list of names (negated: one at
    most); ``tool-args-match``: ``{name, args: {...}}`` or ``{name, schema: {...}}``."""
    kind, value = spec.type.removeprefix("not-"), spec.value
    if kind == "tool-called":
        items = value if isinstance(value, list) else [] if value is None else str(value).split(",")
        named = [str(v).strip() for v in items if str(v).strip()]
        if not all(isinstance(v, str) and (TOOL_NAME.match(v.strip()) or "{{" in v) for v in items):
            return f"tool-called: {value!r} is not a tool name; write tool-called:get_weather (or a list of names)"
        if spec.type != kind and len(named) > 1:
            return ("not-tool-called takes one name (it fails when that tool is called): write one "
                    "not-tool-called:NAME per tool, or not-tool-called with no name for no call at all")
        return None
    shape = "write the value as {name: TOOL, args: {key: value}} or {name: TOOL, schema: {type: object, ...}}"
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
        return f"tool-args-match: {shape}"
    extra = sorted(set(value) - {"name", "args", "schema"})
    if extra or ("args" in value) == ("schema" in value):
        unknown = f"unknown key {extra[0]!r}; " if extra else ""
        return f"tool-args-match: {unknown}{shape} (one of args, schema)"
    if "args" in value and not isinstance(value["args"], dict):
        return (f"tool-args-match: args: is {type(value['args']).__name__}, a mapping of argument names to "
                f"values; {shape}")
    if "schema" in value and not isinstance(value["schema"], dict | str):
        return f"tool-args-match: schema: write a JSON schema mapping; {shape}"
    return None
