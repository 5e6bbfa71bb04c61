"""Test files (CSV, JSON, JSONL, YAML) -> ``Case`` objects with file:row provenance.

Columns/keys are template variables, plus promptfoo's conventions (``__expected``,
``__description``, ``__metadata:key``, ``__threshold``, ...). A bad row becomes a Case
carrying its one-line error; an unreadable file raises ``CaseError``.

Bounded work per file (test files may come from someone else's pull request): a CSV has at
most ``MAX_COLUMNS`` columns and ``MAX_CELL`` characters per cell; JSON and YAML nesting and
YAML aliases are bounded in ``strict``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config.settings import PROMPTFOO_TOP
from ..model.errors import CaseError
from ..model.specs import (
    NEEDS_JUDGE,
    AssertionSyntaxError,
    flatten_sets,
    from_structured,
    parse_shorthand,
    value_problem,
)
from ..model.types import Agent, AssertionSpec, Case, Simulation, Turn, result_text
from ..util.strict import DuplicateKeyError, LimitError, load_json, load_yaml
from .values import (
    ValueProblem,
    load,
    load_var,
    matches,
    python_ref,
    resolve,
    transform_code,
    with_file_vars,
    with_files,
)

SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".yaml": "yaml", ".yml": "yaml"}
SPECIAL = ("__expected", "__description", "__metadata", "__threshold", "__prefix", "__suffix",
           "__providerOutput", "__marks", "__id", "__human_score", "__metric", "__conversation", "__tool_results",
           "__tool_impl", "__max_steps")
# what a case holds besides variables in YAML/JSON (a CSV row writes the agent's with __)
AGENT_KEYS = ("tool_results", "tool_impl", "max_steps")
SIMULATION_KEYS = ("scenario", "max_turns")
CHAINED = ("turns", *AGENT_KEYS, *SIMULATION_KEYS)
TABLE_AGENT = tuple(f"__{k}" for k in AGENT_KEYS)  # a CSV row's agent columns
SCENARIO_OF_CASE = {"instructions", "persona", "goal", "model"}
# a promptfoo test: {vars, assert, ...}; ours adds marks, id, human_score, turns and the agent's keys
PROMPTFOO_KEYS = {"vars", "assert", "description", "metadata", "threshold", "options", "provider", "providers",
                  "providerOutput", "assertScoringFunction", "marks", "id", "human_score", *CHAINED}
OPTIONS = {"prefix", "suffix", "transform", "storeOutputAs"}
TURN_KEYS = {"vars", "assert", "description", "storeOutputAs"}  # a turn's own keys; any other is a variable
MAX_TURNS = 100
MAX_STEPS = 100
EXPECTED_N = re.compile(r"^__expected\d*$")
MARK = re.compile(r"^[A-Za-z_]\w*$")
MAX_COLUMNS = 1_000
MAX_CELL = 1_048_576  # characters per CSV cell (1 MiB of ASCII)
MAX_COMBINATIONS = 1_000  # cases one promptfoo test may become through lists of values
MAX_SCENARIO_CASES = 10_000  # config entries x tests of one scenario
SCENARIO_KEYS = {"description", "config", "tests"}


def _korean_or_refuse(rel: str, text: str) -> None:
    """CP949 decodes most double-byte text without an error: a GBK (Chinese) or Shift-JIS file
    becomes Korean-looking mojibake that tests would then run on. Korean text is mostly
    Hangul syllables, and those almost all of KS X 1001's 2,350 (EUC-KR); Shift-JIS kana
    decode to Hangul too, but to syllables of CP949's extension, which Korean text seldom
    needs. When either fails, the guess is refused."""
    wide = [c for c in text if ord(c) > 0x7F]
    syllables = [c for c in wide if "\uac00" <= c <= "\ud7a3"]
    hangul = len(syllables)
    if wide and hangul < 0.8 * len(wide):
        raise CaseError(rel, None, f"is not UTF-8, and as CP949/EUC-KR only {hangul} of its {len(wide)} non-ASCII "
                        "characters are Hangul: it is probably in another encoding; save it as UTF-8, or name its "
                        "encoding in promstack.yaml (encoding: gbk, shift_jis, ...)")
    rare = sum(not _in_ks_x_1001(c) for c in syllables)
    if rare > 2 + 0.05 * hangul:
        raise CaseError(rel, None, f"is not UTF-8, and as CP949 {rare} of its {hangul} Hangul syllables are outside "
                        "EUC-KR (KS X 1001), which Korean text seldom uses: it is probably in another encoding "
                        "(Shift-JIS kana read this way); save it as UTF-8, or name its encoding in promstack.yaml "
                        "(encoding: shift_jis, cp949, ...)")


def _in_ks_x_1001(syllable: str) -> bool:
    """One of EUC-KR's 2,350 syllables: two bytes from 0xA1 up in CP949 (the extension's
    8,822 use lower bytes)."""
    code = syllable.encode("cp949")
    return len(code) == 2 and code[0] >= 0xA1 and code[1] >= 0xA1


class Loader:
    """Reads test files; ``known`` tells whether an assertion type is registered."""

    def __init__(self, root: Path, known: Callable[[str], bool], suggest: Callable[[str], str],
                 encoding: str | None = None) -> None:
        self.root, self.known, self.suggest, self.encoding = root, known, suggest, encoding
        self.decoded: dict[str, str] = {}  # files read in another encoding than UTF-8 (the header names them)
        self._base = root  # the folder of the file being read: file:// values are relative to it

    def load(self, path: Path) -> list[Case]:
        rel = self.rel(path)
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise CaseError(rel, None, f"unknown test file type; use one of {', '.join(SUFFIXES)}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CaseError(rel, None, f"cannot read: {exc.strerror}") from None
        self._base = path.resolve().parent
        return grouped(list(getattr(self, f"_{kind}")(rel, data)))

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    # -- decoding -------------------------------------------------------------------------

    def _decode(self, rel: str, data: bytes) -> str:
        if self.encoding:
            try:
                return data.decode(self.encoding)
            except (UnicodeDecodeError, LookupError) as exc:
                raise CaseError(rel, None, f"cannot decode as {self.encoding}: {exc}; "
                                "fix the encoding: setting") from None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("cp949")  # a superset of EUC-KR
        except UnicodeDecodeError:
            raise CaseError(rel, None, "is neither UTF-8 nor CP949/EUC-KR; save it as UTF-8 "
                            "or set encoding: in promstack.yaml") from None
        _korean_or_refuse(rel, text)
        self.decoded[rel] = "CP949"
        return text

    # -- formats --------------------------------------------------------------------------

    def _csv(self, rel: str, data: bytes) -> Iterator[Case]:
        text = self._decode(rel, data)
        with _cell_limit(MAX_CELL):  # read eagerly: the limit is the csv module's, process-wide
            header, rows = self._csv_rows(rel, text)
        header = [h.strip() for h in header]
        self._check_header(rel, header)
        for start, cells, problem in rows:
            if problem is not None:
                yield self._bad(rel, start, problem)
            elif len(cells) != len(header):
                yield self._bad(rel, start, f"has {len(cells)} fields but the header has {len(header)}; "
                                "quote cells that contain commas")
            else:
                yield self._flat(rel, start, dict(zip(header, cells, strict=True)), table=True)

    def _csv_rows(self, rel: str, text: str) -> tuple[list[str], list[tuple[int, list[str], str | None]]]:
        """The header, then ``(line, cells, problem)`` per non-blank row; a malformed row is the
        last (the reader cannot resync after it)."""
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise CaseError(rel, None, "is empty; the first line must name the columns") from None
        except csv.Error as exc:
            raise CaseError(rel, 1, f"malformed CSV header: {_csv_problem(exc)}") from None
        if len(header) > MAX_COLUMNS:
            raise CaseError(rel, 1, f"has {len(header):,} columns, more than the limit of {MAX_COLUMNS:,}; "
                            "split the file or move data into fewer columns")
        rows: list[tuple[int, list[str], str | None]] = []
        line = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return header, rows
            except csv.Error as exc:
                rows.append((line, [], f"malformed CSV: {_csv_problem(exc)}"))
                return header, rows
            start, line = line, reader.line_num + 1
            if cells and any(c.strip() for c in cells):
                rows.append((start, cells, None))

    def _check_header(self, rel: str, header: list[str]) -> None:
        problems = [self._unknown_special(h) for h in header]
        problems = [p for p in problems if p]
        if problems:
            raise CaseError(rel, 1, "; ".join(problems))
        dupes = sorted(h for h, n in Counter(header).items() if n > 1)
        if dupes:
            raise CaseError(rel, 1, f"duplicate column(s) {', '.join(dupes)}")

    def _unknown_special(self, key: str) -> str | None:
        if not key.startswith("__") or EXPECTED_N.match(key) or key.split(":")[0] in SPECIAL:
            return None
        close = difflib.get_close_matches(key, SPECIAL, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(SPECIAL)})"
        return f"unknown special column {key!r}{hint}"

    def _json(self, rel: str, data: bytes) -> Iterator[Case]:
        try:
            doc = load_json(self._decode(rel, data))
        except (DuplicateKeyError, LimitError) as exc:
            raise CaseError(rel, exc.line, str(exc)) from None
        except json.JSONDecodeError as exc:
            raise CaseError(rel, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        yield from self._records(rel, doc)

    def _yaml(self, rel: str, data: bytes) -> Iterator[Case]:
        import yaml

        try:
            doc = load_yaml(self._decode(rel, data))
        except (DuplicateKeyError, LimitError) as exc:
            raise CaseError(rel, exc.line, str(exc)) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            row = mark.line + 1 if mark is not None else None
            raise CaseError(rel, row, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
        yield from self._records(rel, doc)

    def _jsonl(self, rel: str, data: bytes) -> Iterator[Case]:
        for n, line in enumerate(self._decode(rel, data).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = load_json(line)
            except (DuplicateKeyError, LimitError) as exc:
                yield self._bad(rel, n, str(exc))
                continue
            except json.JSONDecodeError as exc:
                yield self._bad(rel, n, f"not valid JSON: {exc.msg} (column {exc.colno})")
                continue
            yield from self._record(rel, n, record)

    def _records(self, rel: str, doc: Any) -> Iterator[Case]:
        if isinstance(doc, dict) and (PROMPTFOO_TOP | {"scenarios"}) & set(doc):  # promptfoo: inline tests, scenarios
            tests = doc.get("tests") if isinstance(doc.get("tests"), list) else []
            for n, record in enumerate(tests, 1):
                if not isinstance(record, str):  # a file:// item is a test file of its own
                    yield from self._record(rel, n, record)
            yield from Scenarios(self, rel).cases(doc.get("scenarios"), len(tests))
            return
        if isinstance(doc, dict) and isinstance(doc.get("tests"), list):
            doc = doc["tests"]
        if not isinstance(doc, list):
            raise CaseError(rel, None, "must be a list of cases, or an object with a 'tests' list")
        for n, record in enumerate(doc, 1):
            yield from self._record(rel, n, record)

    def _record(self, rel: str, row: int, record: Any) -> list[Case]:
        """The case(s) of one record: a promptfoo test with a list of texts as a variable is one
        case per text (and per combination, for several such variables)."""
        if not isinstance(record, dict):
            return [self._bad(rel, row, f"a case must be an object, got {type(record).__name__}")]
        if "vars" in record or "assert" in record:  # promptfoo's shape; every other key is then its own
            return self._promptfoo(rel, row, record)
        if {"turns", "scenario"} & set(record) and not any(str(k).startswith("__") for k in record):
            return self._promptfoo(rel, row, record)  # a conversation written without vars: or assert:
        problems = [p for p in (self._unknown_special(k) for k in record) if p]
        if problems:
            return [self._bad(rel, row, "; ".join(problems))]
        return [self._flat(rel, row, record)]

    # -- one row --------------------------------------------------------------------------

    def _bad(self, rel: str, row: int, message: str, description: Any = None) -> Case:
        """A row that cannot run: its item fails with the one line (and keeps its name when it has one)."""
        return Case(file=rel, row=row, vars={}, description=_text(description), error=f"{rel}:{row}: {message}")

    def _flat(self, rel: str, row: int, record: dict[str, Any], table: bool = False) -> Case:
        """A flat row: plain keys are variables (a ``file://`` value read, as promptfoo reads it),
        ``__`` keys are conventions."""
        asserts: list[AssertionSpec] = []
        metadata: dict[str, Any] = {}
        try:
            reserved = set() if table else set(CHAINED) & set(record)  # a CSV's cells are text: variables all
            plain = {k: v for k, v in record.items() if not k.startswith("__") and k not in reserved}
            variables = with_file_vars(plain, self._base, self.root)
            for key, value in record.items():
                if EXPECTED_N.match(key):
                    asserts.extend(self._expected(key, value))
                elif key.startswith("__metadata:"):
                    _metadata(metadata, key[len("__metadata:"):], value)
            metric = _text(record.get("__metric"))
            if metric:  # promptfoo copies a row's __metric onto each of its assertions
                asserts = [replace(a, metric=metric) for a in asserts]
            if isinstance(variables.get("expected_output"), str) and variables["expected_output"].strip():
                asserts.append(AssertionSpec(NEEDS_JUDGE, variables["expected_output"], origin="expected_output"))
            return Case(
                file=rel, row=row, vars=variables, asserts=tuple(asserts),
                description=_text(record.get("__description")), case_id=_text(record.get("__id")),
                metadata=metadata, marks=_marks(record.get("__marks")),
                threshold=_threshold(record.get("__threshold")),
                prefix=_verbatim(record.get("__prefix")), suffix=_verbatim(record.get("__suffix")),
                provider_output=_output(record.get("__providerOutput")),
                human_score=_human(record.get("__human_score")),
                turns=self._turns(_alone(record)) if "turns" in reserved else (),
                simulation=_simulation({k: record[k] for k in SIMULATION_KEYS if k in reserved}),
                agent=self._agent({k: record[k] for k in AGENT_KEYS if k in reserved} or
                                  {k[2:]: v for k, v in record.items() if k in TABLE_AGENT and v not in (None, "")}),
                conversation=_text(record.get("__conversation")),
            )
        except (_RowProblem, ValueProblem) as exc:  # a bad row of a conversation fails that conversation
            return replace(self._bad(rel, row, str(exc), record.get("__description")),
                           conversation=_text(record.get("__conversation")))

    # -- conversations and agents -------------------------------------------------------------

    def _turns(self, raw: Any) -> tuple[Turn, ...]:
        """``turns:``: each a user message (text, its ``input``) or a mapping of its variables with
        its own ``assert:`` (or ``__expected``), ``description`` and promptfoo's ``storeOutputAs``."""
        if not isinstance(raw, list) or not raw:
            raise _RowProblem("turns: list the user's turns (text, or {input: ..., assert: [...]})")
        if len(raw) > MAX_TURNS:
            raise _RowProblem(f"turns: {len(raw):,} turns, more than {MAX_TURNS}; split the conversation")
        return tuple(self._turn(n, item) for n, item in enumerate(raw, 1))

    def _turn(self, n: int, item: Any) -> Turn:
        where = f"turns[{n - 1}]"
        if isinstance(item, str):
            return Turn(vars={"input": item}, label=f"turn {n}")
        if not isinstance(item, dict):
            raise _RowProblem(f"{where}: write the user's message as text, or a mapping {{input: ..., assert: [...]}}")
        own = item.get("vars") or {}
        if not isinstance(own, dict):
            raise _RowProblem(f"{where}.vars: must be a mapping")
        raw_asserts = item.get("assert") or []
        if not isinstance(raw_asserts, list):
            raise _RowProblem(f"{where}.assert: must be a list")
        asserts = [s for i, a in enumerate(raw_asserts)
                   for s in flatten_sets(self._assertion(f"{where}.assert[{i}]", a))]
        for key, value in item.items():
            if EXPECTED_N.match(str(key)):
                asserts += self._expected(f"{where}.{key}", value)
        plain = {str(k): v for k, v in item.items() if k not in TURN_KEYS and not str(k).startswith("__")}
        variables = with_file_vars({**plain, **own}, self._base, self.root)
        store = item.get("storeOutputAs")
        if store is not None and not (isinstance(store, str) and store.isidentifier()):
            raise _RowProblem(f"{where}.storeOutputAs: name a variable (letters, digits, _)")
        named = _text(item.get("description"))
        return Turn(vars=variables, asserts=tuple(asserts), label=f"turn {n}" + (f" ({named})" if named else ""),
                    store_as=store)

    def _agent(self, raw: dict[str, Any]) -> Agent | None:
        """``tool_results`` (canned, by tool name), ``tool_impl`` (module:function) and ``max_steps``;
        a CSV row's ``__tool_results`` is JSON text."""
        if not raw:
            return None
        if raw.get("tool_results") is not None and raw.get("tool_impl") is not None:
            raise _RowProblem("tool_results: and tool_impl: both run the tools; give one: canned results, or the "
                              "python function")
        if raw.get("tool_results") is None and raw.get("tool_impl") is None:
            raise _RowProblem("max_steps: goes with tool_results: (canned results) or tool_impl: (a python function) "
                              "that run the model's tool calls")
        results = raw.get("tool_results")
        if isinstance(results, str):
            try:
                results = load_json(results)
            except (ValueError, DuplicateKeyError, LimitError) as exc:
                raise _RowProblem(f"tool_results: not valid JSON ({exc}); write {{\"get_order\": {{...}}}}") from None
        impl = raw.get("tool_impl")
        if impl is not None and not (isinstance(impl, str) and re.fullmatch(r"[\w.]+:\w+", impl.strip())):
            raise _RowProblem("tool_impl: name a python function as module:function (imported from the project "
                              "root), called as fn(name, arguments)")
        steps = raw.get("max_steps", 10)
        try:
            steps = int(steps)
        except (TypeError, ValueError):
            steps = 0
        if not 1 <= steps <= MAX_STEPS or isinstance(raw.get("max_steps"), bool):
            raise _RowProblem(f"max_steps: write a whole number from 1 to {MAX_STEPS} (model calls per turn)")
        return Agent(results=_canned(results), impl=impl.strip() if impl else None, max_steps=steps)

    def _expected(self, key: str, value: Any) -> list[AssertionSpec]:
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if item is None or (isinstance(item, str) and not item.strip()):
                continue
            out.extend(flatten_sets(self._assertion(key, item)))
        return out

    def _assertion(self, origin: str, item: Any) -> AssertionSpec:
        """One assertion, checked; an assert-set's own ones too, named ``assert[0].assert[1]``."""
        def member(j: int, raw: Any) -> AssertionSpec:
            return self._assertion(f"{origin}.assert[{j}]", raw)

        try:
            spec = (parse_shorthand(item, self.known) if isinstance(item, str) else
                    from_structured(item, self.known, member))
        except AssertionSyntaxError as exc:
            name = str(exc)
            if name.startswith("assert["):  # about an assert-set's own assertion
                raise _RowProblem(f"{origin}.{name}") from None
            if " " in name or ":" in name:
                raise _RowProblem(f"{origin}: {name}") from None
            prose = isinstance(item, str) and item.strip().lower().startswith(f"{name}: ")  # "note: text"
            literal = f"; to compare with this text itself, write equals:{item.strip()[:40]}" if prose else ""
            raise _RowProblem(f"{origin}: unknown assertion {name!r}{self.suggest(name)}{literal}") from None
        if spec is None:
            raise _RowProblem(f"{origin}: empty assertion")
        try:
            spec = with_files(spec, self._base, self.root)
            if spec.transform:
                spec = replace(spec, transform=tuple(self._transform(t) for t in spec.transform))
        except ValueProblem as exc:
            raise _RowProblem(f"{origin}: {exc}") from None
        problem = value_problem(spec)
        if problem:
            raise _RowProblem(f"{origin}: {problem}")
        return AssertionSpec(spec.type, spec.value, spec.threshold, spec.weight, origin, spec.metric, spec.transform)

    def _transform(self, code: str) -> str:
        return transform_code(code, self._base, self.root)

    def config_assertions(self, origin: str, item: Any, base: Path) -> list[AssertionSpec]:
        """An assertion of a config's ``assert:`` list (a suite's, promptfoo's defaultTest), read
        as a test file's are, ``file://`` relative to ``base``: an assert-set is it and its own
        assertions (``flatten_sets``). Raises ``ValueProblem``, one line starting with ``origin``."""
        self._base = base
        try:
            return flatten_sets(self._assertion(origin, item))
        except _RowProblem as exc:
            raise ValueProblem(str(exc)) from None

    def _promptfoo(self, rel: str, row: int, record: dict[str, Any],
                   where: Callable[[str], str] = str) -> list[Case]:
        """promptfoo's test shape: ``{vars, assert, description, options, metadata, threshold,
        provider, providerOutput}``; a key it does not have, or we do not run, is the row's error
        (``where`` names its place in it: a scenario's test)."""
        try:
            unknown = sorted(set(record) - PROMPTFOO_KEYS, key=str)
            if unknown:
                key = str(unknown[0])
                raise _RowProblem(f"unknown key {key!r} in a promptfoo test{_close(key, PROMPTFOO_KEYS)}")
            combinations = self._combinations(record.get("vars"))
            options = record.get("options") or {}
            if not isinstance(options, dict):
                raise _RowProblem("options: must be a mapping (prefix, suffix, transform)")
            extra = sorted(set(options) - OPTIONS, key=str)
            if "provider" in extra:
                raise _RowProblem("options.provider: a grading provider per test is not supported here; grade with "
                                  "the default judge (defaultTest.options.provider, or default_judge: in "
                                  "promstack.yaml) or name a judge in the assertion (judge:NAME)")
            if extra:
                known = ", ".join(sorted(OPTIONS))
                raise _RowProblem(f"options.{extra[0]}: not supported here (options here: {known})")
            raw_asserts = record.get("assert") or []
            if not isinstance(raw_asserts, list):
                raise _RowProblem("assert: must be a list")
            asserts = [s for i, a in enumerate(raw_asserts) for s in flatten_sets(self._assertion(f"assert[{i}]", a))]
            # the test's transform (before each assertion's own, the planner's doing) replaces the default one
            transform = self._transform(str(options["transform"]).strip()) if options.get("transform") else None
            metadata = record.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise _RowProblem("metadata: must be a mapping")
            base = Case(
                file=rel, row=row, vars={}, asserts=tuple(asserts), transform=transform,
                description=_text(record.get("description")), case_id=_text(record.get("id")),
                metadata=dict(metadata), marks=_marks(record.get("marks")),
                threshold=_threshold(record.get("threshold"), "threshold"),
                prefix=_verbatim(options.get("prefix")), suffix=_verbatim(options.get("suffix")),
                provider=_provider(record.get("provider")),
                providers=_filter(record.get("providers")),
                provider_output=_output(record.get("providerOutput")),
                human_score=_human(record.get("human_score", metadata.get("human_score"))),
                scoring=self._scoring(record.get("assertScoringFunction")),
                turns=self._turns(_alone(record)) if "turns" in record else (),
                agent=self._agent({k: record[k] for k in AGENT_KEYS if k in record}),
                simulation=_simulation({k: record[k] for k in SIMULATION_KEYS if k in record}),
                conversation=_text(metadata.get("conversationId")),
                store_as=_store_as(options.get("storeOutputAs")),
            )
            return [_with_vars(base, variables, label) for variables, label in combinations]
        except (ValueProblem, _RowProblem) as exc:
            metadata = record.get("metadata")
            bad = self._bad(rel, row, where(str(exc)), record.get("description"))
            return [replace(bad, conversation=_text(metadata.get("conversationId")) if isinstance(metadata, dict)
                            else None)]

    def _glob(self, ref: str, where: str) -> list[Path]:
        """The files a ``file://`` path or glob names, relative to the file being read, inside
        the project (``resolve`` refuses one outside)."""
        pattern = ref[len("file://"):]
        if not any(c in pattern for c in "*?["):
            return [resolve(ref, self._base, self.root)]
        paths = matches(pattern, self._base, self.root)
        if not paths:
            raise _RowProblem(f"no file matches {ref!r} (relative to this file, or to the config's folder)")
        if len(paths) > MAX_COMBINATIONS:
            raise _RowProblem(f"{ref!r} matches {len(paths):,} files, more than {MAX_COMBINATIONS:,}; narrow it")
        return [resolve(f"file://{p}", self._base, self.root) for p in paths]

    def _scoring(self, value: Any) -> str | None:
        """``assertScoringFunction: file://scoring.py:fn``: a python function, named, relative to the file."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith("file://") or ":" not in value[len("file://"):]:
            raise _RowProblem("assertScoringFunction: name a python function: file://scoring.py:combine "
                              "(a JavaScript one is not run here)")
        if value.lower().split(":")[-2].endswith((".js", ".ts", ".mjs", ".cjs")):
            raise _RowProblem("assertScoringFunction: a JavaScript function is not run here; write it in python: "
                              "file://scoring.py:combine")
        return python_ref(value, self._base, self.root)

    def _combinations(self, raw: Any) -> list[tuple[dict[str, Any], str]]:
        """A test's ``vars:`` as one or more sets of variables, each with what tells it apart
        (``language=French``): a list of texts, or a ``file://`` glob, is one value each, as in
        promptfoo (a list of anything else stays one value). At most ``MAX_COMBINATIONS``."""
        if raw is None:
            return [({}, "")]
        if not isinstance(raw, dict):
            raise _RowProblem(f"vars: must be a mapping of names to values, got {type(raw).__name__}")
        combos: list[tuple[dict[str, Any], str]] = [({}, "")]
        for key, value in raw.items():
            choices = self._choices(str(key), value)
            if len(combos) * len(choices) > MAX_COMBINATIONS:
                raise _RowProblem(f"vars: the lists make more than {MAX_COMBINATIONS:,} combinations of variables; "
                                  "split the test")
            combos = [({**v, str(key): choice}, ", ".join(x for x in (label, shown) if x))
                      for v, label in combos for choice, shown in choices]
        return combos

    def _choices(self, key: str, value: Any) -> list[tuple[Any, str]]:
        """(value, what to show) for each value a variable takes."""
        if isinstance(value, list) and value and isinstance(value[0], str):
            return [(v, f"{key}={_short(v)}") for v in value]
        if isinstance(value, str) and value.startswith("file://") and any(c in value for c in "*?["):
            paths = matches(value[len("file://"):], self._base, self.root)
            if not paths:
                raise _RowProblem(f"vars.{key}: no file matches {value!r} (relative to this file, or to the config's "
                                  "folder)")
            if len(paths) > MAX_COMBINATIONS:  # before reading any of them
                raise _RowProblem(f"vars.{key}: {value!r} matches {len(paths):,} files, more than the "
                                  f"{MAX_COMBINATIONS:,} cases a test may become; narrow the pattern")
            return [(load_var(f"file://{p}", self._base, self.root), f"{key}={Path(p).name}") for p in paths]
        if isinstance(value, str) and value.startswith("file://"):
            return [(load_var(value, self._base, self.root), "")]
        return [(value, "")]


class Scenarios:
    """promptfoo's ``scenarios:`` in a config: each entry of a scenario's ``config:`` with each of
    its ``tests:`` is a test, merged as promptfoo merges them (``mergeScenarioTest`` in its
    evaluator): ``{...entry, ...test}`` with vars and metadata merged (the test's win) and the
    entry's assertions before the test's. A scenario, or a ``file://`` glob of files holding
    scenarios, and its tests' ``file://`` YAML/JSON files, are relative to the config's folder,
    as in promptfoo. Each test is a row after the config's own tests; its name is its
    description (else the entry's, else ``scenario-N`` or the scenario file's name), with what
    tells the entries apart."""

    def __init__(self, loader: Loader, rel: str) -> None:
        self.loader, self.rel = loader, rel

    def cases(self, raw: Any, row: int) -> Iterator[Case]:
        if raw is None:
            return
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            try:
                found = (self._files(item, i) if isinstance(item, str) else
                         [(f"scenarios[{i}]", f"scenario-{i + 1}", item)])
            except (_RowProblem, ValueProblem) as exc:
                row += 1
                yield self.loader._bad(self.rel, row, f"scenarios[{i}]: {exc}")
                continue
            for where, fallback, scenario in found:
                cases, row = self._scenario(where, fallback, scenario, row)
                yield from cases

    def _files(self, ref: str, i: int) -> list[tuple[str, str, Any]]:
        """``file://scenarios/*.yaml``: each file's scenario, or list of them (where, name, scenario)."""
        if not ref.startswith("file://"):
            raise _RowProblem("write a scenario ({config: [...], tests: [...]}) or file://scenarios.yaml")
        out: list[tuple[str, str, Any]] = []
        for path in self.loader._glob(ref, f"scenarios[{i}]"):
            data = load(f"file://{path}", self.loader._base, self.loader.root)
            shown = self.loader.rel(path)
            items = data if isinstance(data, list) else [data]
            out += [(f"scenarios[{i}] ({shown}{f'[{n}]' if len(items) > 1 else ''})",
                     f"{path.stem}{f'-{n + 1}' if len(items) > 1 else ''}", s) for n, s in enumerate(items)]
        return out

    def _scenario(self, where: str, fallback: str, scenario: Any, row: int) -> tuple[list[Case], int]:
        try:
            entries, tests = self._parts(where, scenario)
        except (_RowProblem, ValueProblem) as exc:
            return [self.loader._bad(self.rel, row + 1, f"{where}: {exc}")], row + 1
        cases: list[Case] = []
        for j, entry in enumerate(entries):
            for k, (test_where, test) in enumerate(tests):
                row += 1
                name = _scenario_name(entry, test, fallback, j, k, len(entries), len(tests))
                renamed = functools.partial(_scenario_problem, f"{where}.config[{j}]", test_where,
                                            len(entry.get("assert") or []))
                try:
                    record = {**_merged(entry, test), "description": name}
                except _RowProblem as exc:
                    cases.append(self.loader._bad(self.rel, row, f"{where}.config[{j}]: {exc}", name))
                    continue
                cases += self.loader._promptfoo(self.rel, row, record, renamed)
        return cases, row

    def _parts(self, where: str, scenario: Any) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        if not isinstance(scenario, dict):
            raise _RowProblem("a scenario is a mapping of config: (a list of vars sets) and tests:")
        extra = sorted(set(scenario) - SCENARIO_KEYS, key=str)
        if extra:
            raise _RowProblem(f"unknown key {extra[0]!r} in a scenario{_close(str(extra[0]), SCENARIO_KEYS)}")
        entries = scenario.get("config")
        if not isinstance(entries, list) or not entries:
            raise _RowProblem("config: list the sets of variables the tests run with, e.g. "
                              "config: [{vars: {language: French}}, {vars: {language: German}}]")
        for j, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise _RowProblem(f"config[{j}]: write a mapping ({{vars: ..., assert: ...}}); $values and file:// "
                                  "entries are not read here: write the entries themselves")
        tests = self._tests(scenario.get("tests"), where)
        if len(entries) * len(tests) > MAX_SCENARIO_CASES:
            raise _RowProblem(f"its {len(entries):,} config entries × {len(tests):,} tests make more than "
                              f"{MAX_SCENARIO_CASES:,} cases; split the scenario")
        return entries, tests

    def _tests(self, raw: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
        """The scenario's tests: inline, or ``file://`` YAML/JSON/JSONL files of promptfoo tests;
        none: one test of the entry alone (promptfoo's dummy test)."""
        if raw is None:
            return [(f"{where}.tests", {})]
        out: list[tuple[str, dict[str, Any]]] = []
        for k, item in enumerate(raw if isinstance(raw, list) else [raw]):
            if isinstance(item, dict):
                out.append((f"{where}.tests[{k}]", item))
            elif isinstance(item, str) and item.startswith("file://"):
                try:
                    out += self._test_files(item, f"{where}.tests[{k}]")
                except (_RowProblem, ValueProblem) as exc:
                    raise _RowProblem(f"tests[{k}]: {exc}") from None
            else:
                raise _RowProblem(f"tests[{k}]: write a test ({{vars: ..., assert: ...}}) or file://tests.yaml")
        return out

    def _test_files(self, ref: str, where: str) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for path in self.loader._glob(ref, where):
            shown = self.loader.rel(path)
            if path.suffix.lower() not in (".yaml", ".yml", ".json"):
                raise _RowProblem(f"{shown}: a scenario's tests are promptfoo tests ({{vars, assert}}) in YAML or "
                                  "JSON; list a CSV file under the config's tests: instead")
            records = load(f"file://{path}", self.loader._base, self.loader.root)
            records = records.get("tests") if isinstance(records, dict) else records
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise _RowProblem(f"{shown} must hold a list of tests ({{vars: ..., assert: ...}})")
            out += [(f"{where} ({shown}:{n})", r) for n, r in enumerate(records, 1)]
        return out


def _merged(entry: dict[str, Any], test: dict[str, Any]) -> dict[str, Any]:
    """promptfoo's merge of a scenario's config entry and test; the entry's own options, which
    promptfoo drops without a word, are refused instead."""
    if entry.get("options"):
        raise _RowProblem("options: promptfoo ignores a config entry's options (only its tests' apply); move them "
                          "to the scenario's tests, or to defaultTest")
    for part, name in ((entry, "config entry"), (test, "test")):
        for key in ("vars", "metadata"):
            if part.get(key) is not None and not isinstance(part[key], dict):
                raise _RowProblem(f"{key}: must be a mapping in a {name}")
        if part.get("assert") is not None and not isinstance(part["assert"], list):
            raise _RowProblem(f"assert: must be a list in a {name}")
    merged = {**{k: v for k, v in entry.items() if k != "options"}, **test}
    merged["vars"] = {**(entry.get("vars") or {}), **(test.get("vars") or {})}
    merged["assert"] = [*(entry.get("assert") or []), *(test.get("assert") or [])]
    merged["metadata"] = {**(entry.get("metadata") or {}), **(test.get("metadata") or {})}
    return merged


def _scenario_name(entry: dict[str, Any], test: dict[str, Any], fallback: str, j: int, k: int, entries: int,
                   tests: int) -> str:
    """The test's description, else the entry's, else the scenario's name; then what tells it
    apart: the entry's description or variables (when there are several), the test's number
    (when it has no name of its own)."""
    own, entry_name = _text(test.get("description")), _text(entry.get("description"))
    name = own or entry_name or fallback
    tags = []
    if entries > 1 and not (entry_name and name == entry_name):
        tags.append(entry_name or _vars_label(entry.get("vars"), test.get("vars")) or f"config-{j + 1}")
    if not own and tests > 1:
        tags.append(f"test-{k + 1}")
    return f"{name} ({', '.join(tags)})" if tags else name


def _vars_label(entry_vars: Any, test_vars: Any) -> str:
    """The entry's variables that reach the test (``language=French``)."""
    if not isinstance(entry_vars, dict):
        return ""
    shadowed = set(test_vars) if isinstance(test_vars, dict) else set()
    return ", ".join(f"{key}={_short(str(value), 20)}" for key, value in entry_vars.items() if key not in shadowed)


def _scenario_problem(entry_where: str, test_where: str, entry_asserts: int, message: str) -> str:
    """A merged test's problem named in the scenario: ``assert[n]`` of the merged list is the
    entry's n-th, or the test's (n - the entry's count)-th."""
    m = re.match(r"assert\[(\d+)\]", message)
    if m is None:
        return f"{entry_where} × {test_where}: {message}"
    n = int(m.group(1))
    place = f"{entry_where}.assert[{n}]" if n < entry_asserts else f"{test_where}.assert[{n - entry_asserts}]"
    return place + message[m.end():]


def _with_vars(case: Case, variables: dict[str, Any], label: str) -> Case:
    """One set of a test's variables: its name tells it apart, and an expected_output is judged."""
    asserts = case.asserts
    if isinstance(variables.get("expected_output"), str) and variables["expected_output"].strip():
        asserts += (AssertionSpec(NEEDS_JUDGE, variables["expected_output"], origin="expected_output"),)
    described = f"{case.description or f'row-{case.row}'} ({label})" if label else case.description
    return replace(case, vars=variables, asserts=asserts, description=described)


def _short(value: str, limit: int = 40) -> str:
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _close(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"


def _filter(value: Any) -> tuple[str, ...]:
    """promptfoo's ``providers: [fast-model, openai:*]``: the models a test runs on."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise _RowProblem("providers: list the models this test runs on (a label, a provider id, or openai:*)")
    return tuple(v.strip() for v in items)


def _provider(value: Any) -> str | None:
    """A test's own ``provider:`` (``openai:gpt-4o-mini``, or ``{id: ...}``): the model it runs on."""
    if value is None:
        return None
    if isinstance(value, dict):
        if set(value) - {"id", "label"}:
            extra = sorted(set(value) - {"id", "label"})[0]
            raise _RowProblem(f"provider.{extra}: not supported here; configure the model in promstack.yaml "
                              "(models:) and name it in provider:")
        value = value.get("id")
    if not isinstance(value, str) or not value.strip():
        raise _RowProblem("provider: write a model name (a models: entry in promstack.yaml) or a promptfoo id "
                          "like openai:gpt-4o-mini")
    return value.strip()


class _RowProblem(Exception):
    pass


def _alone(record: dict[str, Any]) -> Any:
    """A case's ``turns:``, refused beside a ``scenario:`` (which writes the user's turns itself)."""
    if "scenario" in record:
        raise _RowProblem("turns: and scenario: both give the user's turns; write them (turns:) or let a model play "
                          "the user (scenario:), not both")
    return record["turns"]


def _simulation(raw: dict[str, Any]) -> Simulation | None:
    """``scenario:`` (the simulated user's instructions as text, or {instructions, persona, goal,
    model}) and ``max_turns:``."""
    if not raw:
        return None
    scenario = raw.get("scenario")
    if scenario is None:
        raise _RowProblem("max_turns: goes with scenario: (the simulated user's instructions)")
    if isinstance(scenario, str):
        scenario = {"instructions": scenario}
    if not isinstance(scenario, dict) or not isinstance(scenario.get("instructions"), str) \
            or not scenario["instructions"].strip():
        raise _RowProblem("scenario: write the simulated user's instructions (text, or {instructions, persona, goal, "
                          "model})")
    extra = sorted(set(scenario) - SCENARIO_OF_CASE, key=str)
    if extra:
        raise _RowProblem(f"scenario.{extra[0]}: unknown key (keys: {', '.join(sorted(SCENARIO_OF_CASE))})")
    turns = raw.get("max_turns", 6)
    if isinstance(turns, bool) or not isinstance(turns, int) or not 1 <= turns <= MAX_TURNS:
        raise _RowProblem(f"max_turns: write a whole number from 1 to {MAX_TURNS}")
    text = {k: str(scenario.get(k) or "").strip() for k in ("instructions", "persona", "goal")}
    model = scenario.get("model")
    return Simulation(**text, model=str(model).strip() if model else None, max_turns=turns)


def _store_as(value: Any) -> str | None:
    if value is None:
        return None
    if not (isinstance(value, str) and value.isidentifier()):
        raise _RowProblem("options.storeOutputAs: name a variable (letters, digits, _)")
    return value


def _canned(raw: Any) -> tuple[dict[str, Any], ...]:
    """``tool_results``: a mapping of tool name to result, or a list of ``{name, arguments, result}``
    (``arguments``, when given, must be a subset of the call's)."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [{"name": str(k), "result": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise _RowProblem("tool_results: write a mapping of tool name to its result, or a list of "
                          "{name, arguments, result}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "result" not in item:
            raise _RowProblem(f"tool_results[{i}]: write {{name: get_order, arguments: {{id: 7}}, result: ...}} "
                              "(arguments may be left out: any call of that tool)")
        extra = sorted(set(item) - {"name", "arguments", "result"})
        if extra:
            raise _RowProblem(f"tool_results[{i}]: unknown key {extra[0]!r} (keys: name, arguments, result)")
        if item.get("arguments") is not None and not isinstance(item["arguments"], dict):
            raise _RowProblem(f"tool_results[{i}].arguments: write the arguments to match as a mapping "
                              "({order_id: A-1001}), or leave it out to match any call of the tool")
        try:
            result_text(item["result"])
        except (TypeError, ValueError):
            raise _RowProblem(f"tool_results[{i}].result: write text or JSON data (not NaN or infinity)") from None
        out.append({"name": item["name"], "arguments": item.get("arguments"), "result": item["result"]})
    return tuple(out)


def grouped(cases: list[Case]) -> list[Case]:
    """Rows of one conversation (``__conversation``, promptfoo's ``metadata.conversationId``) as
    one case, at its first row's place, its rows its turns in file order."""
    ids = {c.conversation for c in cases if c.conversation and not c.turns}
    if not ids:
        return cases
    out: list[Case] = []
    members: dict[str, list[Case]] = {}
    for case in cases:
        key = case.conversation
        if key not in ids or case.turns:
            out.append(case)
            continue
        if key not in members:
            members[key] = []
            out.append(case)  # stands for the conversation until it is built
        members[key].append(case)
    return [conversation(members[c.conversation], c.conversation) if c.conversation in members and not c.turns
            else c for c in out]


def conversation(rows: list[Case], name: str) -> Case:
    """Rows as the turns of one conversation named ``name``: each row's variables and assertions
    are its turn's; the first row gives what the case has once (threshold, marks, agent, ...)."""
    first = rows[0]
    bad = next((r for r in rows if r.error), None)
    turns = tuple(Turn(vars=r.vars, asserts=r.asserts, row=r.row, label=f"turn {n} ({r.file}:{r.row})",
                       store_as=r.store_as) for n, r in enumerate(rows, 1))
    metadata = {k: v for r in rows for k, v in r.metadata.items()}
    return replace(first, vars={}, asserts=(), turns=turns, description=name, case_id=None, metadata=metadata,
                   marks=tuple(dict.fromkeys(m for r in rows for m in r.marks)), store_as=None,
                   error=bad.error if bad is not None else None)


@contextmanager
def _cell_limit(chars: int) -> Iterator[None]:
    """The csv module's cell size limit (a process-wide setting), for the duration of a read."""
    before = csv.field_size_limit(chars)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"a cell is longer than {MAX_CELL:,} characters (the limit per CSV cell); shorten it, "
                "or check for a quote that is never closed")
    return f"{exc}; check the quotes on this row"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _verbatim(value: Any) -> str:
    """A prefix or suffix as written (spaces and newlines kept, as promptfoo joins them)."""
    return "" if value is None else str(value)


def _output(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _metadata(metadata: dict[str, Any], key: str, value: Any) -> None:
    if not key:
        raise _RowProblem("__metadata: needs a key, e.g. __metadata:topic")
    if key.endswith("[]"):
        items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        metadata[key[:-2]] = [v for v in items if v != ""]
    elif value not in (None, ""):
        metadata[key] = value


def _threshold(value: Any, key: str = "__threshold") -> float | None:
    """A case's threshold (``__threshold`` in a row, ``threshold`` in a promptfoo test)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise _RowProblem(f"{key}: {value!r} is not a number between 0 and 1") from None
    if not 0 <= t <= 1:
        raise _RowProblem(f"{key}: {t:g} is outside 0..1")
    return t


def _human(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _RowProblem(f"__human_score: {value!r} is not a number on the judges' scale") from None


def _marks(value: Any) -> tuple[str, ...]:
    """``slow; xfail: reason`` (string) or a list of the same items."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(";")
    out: list[str] = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        name = item.split(":", 1)[0].strip()
        if not MARK.match(name):
            if out and ":" in out[-1]:  # a ';' inside the previous marker's reason
                out[-1] = f"{out[-1]}; {item}"
                continue
            raise _RowProblem(f"__marks: {name!r} is not a marker name; write e.g. 'slow; xfail: reason'")
        out.append(item)
    return tuple(out)
