"""The ``promstack`` command. This version has ``--version``, ``--help`` and ``test``."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promstack",
        description="Prompt regression tests for LLM applications (pytest-promstack).",
        epilog="Exit codes: those of pytest (0 all passed, 1 some failed, 2 interrupted, "
               "4 usage error, 5 nothing collected), and 6 when the tests passed but a gate failed.",
    )
    parser.add_argument("--version", action="version", version=f"promstack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    test = sub.add_parser("test", help="run the prompt suites (pytest --promstack)",
                          description="Run `pytest --promstack`; extra arguments go to pytest.")
    test.add_argument("--suite", action="append", default=[], metavar="NAME",
                      help="run only this suite; repeatable")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "test":
        import pytest

        pytest_args = ["--promstack", *(f"--promstack-suite={s}" for s in args.suite), *rest]
        return int(pytest.main(pytest_args))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
