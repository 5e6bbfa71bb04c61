"""``promstack monitor``: the figures of live traffic from call logs (results/monitor.py), as
terminal tables, JSON or CSV."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError
from ..util.text import safe

FORMATS = ("table", "json", "csv", "parquet")
# --by's short names; the log's own field names work too
BY_NAMES = {"prompt": "prompt_id", "version": "prompt_version", "model": "model", "suite": "suite",
            "user": "user_id", "run": "run_id", "case": "case_id", "session": "session_id",
            "provider_model": "litellm_model", "finish": "finish_reason", "http": "status_code"}
HEADERS = {"prompt_id": "prompt", "prompt_version": "version", "model": "model", "suite": "suite",
           "user_id": "user", "run_id": "run", "case_id": "case", "session_id": "session",
           "litellm_model": "provider model", "finish_reason": "finish", "status_code": "HTTP status"}


DEFAULT_BY = "prompt,version,model"
DEFAULT_TOP = 5


def add_parser(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    p = sub.add_parser("monitor", parents=[common], epilog=epilog, help="figures of live traffic from call logs",
                       description="Read call logs (files, globs, folders; rotated, gzipped or Parquet) and report "
                                   "per time window and per prompt x version x model: calls, error rate, P50/P95/P99 "
                                   "latency, tokens, cost and cache hit rate, then the most frequent errors. Times are "
                                   "UTC.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="call logs (default: log: of the config, with its rotated files)")
    p.add_argument("--since", metavar="T", help="from this time on: an ISO date or time, or a span back from now "
                                                "(30m, 24h, 7d, 2w)")
    p.add_argument("--until", metavar="T", help="before this time (same forms as --since)")
    p.add_argument("--window", metavar="W", help="one row per hour or day (default: one row for the whole range)")
    p.add_argument("--by", metavar="KEYS", default=DEFAULT_BY,
                   help=f"group by these, comma-separated: {', '.join(BY_NAMES)}; none for one row per window "
                        "(default: %(default)s)")
    p.add_argument("--format", dest="output_format", metavar="F", default="table",
                   help=f"{', '.join(FORMATS)} (default: %(default)s); json and csv go to stdout for machines, "
                        "parquet (the csv's columns) to --output")
    p.add_argument("--output", metavar="PATH", help="the file --format parquet writes")
    p.add_argument("--top-errors", metavar="N", type=_text_of("--top-errors", int), default=DEFAULT_TOP,
                   help="list the N most frequent error texts (0: none; default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="judge the alerts: rules of promstack.yaml on a window ending now (or --until), print one "
                        "line per rule, post what newly fires to the webhook, exit 1 on an alert")
    p.add_argument("--html", metavar="PATH", help="write the dashboard, one self-contained HTML page (cost, budget, "
                                                  "latency, errors, tokens, expensive prompts, alerts), instead of "
                                                  "the tables; windows by the hour up to 3 days, else by the day")
    p.add_argument("--budget", metavar="USD", type=_text_of("--budget", float),
                   help="with --html: the monthly budget to burn against (default: alerts.max_cost_usd when its "
                        "window is 30d)")
    p.add_argument("--results", metavar="PATH", help="a test run's results JSON (--promstack-json) whose pass rate, "
                                                     "P95 and cost per call sit beside production's (the table, json "
                                                     "or --html)")
    p.add_argument("--prometheus", metavar="ADDR",
                   help="serve the figures as Prometheus metrics on ADDR (:9464 every interface, 127.0.0.1:9464 this "
                        "machine only) until stopped, recomputed on each scrape over --since (default: the last 1h)")
    p.add_argument("--prometheus-textfile", metavar="PATH",
                   help="write the same metrics once to PATH (*.prom, for node_exporter's textfile collector) and exit")


class NotANumber:
    """A number option's text that is not one: reported by ``run`` as one line (exit 4), not by
    argparse's usage text (exit 2)."""

    def __init__(self, option: str, text: str, kind: type) -> None:
        self.message = (f"{option} {text}: not {'a whole number' if kind is int else 'a number'}; write e.g. "
                        f"{option} {'5' if kind is int else '500'}")


def _text_of(option: str, kind: type) -> Any:
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            return NotANumber(option, text, kind)

    return convert


