"""Figures of live traffic from call logs (``promstack monitor``), computed with DuckDB.

A *call* is a line of kind ``model`` (or no kind: logs older than guard lines) whose status is
``ok`` or ``error``: its final line. ``retry`` lines are attempts inside a call, ``guard`` lines
are a guard's decision about a request, and ``cancelled`` lines are calls a stopped run never
finished; none of them is a call. A line that is not a whole JSON object with a timestamp (a
torn tail, a half-written line) is skipped, with one warning per file saying how many. A file
DuckDB cannot read does not stop the others: a gzipped log cut short is read up to the cut, and a
file that cannot be read at all is left out, each with one warning naming it.

What each figure counts (the same definitions as a test run's summary where one exists):

- ``error_rate``: errors / calls, in percent.
- ``p50_ms`` / ``p95_ms`` / ``p99_ms``: exact percentiles with linear interpolation between the
  closest ranks (DuckDB's ``quantile_cont``; numpy's and pandas' default; ``results/metrics.py``
  uses the same), over the latencies of the calls that went to the model (``cached`` false),
  errors included: a cache hit logs the latency of the call it replays, which would count that
  call twice.
- ``input_tokens`` / ``output_tokens`` / ``tokens`` / ``cost_usd``: what the provider billed, so
  fresh calls only (a cache hit costs nothing); a call logged without token counts adds 0. The
  cost is the logged ``cost_usd``; a fresh answer logged without one is priced from its tokens
  (``prices``, else litellm's price map, as ``execute/pricing.py`` prices a test run's answers);
  when that is not possible the call is ``unpriced`` and the row's ``cost_usd`` is None (shown as
  n/a), never 0. A failed call without a cost costs 0, as in a test run.
- ``cached`` / ``cache_hit_rate``: calls answered from the cache, and their share in percent.

Times are UTC. ``since`` is inclusive and ``until`` exclusive; ``window`` ``hour`` or ``day``
buckets calls by the hour or day of their timestamp.
"""

from __future__ import annotations

import contextlib
import glob
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError

BY = ("prompt_id", "prompt_version", "model")
KEYS = ("prompt_id", "prompt_version", "model", "suite", "user_id", "run_id", "case_id", "kind", "session_id",
        "litellm_model", "finish_reason", "status_code")
WINDOWS = ("hour", "day")
JSONL = (".jsonl", ".jsonl.gz", ".json", ".ndjson", ".ndjson.gz")
PARQUET = (".parquet",)
# every field a call line has, with the type it is read as (a value of another type reads as null)
COLUMNS = {"timestamp": "VARCHAR", "run_id": "VARCHAR", "kind": "VARCHAR", "suite": "VARCHAR",
           "case_id": "VARCHAR", "prompt_id": "VARCHAR", "prompt_version": "VARCHAR", "model": "VARCHAR",
           "input_tokens": "BIGINT", "output_tokens": "BIGINT", "cost_usd": "DOUBLE", "latency_ms": "DOUBLE",
           "cached": "BOOLEAN", "status": "VARCHAR", "error": "VARCHAR", "user_id": "VARCHAR",
           "status_code": "BIGINT", "session_id": "VARCHAR", "litellm_model": "VARCHAR", "finish_reason": "VARCHAR"}
CALL = "coalesce(kind, 'model') = 'model' AND status IN ('ok', 'error')"
MAX_LINE = 64 * 1024 * 1024
LEFT_OUT = "left out, its calls are not in these figures"  # ends the warning of a file that cannot be read
WORKING = (".lock", ".part")  # what a rotating writer keeps beside its log: its lock, a gzip being written
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """The files a command reads: JSON lines (plain or gzipped) and Parquet exports."""

    jsonl: tuple[Path, ...]
    parquet: tuple[Path, ...]
    # a copy read in a file's place (a gzip salvaged up to its cut) -> the file it stands for
    stands_for: tuple[tuple[Path, Path], ...] = ()


