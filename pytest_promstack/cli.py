"""The ``promstack`` command: ``test`` (pytest --promstack) and ``report`` (HTML from a results JSON)."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promstack",
        description="Prompt regression tests for LLM applications (pytest-promstack).",
        epilog="Exit codes: those of pytest (0 all passed, 1 some failed, 2 interrupted, "
               "4 usage error, 5 nothing collected), 6 when the tests passed but a gate failed, and 7 "
               "when they passed but --promstack-fail-on-regression found a regression. "
               "`promstack report` exits 0, or 4 when its input is not a results JSON.",
    )
    parser.add_argument("--version", action="version", version=f"promstack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    test = sub.add_parser("test", help="run the prompt suites (pytest --promstack)",
                          description="Run `pytest --promstack`; extra arguments go to pytest.")
    test.add_argument("--suite", action="append", default=[], metavar="NAME",
                      help="run only this suite; repeatable")
    report = sub.add_parser("report", help="write the HTML report from a results JSON",
                            description="Render the self-contained HTML report from a results JSON "
                                        "(--promstack-json), optionally compared with a baseline results JSON.")
    report.add_argument("results", metavar="RESULTS_JSON", help="a results JSON written by --promstack-json")
    report.add_argument("-o", "--output", metavar="PATH", default="report.html",
                        help="where to write the HTML (default: %(default)s)")
    report.add_argument("--baseline", metavar="PATH", default=None,
                        help="compare with this earlier results JSON (as --promstack-baseline does)")
    report.add_argument("--regression-margin", metavar="POINTS", type=float, default=5.0,
                        help="quality drop that counts as a regression (default: %(default)s)")
    return parser


def report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .baseline import compare, load
    from .errors import PromstackError
    from .report import html

    try:
        doc = load(Path(args.results), "results JSON")
        if args.baseline:
            doc["baseline"] = compare(doc["cases"], load(Path(args.baseline)), args.regression_margin, args.baseline)
    except PromstackError as exc:
        print(f"promstack report: {exc}", file=sys.stderr)
        return 4
    size = html.write(Path(args.output), doc)
    print(f"promstack: wrote {args.output} ({html.human_size(size)}, {len(doc['cases'])} cases)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "test":
        import pytest

        pytest_args = ["--promstack", *(f"--promstack-suite={s}" for s in args.suite), *rest]
        return int(pytest.main(pytest_args))
    if args.command == "report":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return report(args)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