@dataclass
class View:
    """What one ``promstack monitor`` reads and computes: its rows feed every output (the tables,
    JSON, CSV, and the alerts of --check and the dashboard of --html when they come)."""

    files: list[Path]
    since: datetime | None
    until: datetime | None
    window: str | None
    by: tuple[str, ...]
    rows: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    settings: Any = None
    beside: dict[str, Any] | None = None  # --results: the test run beside production


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the figures (an empty range included); bad input raises (exit 4)."""
    for given in (args.top_errors, args.budget):
        if isinstance(given, NotANumber):
            raise PromstackError(given.message)
    if args.check:
        return check(args)
    if args.html and (args.prometheus or args.prometheus_textfile):
        raise PromstackError("--html and --prometheus: choose one (the dashboard is written once; the metrics are "
                             "served or written for Prometheus)")
    if args.html:
        return dashboard(args)
    if args.budget is not None:
        raise PromstackError("--budget goes with --html PATH (the dashboard); add --html dashboard.html")
    if args.results is not None and args.output_format not in ("table", "json"):
        raise PromstackError(f"--results with --format {args.output_format}: the test run beside production is in the "
                             "table, --format json and --html")
    if args.prometheus or args.prometheus_textfile:
        return prometheus(args)
    _check_output(args)
    view = gather(args)
    if args.output_format == "parquet":
        from ..results.notebook import write_parquet

        write_parquet(view.rows, view.by, Path(args.output))
        print(safe(f"promstack monitor: wrote {args.output} ({len(view.rows)} rows)"))
        return 0
    OUTPUTS[args.output_format](view)
    return 0


def _check_output(args: argparse.Namespace) -> None:
    if args.output_format == "parquet" and not args.output:
        raise PromstackError("--format parquet: give the file to write with --output PATH (such as figures.parquet)")
    if args.output and args.output_format != "parquet":
        raise PromstackError(f"--output {args.output}: only --format parquet writes a file; {args.output_format} "
                             "goes to stdout (redirect it with >)")


def prometheus(args: argparse.Namespace) -> int:
    """``--prometheus ADDR`` serves the figures until stopped (exit 0 on Ctrl-C or SIGTERM);
    ``--prometheus-textfile PATH`` writes them once. One window, ``--since`` (default 1h; a span
    slides with each scrape) up to ``--until`` or now, grouped by ``--by``."""
    from ..results import prometheus as prom

    if args.prometheus and args.prometheus_textfile:
        raise PromstackError("--prometheus and --prometheus-textfile: choose one (serve, or write a file once)")
    if args.window is not None:
        raise PromstackError(f"--window {args.window}: the metrics cover one window, --since (default 1h) up to now; "
                             "leave --window out (Prometheus keeps the history)")
    warn = _warn if args.prometheus_textfile else _warn_once()
    compute = _metrics(args, warn)
    if args.prometheus_textfile:
        prom.write_textfile(args.prometheus_textfile, prom.Collector(compute, _by(args.by), catch=False))
        print(safe(f"promstack monitor: wrote {args.prometheus_textfile}"))
        return 0
    prom.address(args.prometheus)  # a bad address is one line before anything is read
    compute()  # a missing log or a bad time is exit 4 now, not a failed scrape later
    server = prom.serve(args.prometheus, prom.Collector(compute, _by(args.by), warn=warn))
    span = args.since or "1h"
    what = f"of the last {span}" if monitor_relative(span) else f"since {span}"
    print(safe(f"promstack monitor: serving the figures {what} at {server.url} (Ctrl-C stops)"), flush=True)
    return _wait(server)


def monitor_relative(span: str) -> bool:
    from ..results.monitor import _RELATIVE

    return bool(_RELATIVE.match(span.strip()))


def _metrics(args: argparse.Namespace, warn: Any) -> Any:
    """The figures and the window's length, computed afresh on each call (the scrape's now)."""
    from datetime import UTC

    from ..results import monitor
    from ..results.prometheus import recent

    by, settings = _by(args.by), _settings(args)
    span = args.since or "1h"
    until = monitor.parse_time(args.until, "--until") if args.until else None
    monitor.parse_time(span, "--since")
    prices = _prices(settings)

    def compute() -> tuple[list[dict[str, Any]], float]:
        end = until or datetime.now(UTC)
        since = monitor.parse_time(span, "--since", now=end)
        # the config's rotated files come and go: those of days before the window are passed over;
        # files named on the command line are read whatever their names say
        paths = args.paths or recent(_default_logs(settings), since)
        rows = monitor.figures(paths, since=since, until=end, by=by, warn=warn, prices=prices) if paths else []
        return rows, (end - since).total_seconds()

    return compute


def _warn_once() -> Any:
    """The server's warnings: each text once (a torn line would repeat on every scrape)."""
    seen: set[str] = set()

    def warn(text: str) -> None:
        if text not in seen:
            seen.add(text)
            _warn(text)

    return warn