def files(paths: Sequence[str | Path]) -> Source:
    """Every file the paths name (a file, a glob, a folder of logs), each once, in name order;
    a path that names nothing is an error naming it."""
    found: dict[Path, None] = {}
    for given in paths:
        # what a rotating writer keeps beside its log, its lock (calls.jsonl.lock) and the gzip it
        # is writing (calls.2025-03-01.jsonl.gz.part), is matched by calls*.jsonl* and is not a log
        every = _matches(str(given))
        matches = [p for p in every if not p.name.endswith(WORKING)]
        if not matches:
            why = "only a log writer's lock or unfinished gzip" if every else "no file matches"
            raise PromstackError(f"{given}: no call log there ({why}); pass a log file, a glob such as "
                                 "'logs/calls*.jsonl*', or a folder of logs")
        found.update(dict.fromkeys(matches))
    ordered = sorted(found)
    unknown = [p for p in ordered if not p.name.endswith(JSONL + PARQUET)]
    if unknown:
        raise PromstackError(f"{unknown[0]}: not a call log (read: {', '.join(JSONL + PARQUET)}); rename it or "
                             "leave it out")
    return Source(tuple(p for p in ordered if p.name.endswith(JSONL)),
                  tuple(p for p in ordered if p.name.endswith(PARQUET)))


def _matches(given: str) -> list[Path]:
    path = Path(given)
    if path.is_dir():
        return [p.resolve() for p in sorted(path.iterdir()) if p.is_file() and p.name.endswith(JSONL + PARQUET)]
    if path.is_file():
        return [path.resolve()]
    return [Path(p).resolve() for p in sorted(glob.glob(given, recursive=True)) if Path(p).is_file()]


def log_files(log: Path) -> list[Path]:
    """The configured call log and its rotated files (``calls.*.jsonl``, gzipped or not)."""
    stem, suffix = log.name.removesuffix(".jsonl"), ".jsonl"
    patterns = [log.name, f"{stem}.*{suffix}", f"{stem}.*{suffix}.gz", f"{log.name}.gz"]
    return sorted({p for pattern in patterns for p in log.parent.glob(pattern) if p.is_file()})


# -- times ------------------------------------------------------------------------------------

