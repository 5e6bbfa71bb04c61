"""Results and call logs as tables for notebooks (``from pytest_promstack import load_results,
load_calls``), and the Parquet export of ``promstack monitor --format parquet``.

    >>> load_calls("logs/calls*.jsonl*").to_pandas()      # one row per log line, read by DuckDB
    >>> load_results("results.json").to_pandas()           # one row per case of a run

A table is read when it is asked for (``to_pandas()``, ``rows()``); pandas is imported only by
``to_pandas()`` and is not a dependency of promstack (``pip install pandas``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError
from . import monitor

# every field of a call-log line (docs/monitoring.md), in the log's order, with its type
CALL_FIELDS = {"timestamp": "TIMESTAMPTZ", "run_id": "VARCHAR", "session_id": "VARCHAR", "kind": "VARCHAR",
               "suite": "VARCHAR", "case_id": "VARCHAR", "prompt_id": "VARCHAR", "prompt_version": "VARCHAR",
               "model": "VARCHAR", "litellm_model": "VARCHAR", "input_tokens": "BIGINT", "output_tokens": "BIGINT",
               "cost_usd": "DOUBLE", "latency_ms": "DOUBLE", "cached": "BOOLEAN", "attempt": "BIGINT",
               "attempts": "BIGINT", "status": "VARCHAR", "status_code": "BIGINT", "error": "VARCHAR",
               "finish_reason": "VARCHAR", "user_id": "VARCHAR", "guard": "VARCHAR", "detail": "VARCHAR"}
# one row per case of a results JSON: what a notebook compares across runs, flat
RESULT_COLUMNS = ("run_id", "run_started", "suite", "model", "litellm_model", "case_id", "prompt_id",
                  "prompt_version", "file", "row", "outcome", "passed", "score", "quality", "passes", "repeats",
                  "latency_ms", "calls", "input_tokens", "output_tokens", "cost_usd", "eval_cost_usd", "cached",
                  "attempts", "finish_reason", "truncated", "error", "phase", "human_score")
INTEGERS = ("row", "passes", "repeats", "calls", "input_tokens", "output_tokens", "attempts", "truncated")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise PromstackError("to_pandas() needs pandas, which promstack does not install: pip install pandas") from None
    return pandas


@dataclass(frozen=True)
class Table:
    """Rows read on demand: ``to_pandas()`` (a DataFrame) or ``rows()`` (a list of dicts)."""

    columns: tuple[str, ...]
    _rows: Callable[[], list[dict[str, Any]]]
    _frame: Callable[[], Any]

    def rows(self) -> list[dict[str, Any]]:
        return self._rows()

    def to_pandas(self) -> Any:
        return self._frame()


# -- call logs -----------------------------------------------------------------------------------


def load_calls(paths: str | Path | Sequence[str | Path], *, since: datetime | str | None = None,
               until: datetime | str | None = None, calls_only: bool = False) -> Table:
    """Every whole line of the call logs (files, globs, folders; rotated, gzipped or Parquet), one
    row each with the call-log fields (``timestamp`` a UTC datetime), in time order. ``since``
    (inclusive) and ``until`` (exclusive) take datetimes or what ``--since`` takes (``7d``,
    ``2025-03-01``); ``calls_only`` keeps the lines ``promstack monitor`` counts as calls. A line
    that is not a whole record (a torn tail) is left out with one warning per file."""
    given = [paths] if isinstance(paths, str | Path) else list(paths)
    source = monitor.files(given)  # a path naming nothing fails now, not at to_pandas()
    bounds = (_moment(since, "since"), _moment(until, "until"))

    def fetch(how: Callable[[Any], Any]) -> Any:
        return _query(source, *bounds, calls_only, how)

    def rows() -> list[dict[str, Any]]:
        return fetch(lambda cur: [dict(zip(CALL_FIELDS, r, strict=True)) for r in cur.fetchall()])

    def frame() -> Any:
        _pandas()
        return fetch(lambda cur: cur.df())

    return Table(tuple(CALL_FIELDS), rows, frame)


def _moment(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return monitor.parse_time(value, name)


def _query(source: monitor.Source, since: datetime | None, until: datetime | None, calls_only: bool,
           how: Callable[[Any], Any]) -> Any:
    import duckdb

    raw = {k: "VARCHAR" if k == "timestamp" else t for k, t in CALL_FIELDS.items()}
    con = monitor._connect()
    try:
        monitor.materialize(con, source, lambda readable: "CREATE OR REPLACE TEMP TABLE lines AS SELECT * REPLACE "
                            f"(try_cast(timestamp AS TIMESTAMPTZ) AS timestamp) "
                            f"FROM ({monitor.records(con, readable, raw)})",
                            lambda line: warnings.warn(line, stacklevel=8))
        _warn_torn(con)
        where = ["timestamp IS NOT NULL"]
        where += [monitor.CALL] if calls_only else []
        where += [f"timestamp >= TIMESTAMPTZ '{since.isoformat()}'"] if since else []
        where += [f"timestamp < TIMESTAMPTZ '{until.isoformat()}'"] if until else []
        cols = ", ".join(monitor._ident(k) for k in CALL_FIELDS)
        return how(con.execute(f"SELECT {cols} FROM lines WHERE {' AND '.join(where)} ORDER BY timestamp, filename"))
    except duckdb.Error as exc:
        raise PromstackError(f"cannot read the call logs: {str(exc).strip().splitlines()[0]}") from None
    finally:
        con.close()


def _warn_torn(con: Any) -> None:
    counts = monitor.rejected(con)
    for name, count in con.execute("SELECT filename, count(*) FROM lines WHERE timestamp IS NULL GROUP BY filename"
                                   ).fetchall():
        counts[name] = counts.get(name, 0) + count
    monitor.warn_not_whole(counts, lambda line: warnings.warn(line, stacklevel=8))  # the caller of to_pandas()


# -- results JSON --------------------------------------------------------------------------------


def load_results(paths: str | Path | Sequence[str | Path]) -> Table:
    """One row per case of results JSONs (``--promstack-json``), several runs one after another
    (``run_id`` tells them apart). ``latency_ms`` is the mean of the case's answers (``calls`` of
    them); ``passed`` is passed or xpassed."""
    from .baseline import load

    given = [paths] if isinstance(paths, str | Path) else list(paths)
    docs = [load(Path(p), what="results JSON") for p in given]
    records = [_case(doc["run"], case) for doc in docs for case in doc["cases"]]
    return Table(RESULT_COLUMNS, lambda: [dict(r) for r in records], lambda: _results_frame(records))


def _case(run: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    latencies = case.get("latencies") or []
    return {"run_id": run.get("id"), "run_started": run.get("started"), **{k: case.get(k) for k in RESULT_COLUMNS
            if k not in ("run_id", "run_started", "passed", "latency_ms", "calls")},
            "passed": case.get("outcome") in ("passed", "xpassed"),
            "latency_ms": sum(latencies) / len(latencies) if latencies else None, "calls": len(latencies)}


def _results_frame(records: list[dict[str, Any]]) -> Any:
    pandas = _pandas()
    frame = pandas.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))
    frame["run_started"] = pandas.to_datetime(frame["run_started"], utc=True, format="ISO8601")
    return frame.astype({k: "Int64" for k in INTEGERS})


# -- promstack monitor --format parquet ----------------------------------------------------------

FIGURE_TYPES = {"window_start": "TIMESTAMPTZ", "window_end": "TIMESTAMPTZ", "calls": "BIGINT", "errors": "BIGINT",
                "error_rate": "DOUBLE", "p50_ms": "DOUBLE", "p95_ms": "DOUBLE", "p99_ms": "DOUBLE",
                "input_tokens": "BIGINT", "output_tokens": "BIGINT", "tokens": "BIGINT", "cost_usd": "DOUBLE",
                "unpriced": "BIGINT", "priced_cost_usd": "DOUBLE", "cached": "BIGINT", "cache_hit_rate": "DOUBLE"}


def write_parquet(rows: Sequence[dict[str, Any]], by: Sequence[str], path: Path) -> None:
    """The figures as a Parquet file (the CSV's columns; windows as UTC timestamps), written
    beside ``path`` and renamed over it."""
    import duckdb

    names = ["window_start", "window_end", *by, *list(FIGURE_TYPES)[2:]]
    types = {k: FIGURE_TYPES.get(k, "VARCHAR") for k in names}
    shape = ", ".join(f"{monitor._ident(k)} {'VARCHAR' if t == 'TIMESTAMPTZ' else t}" for k, t in types.items())
    cols = ", ".join(f"CAST({monitor._ident(k)} AS TIMESTAMPTZ) AS {monitor._ident(k)}" if t == "TIMESTAMPTZ"
                     else monitor._ident(k) for k, t in types.items())
    tmp = path.with_name(f".{path.name}.tmp")
    con = monitor._connect()
    try:
        con.execute(f"CREATE TEMP TABLE figures AS SELECT {cols} FROM (SELECT unnest(?::STRUCT({shape})[], "
                    "recursive := true))", [[{k: r.get(k) for k in names} for r in rows]])
        con.execute(f"COPY figures TO {monitor._quote(str(tmp))} (FORMAT parquet)")
        tmp.replace(path)
    except (duckdb.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        why = str(exc).strip().splitlines()[0] if isinstance(exc, duckdb.Error) else (exc.strerror or str(exc))
        raise PromstackError(f"--output {path}: cannot write it ({why}); give a path in a folder you can "
                             "write") from None
    finally:
        con.close()