def _wait(server: Any) -> int:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def check(args: argparse.Namespace) -> int:
    """``--check``: each rule of ``alerts:`` on the overall figures of its window ending now
    (``--until`` to judge another moment), through results/alerts.check: its lines printed, what
    newly fires posted once; exit 1 on an alert, 0 otherwise."""
    from datetime import UTC

    from ..results import alerts, monitor

    _check_alone(args)
    settings = _settings(args)
    if settings.alerts is None or not settings.alerts.rules():
        where = f"in {settings.source}" if settings.config_file is not None else "here (no promstack.yaml found)"
        raise PromstackError(f"--check: no alerts: {where}; add the rules to watch (alerts: {{}} watches the guide's "
                             "P95 above 5 s and error rate above 1 %; docs/monitoring.md#alerts)")
    paths = args.paths or _default_logs(settings)
    now = monitor.parse_time(args.until, "--until") if args.until else datetime.now(UTC)
    said: list[str] = []
    once = _warn_once()  # a torn line is said once, not once per rule's window

    def warn(text: str) -> None:
        if text not in said:
            said.append(text)
        once(text)

    prices = _prices(settings)

    def figures_for(span: Any) -> dict[str, Any] | None:
        rows = monitor.figures(paths, since=now - span, until=now, by=(), warn=warn, prices=prices)
        return rows[0] if rows else None

    # a past moment is judged only: posting an old incident would mark today's alert as posted
    result = alerts.check(settings.alerts, figures_for, now, root=settings.root, scope=_scope(args.paths),
                          post_news=args.until is None)
    notes = result.lines[len(result.verdicts):]
    exit_code = result.exit_code
    unread = [text for text in said if text.endswith(monitor.LEFT_OUT)]
    if unread:  # a log nobody can read must not look like a quiet night
        notes.append(f"promstack: ALERT: {len(unread)} log file{'s' * (len(unread) != 1)} could not be read (see the "
                     "warnings); the verdicts leave their calls out")
        exit_code = max(exit_code, alerts.ALERT_EXIT)
    if args.until is not None:
        notes.append(f"promstack: --until {args.until}: judged at that moment only (nothing posted, the alerts state "
                     "left as it was)")
    if args.output_format == "json":
        import json

        print(json.dumps({"at": _when(now), "exit_code": exit_code, "verdicts": [v.to_dict() for v in result.verdicts],
                          "notes": [*(f"promstack monitor: warning: {t}" for t in said), *notes]},
                         ensure_ascii=False, indent=2))
        return exit_code
    for line in [*result.lines[:len(result.verdicts)], *notes]:
        print(safe(line))
    return exit_code


def _check_alone(args: argparse.Namespace) -> None:
    """--check prints the verdicts (a table of lines, or --format json); the options of the other
    outputs would be ignored, so they are refused."""
    others = [name for name, given in (("--html", args.html), ("--prometheus", args.prometheus),
                                        ("--prometheus-textfile", args.prometheus_textfile),
                                        ("--budget", args.budget), ("--results", args.results),
                                        ("--since", args.since), ("--window", args.window),
                                        ("--output", args.output)) if given is not None]
    others += ["--by"] if args.by != DEFAULT_BY else []
    others += ["--top-errors"] if args.top_errors != DEFAULT_TOP else []
    if args.output_format not in ("table", "json"):
        others.append(f"--format {args.output_format}")
    if others:
        raise PromstackError(f"--check with {others[0]}: --check judges each rule on its own window ending now (or "
                             "--until) and prints the verdicts (--format json for machines); run the other output "
                             "as its own command")