# 7d, or -7d as in Grafana's now-7d: both reach back from now
_RELATIVE = re.compile(r"^-?(\d+)\s*(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, option: str = "--since", now: datetime | None = None) -> datetime:
    """An ISO date or time (UTC unless it names an offset), or a span back from now: 30m, 24h,
    7d, 2w (a leading minus, -7d, means the same)."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        except OverflowError:  # 99999999d: before year 1
            raise PromstackError(f"{option} {text}: reaches back before the year 1; give a shorter span") from None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise PromstackError(f"{option} {text}: not a time; give an ISO date or time (2025-03-01, "
                             "2025-03-01T09:00, 2025-03-01T09:00+09:00; UTC unless an offset is given) or a span "
                             "back from now (30m, 24h, 7d, 2w)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- DuckDB ----------------------------------------------------------------------------------


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # it would print on stdout, into --format json
    return con


def _lines(source: Source, rejects: bool = True) -> str:
    """Every line of the JSON-lines files, one VARCHAR each, with its file and whether it is a
    JSON object, else null (read line by line: read_json's ignore_errors turns a torn line into a
    row of nulls that cannot be told from a record of nulls)."""
    names = ", ".join(_quote(str(p)) for p in source.jsonl)
    # nested CASE, not AND: DuckDB evaluates both sides of an AND, and json_type raises on a torn line
    whole = "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END"
    return (f"SELECT filename, line, CASE WHEN {whole} THEN line END AS doc "
            f"FROM read_csv([{names}], columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x1f', "
            f"quote = '', escape = '', auto_detect = false, filename = true, max_line_size = {MAX_LINE}, "
            # a line torn inside a multi-byte character is not UTF-8: skipped, and kept in DuckDB's
            # reject tables to be counted with the torn lines (rejected())
            f"strict_mode = false, null_padding = true, ignore_errors = true{', store_rejects = true' * rejects})")


NEEDED = ("timestamp", "kind", "status", "model", "latency_ms", "cached", "input_tokens", "output_tokens",
          "cost_usd", "error")


def records(con: Any, source: Source, columns: dict[str, str]) -> str:
    """SQL of every non-blank line of the files as ``columns`` (name -> DuckDB type, a value of
    another type read as null), with its ``filename``: the JSON lines through json_transform
    (a line that is not a JSON object is all nulls), the Parquet files as they are."""
    parts = []
    if source.jsonl:
        shape = "{" + ", ".join(f'"{k}": "{t}"' for k, t in columns.items()) + "}"
        picked = ", ".join(f"r.{_ident(k)}" for k in columns)
        name = "filename"
        if source.stands_for:
            name = "CASE filename " + " ".join(f"WHEN {_quote(str(copy))} THEN {_quote(str(real))}"
                                               for copy, real in source.stands_for) + " ELSE filename END"
        parts.append(f"SELECT {name} AS filename, {picked} FROM (SELECT filename, json_transform(doc, '{shape}') AS r "
                     f"FROM ({_lines(source)}) WHERE trim(coalesce(line, '')) <> '')")
    if source.parquet:
        parts.append(_parquet(con, source.parquet, columns))
    if not parts:  # every file was left out
        nulls = ", ".join(f"NULL::{t} AS {_ident(k)}" for k, t in columns.items())
        return f"SELECT NULL::VARCHAR AS filename, {nulls} WHERE false"
    return " UNION ALL BY NAME ".join(parts)


def materialize(con: Any, source: Source, build: Callable[[Source], str], warn: Warn | None) -> None:
    """Run ``build(source)`` (a statement that reads the files once, e.g. CREATE TEMP TABLE ...
    AS ...). When DuckDB cannot read one of the files, each file is tried on its own: a gzip cut
    short is read up to the cut, a file that cannot be read is left out, each with one warning,
    and the statement runs on what can be read."""
    import duckdb

    try:
        con.execute(build(source))
        return
    except duckdb.Error:
        pass
    with tempfile.TemporaryDirectory(prefix="promstack-monitor-") as tmp:
        readable = _readable(con, source, Path(tmp), warn or (lambda line: None))
        _clear_rejects(con)
        con.execute(build(readable))
        if readable.stands_for:  # the rejects of a salvaged copy are its file's
            cases = " ".join(f"WHEN {_quote(str(c))} THEN {_quote(str(r))}" for c, r in readable.stands_for)
            with contextlib.suppress(duckdb.Error):  # no table: nothing rejected
                con.execute(f"UPDATE reject_scans SET file_path = CASE file_path {cases} ELSE file_path END")


def _clear_rejects(con: Any) -> None:
    import duckdb

    for table in ("reject_errors", "reject_scans"):
        with contextlib.suppress(duckdb.Error):  # no scan stored any yet
            con.execute(f"DELETE FROM {table}")


def rejected(con: Any) -> dict[str, int]:
    """Per file, the lines the last reading skipped as not UTF-8 (a line torn inside a character)."""
    import duckdb

    try:
        return dict(con.execute("SELECT s.file_path, count(*) FROM reject_errors e JOIN reject_scans s "
                                "USING (scan_id, file_id) GROUP BY 1").fetchall())
    except duckdb.Error:  # nothing was read as lines (Parquet only)
        return {}


def warn_not_whole(counts: Mapping[str, int], warn: Warn) -> None:
    """One warning per file: how many lines are not a whole call record."""
    for name, count in sorted(counts.items()):
        lines = "1 line is" if count == 1 else f"{count} lines are"
        warn(f"{name}: {lines} not a whole call record (torn, not JSON, or no timestamp); skipped")


def _readable(con: Any, source: Source, tmp: Path, warn: Warn) -> Source:
    import duckdb

    jsonl, stands_for = [], []
    for path in source.jsonl:
        try:
            con.execute(f"SELECT count(*) FROM ({_lines(Source((path,), ()), rejects=False)})").fetchall()
            jsonl.append(path)
            continue
        except duckdb.Error as exc:
            reason = _reason(exc, path)
        copy, count = _salvage(path, tmp / f"{len(stands_for)}.jsonl") if path.name.endswith(".gz") else (None, 0)
        if copy is None:
            warn(f"{path}: cannot be read ({reason}); {LEFT_OUT}")
            continue
        lines = "1 line" if count == 1 else f"{count:,} lines"
        warn(f"{path}: the gzip file ends early (cut short while it was written or copied); read the {lines} "
             "before the cut")
        jsonl.append(copy)
        stands_for.append((copy, path))
    parquet = []
    for path in source.parquet:
        try:
            con.execute(f"SELECT count(*) FROM read_parquet({_quote(str(path))})").fetchall()
            parquet.append(path)
        except duckdb.Error as exc:
            warn(f"{path}: cannot be read ({_reason(exc, path)}); {LEFT_OUT}")
    return Source(tuple(jsonl), tuple(parquet), tuple(stands_for))


def _reason(exc: Exception, path: Path) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first.replace(f": {path}", "").replace(str(path), "the file").removeprefix("IO Error: ")


def _salvage(path: Path, copy: Path) -> tuple[Path | None, int]:
    """The whole lines of a gzip file up to where it breaks, copied to ``copy``; (None, 0) when
    not one line could be read (not a gzip file at all) or the gzip is whole (what DuckDB
    refused is something else)."""
    import gzip
    import zlib

    count, broken = 0, False
    with open(copy, "wb") as out:
        try:
            with gzip.open(path, "rb") as lines:
                for line in lines:
                    if line.endswith(b"\n"):  # not the last line, torn by the cut
                        out.write(line)
                        count += 1
        except (EOFError, OSError, zlib.error):
            broken = True
    return (copy, count) if count and broken else (None, 0)


def _load(con: Any, source: Source, since: datetime | None, until: datetime | None, keys: tuple[str, ...],
          warn: Warn | None, application_only: bool = False) -> None:
    """Read every file once into the temp table ``parsed``: the calls in range (with ``ts``, a
    TIMESTAMPTZ) and, with a null ``ts``, the lines that are not whole records (warned per file);
    the view ``calls`` is the calls."""
    columns = {k: COLUMNS[k] for k in (*NEEDED, *keys, *(("case_id",) if application_only else ()))}
    where = _where(since, until) + (" AND case_id IS NULL" if application_only else "")
    materialize(con, source, lambda readable: "CREATE OR REPLACE TEMP TABLE parsed AS SELECT * FROM (SELECT *, "
                f"try_cast(timestamp AS TIMESTAMPTZ) AS ts FROM ({records(con, readable, columns)})) "
                f"WHERE ts IS NULL OR ({where})", warn)
    con.execute("CREATE TEMP VIEW calls AS SELECT * FROM parsed WHERE ts IS NOT NULL")
    if warn is not None:
        counts = rejected(con)
        for name, count in con.execute("SELECT filename, count(*) FROM parsed WHERE ts IS NULL GROUP BY filename"
                                       ).fetchall():
            counts[name] = counts.get(name, 0) + count
        warn_not_whole(counts, warn)


def _parquet(con: Any, paths: tuple[Path, ...], columns: dict[str, str]) -> str:
    """The Parquet files' call columns; a column an export lacks reads as null."""
    names = ", ".join(_quote(str(p)) for p in paths)
    scan = f"read_parquet([{names}], union_by_name = true, filename = true)"
    have = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    cols = ", ".join(f"try_cast({_ident(k)} AS {t}) AS {_ident(k)}" if k in have else f"NULL::{t} AS {_ident(k)}"
                     for k, t in columns.items())
    return f"SELECT filename, {cols} FROM {scan}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run(query: Callable[[Any], Any], paths: Sequence[str | Path], since: datetime | None,
         until: datetime | None, keys: tuple[str, ...], warn: Warn | None, application_only: bool = False) -> Any:
    import duckdb

    source = files(paths)
    con = _connect()
    try:
        _load(con, source, since, until, keys, warn, application_only)
        return query(con)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise PromstackError(f"cannot read the call logs: {first}") from None
    finally:
        con.close()


def _where(since: datetime | None, until: datetime | None) -> str:
    """The calls between the bounds (datetimes, written as literals: a view takes no parameters)."""
    clauses = [CALL]
    if since is not None:
        clauses.append(f"ts >= TIMESTAMPTZ '{since.astimezone(UTC).isoformat()}'")
    if until is not None:
        clauses.append(f"ts < TIMESTAMPTZ '{until.astimezone(UTC).isoformat()}'")
    return " AND ".join(clauses)


# -- figures ---------------------------------------------------------------------------------


def figures(paths: Sequence[str | Path], *, since: datetime | None = None, until: datetime | None = None,
            window: str | None = None, by: Sequence[str] = BY, warn: Warn | None = None,
            prices: Mapping[str, tuple[float, float] | None] | None = None,
            application_only: bool = False) -> list[dict[str, Any]]:
    """One row per window x ``by`` keys, in time then key order (see the module's docstring for
    what each figure counts). ``prices``: USD per (input, output) token by logged model name,
    for lines logged without a cost (default: litellm's price map for that name).
    ``application_only``: only the SDK's calls (no ``case_id``), not test runs' nor fixture tests'.

    >>> figures(["logs/calls*.jsonl*"], since=parse_time("7d"), window="day", by=("model",))
    """
    return summary(paths, since=since, until=until, window=window, by=by, warn=warn, prices=prices, limit=0,
                   application_only=application_only)[0]