def _scope(paths: list[str]) -> str:
    """The logs a check reads, as its state remembers them: the config's log (''), or the PATHs
    given, made absolute with links and .. resolved (two applications' logs keep apart alert
    states; one log however it is spelt keeps one)."""
    return "\n".join(sorted({str((Path.cwd() / p).resolve()) for p in paths}))


def dashboard(args: argparse.Namespace) -> int:
    """``--html PATH``: the dashboard page (report/dashboard.py), announced in one line."""
    import math

    from ..report import dashboard, html
    from ..results import monitor

    if args.window is not None and args.window not in monitor.WINDOWS:
        raise PromstackError(f"--window {args.window}: choose one of {', '.join(monitor.WINDOWS)}")
    if args.top_errors < 0:
        raise PromstackError(f"--top-errors {args.top_errors}: give 0 or more")
    if Path(args.html).is_dir():
        raise PromstackError(f"--html {args.html}: cannot write the page there (a folder); give a file path such as "
                             "dashboard.html")
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        raise PromstackError(f"--budget {args.budget:g}: give the monthly budget in USD, more than 0 (--budget 500)")
    doc = None
    if args.results is not None:
        from ..results.baseline import load

        doc = load(Path(args.results), "results JSON")
    since, until = _range(args)
    settings = _settings(args)
    paths = args.paths or _default_logs(settings)
    data = dashboard.collect(paths, since=since, until=until, window=args.window, prices=_prices(settings),
                             warn=_warn, alerts=settings.alerts, budget=args.budget, results=doc,
                             results_path=args.results, top_errors=args.top_errors)
    try:
        size = dashboard.write(Path(args.html), data)
    except OSError as exc:
        raise PromstackError(f"--html {args.html}: cannot write the page there ({exc.strerror or type(exc).__name__})"
                             "; give a file path such as dashboard.html") from None
    print(safe(f"promstack: wrote {args.html} ({html.human_size(size)}, {data['totals']['calls']:,} calls)"))
    return 0


def gather(args: argparse.Namespace) -> View:
    from ..results import monitor

    if args.output_format not in FORMATS:
        raise PromstackError(f"--format {args.output_format}: choose one of {', '.join(FORMATS)}")
    if args.window is not None and args.window not in monitor.WINDOWS:
        raise PromstackError(f"--window {args.window}: choose one of {', '.join(monitor.WINDOWS)}")
    if args.top_errors < 0:
        raise PromstackError(f"--top-errors {args.top_errors}: give 0 or more")
    since, until = _range(args)
    by, settings = _by(args.by), _settings(args)
    paths = args.paths or _default_logs(settings)
    found = monitor.files(paths)
    rows, errors = monitor.summary(paths, since=since, until=until, window=args.window, by=by, warn=_warn,
                                   prices=_prices(settings), limit=args.top_errors)
    beside = None
    if args.results is not None:
        from ..report.dashboard import beside_production
        from ..results.baseline import load

        beside = beside_production(load(Path(args.results), "results JSON"), args.results, paths, since, until,
                                   _prices(settings))
    return View([*found.jsonl, *found.parquet], since, until, args.window, by, rows, errors, settings, beside)


def _range(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until``, the first before the second."""
    from ..results import monitor

    since = monitor.parse_time(args.since, "--since") if args.since else None
    until = monitor.parse_time(args.until, "--until") if args.until else None
    if since is not None and until is not None and since >= until:
        raise PromstackError(f"--since {args.since} is not before --until {args.until}: give the earlier time to "
                             "--since")
    return since, until


def _warn(text: str) -> None:
    print(safe(f"promstack monitor: warning: {text}"), file=sys.stderr)


def _by(text: str) -> tuple[str, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    known = {**BY_NAMES, **{v: v for v in BY_NAMES.values()}}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise PromstackError(f"--by {text}: {unknown[0] if unknown else 'nothing'} is not a grouping; give "
                             f"comma-separated names from {', '.join(BY_NAMES)}, or none")
    return tuple(dict.fromkeys(known[n] for n in names))


def _settings(args: argparse.Namespace) -> Any:
    from ..config.settings import load_or_default
    from ..pipeline.runner import default_root

    root = Path.cwd() if args.config else default_root(Path.cwd())
    return load_or_default(root, {"config": args.config})


def _default_logs(settings: Any) -> list[str]:
    from ..results.monitor import log_files

    if settings.log_path is None:
        raise PromstackError(f"no call log: log: is off in {settings.source}; pass the log files as PATH")
    found = log_files(settings.log_path)
    if not found:
        raise PromstackError(f"{settings.log_path}: no call log yet (log: in {settings.source}); calls are logged "
                             "by the SDK, the fixture and test runs, or pass the log files as PATH")
    return [str(p) for p in found]


def _prices(settings: Any) -> dict[str, tuple[float, float] | None]:
    """USD per token of each configured model alias, as a test run prices its answers."""
    from ..execute.pricing import price

    return {alias: price(spec.model, spec.params) for alias, spec in settings.models.items()}


# -- outputs ------------------------------------------------------------------------------------


def _table(view: View) -> None:
    from tabulate import tabulate

    span = f"{_when(view.since) or 'the first call'} to {_when(view.until) or 'the last'}"
    print(f"promstack monitor: {len(view.files)} file{'s' * (len(view.files) != 1)}, {span} (UTC)")
    if not view.rows:
        print("no calls in this range")
        return
    keys = [HEADERS.get(k, k) for k in view.by]
    headers = [*(["window"] if view.window else []), *keys, "calls", "errors %", "p50 ms", "p95 ms", "p99 ms",
               "tokens in", "tokens out", "cost USD", "cache %"]
    print(tabulate([_cells(r, view) for r in view.rows], headers=headers, tablefmt="simple", disable_numparse=True,
                   colalign=("left",) * (len(headers) - 9) + ("right",) * 9))
    if view.errors:
        print("\ntop errors")
        rows = [[e["count"], e["last_seen"], safe(e["error"])] for e in view.errors]
        print(tabulate(rows, headers=["calls", "last seen", "error"], tablefmt="simple", disable_numparse=True))
    if view.beside is not None:
        _beside(view.beside)


def _beside(beside: dict[str, Any]) -> None:
    """The test run's figures beside production's, per prompt x version x model of the run."""
    from tabulate import tabulate

    print(f"\ntest run {safe(beside['run_id'] or '?')} ({safe(beside['path'])}) beside production (the calls the "
          "application made; test runs' lines left out)")
    rows = [[safe(r["prompt_id"]), safe(r["prompt_version"]), safe(r["model"]), str(r["cases"]),
             "-" if r["pass_pct"] is None else f"{r['pass_pct']:.1f}", _ms(r["ci_p95_ms"]), _ms(r["live_p95_ms"]),
             _usd(r["ci_cost_per_call"]), _usd(r["live_cost_per_call"]), str(r["live_calls"]) if r["live_calls"]
             else "not in production", "-" if r["live_error_rate"] is None else f"{r['live_error_rate']:.1f}"]
            for r in beside["rows"]]
    print(tabulate(rows, headers=["prompt", "version", "model", "cases", "pass %", "CI p95 ms", "live p95 ms",
                                  "CI USD/call", "live USD/call", "live calls", "live errors %"],
                   tablefmt="simple", disable_numparse=True))


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6f}"


def _cells(row: dict[str, Any], view: View) -> list[str]:
    start = row["window_start"] or ""
    window = [start[:10] if view.window == "day" else start[:16].replace("T", " ")] if view.window else []
    cost = (f"{row['cost_usd']:.6f}" if row["cost_usd"] is not None
            else f"n/a ({row['unpriced']} unpriced)" if row["unpriced"] else "n/a")
    return [*window, *(safe("-" if row[k] is None else row[k]) for k in view.by), str(row["calls"]),
            f"{row['error_rate']:.1f}", *(_ms(row[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
            str(row["input_tokens"]), str(row["output_tokens"]), cost, f"{row['cache_hit_rate']:.1f}"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _json(view: View) -> None:
    import json

    doc = {"files": [str(p) for p in view.files], "since": _when(view.since), "until": _when(view.until),
           "window": view.window, "by": list(view.by), "figures": view.rows, "top_errors": view.errors}
    if view.beside is not None:
        doc["beside"] = view.beside
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def _csv(view: View) -> None:
    import csv

    keys = ["window_start", "window_end", *view.by, "calls", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms",
            "input_tokens", "output_tokens", "tokens", "cost_usd", "unpriced", "priced_cost_usd", "cached",
            "cache_hit_rate"]
    writer = csv.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(view.rows)


OUTPUTS = {"table": _table, "json": _json, "csv": _csv}