def summary(paths: Sequence[str | Path], *, since: datetime | None = None, until: datetime | None = None,
            window: str | None = None, by: Sequence[str] = BY, warn: Warn | None = None,
            prices: Mapping[str, tuple[float, float] | None] | None = None,
            limit: int = 5, application_only: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``figures()`` and ``top_errors()`` from one reading of the files (what the command uses)."""
    keys = _keys(by)
    if window is not None and window not in WINDOWS:
        raise PromstackError(f"window {window!r}: choose one of {', '.join(WINDOWS)}")
    return _run(lambda con: (_figures(con, window, keys, prices), _top(con, limit)), paths, since, until, keys, warn,
                application_only)


def _keys(by: Sequence[str]) -> tuple[str, ...]:
    unknown = [k for k in by if k not in KEYS]
    if unknown:
        raise PromstackError(f"by {unknown[0]!r}: not a call-log field to group by; choose from {', '.join(KEYS)}")
    return tuple(dict.fromkeys(by))


def _figures(con: Any, window: str | None, keys: tuple[str, ...],
             prices: Mapping[str, tuple[float, float] | None] | None) -> list[dict[str, Any]]:
    _price_table(con, prices)
    bucket = f"date_trunc('{window}', ts)" if window else "NULL::TIMESTAMPTZ"
    group = ", ".join(["w", *(_ident(k) for k in keys)])
    order = ", ".join(f"{c} NULLS FIRST" for c in ["w", *(_ident(k) for k in keys)])
    cur = con.execute(f"""
        SELECT {bucket} AS w, {", ".join([*(_ident(k) for k in keys), ""])}
            count(*) AS calls,
            count(*) FILTER (WHERE status = 'error') AS errors,
            quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE NOT coalesce(cached, false)) AS q,
            sum(input_tokens) FILTER (WHERE NOT coalesce(cached, false)) AS input_tokens,
            sum(output_tokens) FILTER (WHERE NOT coalesce(cached, false)) AS output_tokens,
            sum(cost) AS cost_usd,
            count(*) FILTER (WHERE unpriced) AS unpriced,
            count(*) FILTER (WHERE coalesce(cached, false)) AS cached
        FROM (SELECT *, {_COST} AS cost, {_COST} IS NULL AND {_OWES} AS unpriced
              FROM calls LEFT JOIN prices USING (model))
        GROUP BY {group} ORDER BY {order}""")
    names = [d[0] for d in cur.description]
    return [_row(dict(zip(names, values, strict=True)), window, keys) for values in cur.fetchall()]


# a fresh call that answered owes its price; an error without a cost and a cache hit owe nothing
_OWES = "NOT coalesce(cached, false) AND status = 'ok'"
_COST = ("CASE WHEN coalesce(cached, false) THEN 0.0 WHEN cost_usd IS NOT NULL THEN cost_usd "
         "WHEN status = 'error' AND input_tokens IS NULL THEN 0.0 "
         "ELSE input_tokens * per_input + coalesce(output_tokens, 0) * per_output END")


def _price_table(con: Any, prices: Mapping[str, tuple[float, float] | None] | None) -> None:
    """Per model logged without a cost: its price per token (the model missing when nobody prices it)."""
    models = [r[0] for r in con.execute("SELECT DISTINCT model FROM calls WHERE cost_usd IS NULL "
                                        "AND input_tokens IS NOT NULL AND model IS NOT NULL").fetchall()]
    rows = [(m, *p) for m in models if (p := _price_of(m, prices)) is not None]
    con.execute("CREATE TEMP TABLE prices (model VARCHAR, per_input DOUBLE, per_output DOUBLE)")
    if rows:
        con.executemany("INSERT INTO prices VALUES (?, ?, ?)", rows)


def _price_of(model: str, prices: Mapping[str, tuple[float, float] | None] | None) -> tuple[float, float] | None:
    if prices is not None and model in prices:
        return prices[model]
    from ..execute.pricing import price

    return price(model, {})


def _row(raw: dict[str, Any], window: str | None, keys: tuple[str, ...]) -> dict[str, Any]:
    start = raw["w"]
    end = None if start is None else start + (timedelta(hours=1) if window == "hour" else timedelta(days=1))
    calls, q = raw["calls"], raw["q"] or [None, None, None]
    tokens = [raw["input_tokens"], raw["output_tokens"]]
    return {"window_start": _iso(start), "window_end": _iso(end), **{k: raw[k] for k in keys},
            "calls": calls, "errors": raw["errors"], "error_rate": 100.0 * raw["errors"] / calls,
            "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2],
            "input_tokens": int(tokens[0] or 0), "output_tokens": int(tokens[1] or 0),
            "tokens": int(tokens[0] or 0) + int(tokens[1] or 0),
            "cost_usd": None if raw["unpriced"] or raw["cost_usd"] is None else float(raw["cost_usd"]),
            "unpriced": raw["unpriced"], "priced_cost_usd": float(raw["cost_usd"] or 0.0),
            "cached": raw["cached"], "cache_hit_rate": 100.0 * raw["cached"] / calls}


# -- top errors ------------------------------------------------------------------------------


def top_errors(paths: Sequence[str | Path], *, since: datetime | None = None, until: datetime | None = None,
               limit: int = 5, warn: Warn | None = None) -> list[dict[str, Any]]:
    """The most frequent error texts of failed calls (as logged, so masked), most frequent
    first, then the most recent: ``[{"error", "count", "last_seen"}]``."""
    return _run(lambda con: _top(con, limit), paths, since, until, (), warn)


def _top(con: Any, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    rows = con.execute("SELECT coalesce(error, '(no error text)') AS e, count(*) AS n, max(ts) AS last FROM calls "
                       "WHERE status = 'error' GROUP BY e ORDER BY n DESC, last DESC, e LIMIT ?", [limit]).fetchall()
    return [{"error": e, "count": n, "last_seen": _iso(last)} for e, n, last in rows]
