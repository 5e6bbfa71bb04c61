"""The ``--promstack-*`` options, shared by the pytest plugin and the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config.modes import CACHE_MODES, MAX_REPEAT, REGISTRY_MODES


def cache_mode_type(value: str) -> str:
    if value not in CACHE_MODES:
        raise argparse.ArgumentTypeError(f"{value!r}: must be one of {', '.join(CACHE_MODES)}")
    return value


def _gate(value: str) -> tuple[str, float]:
    from ..results.gates import parse_option

    return parse_option(value)


def prompt_version(value: str) -> tuple[str, str]:
    key, sep, version = value.partition("=")
    if not sep or not key or not version:
        raise argparse.ArgumentTypeError(f"{value!r}: write PROMPT_ID=VERSION (a number or a label), "
                                         "e.g. support=3 or support=production")
    return key, version


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return n


def repeat_count(value: str) -> int:
    n = positive_int(value)
    if n > MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"{value}: at most {MAX_REPEAT} runs per case; use a smaller N")
    return n


def shard_type(value: str) -> tuple[int, int]:
    index, sep, count = value.partition("/")
    if not (sep and index.isascii() and index.isdigit() and count.isascii() and count.isdigit()) \
            or not 1 <= int(index) <= int(count):
        raise argparse.ArgumentTypeError(f"{value!r}: write I/N, this job's shard of N, from 1/N to N/N (e.g. 2/4)")
    return int(index), int(count)


def add_options(add: Any) -> None:
    """``add`` is a pytest option group's ``addoption`` or argparse's ``add_argument``."""
    add("--promstack", action="store_true", default=False, dest="promstack",
        help="Collect prompt test files of the configured suites and run them. Default: %(default)r")
    add("--promstack-config", metavar="PATH", default=None, dest="promstack_config",
        help="Config file (promstack.yaml or pyproject.toml). Default: %(default)r "
             "(promstack.yaml, then [tool.promstack] in pyproject.toml, at the rootdir)")
    add("--promstack-suite", metavar="NAME", action="append", default=[], dest="promstack_suites",
        help="Run only this suite; repeatable. Default: %(default)r (all suites)")
    add("--promstack-model", metavar="NAME", action="append", default=[], dest="promstack_models",
        help="Run on this model instead of the configured ones (a configured name or a litellm "
             "'provider/model'); repeatable. Default: %(default)r")
    add("--promstack-concurrency", metavar="N", type=positive_int, default=None,
        dest="promstack_concurrency",
        help="Model calls in flight at once. Default: %(default)r (the config's concurrency, else 8)")
    add("--promstack-cache", metavar="MODE", type=cache_mode_type, default=None, dest="promstack_cache",
        help=f"Response cache: {', '.join(CACHE_MODES)}. refresh calls again and overwrites; replay makes "
             "no call (a miss fails); record also writes the suites' cassettes. Default: %(default)r "
             "(the config's cache.mode, else 'use')")
    add("--promstack-record", action="store_true", default=False, dest="promstack_record",
        help="Same as --promstack-cache=record: write cassettes (one JSONL per suite) for git. "
             "Default: %(default)r")
    add("--promstack-cache-url", metavar="URL", default=None, dest="promstack_cache_url",
        help="Shared Redis cache (redis://host:port/db) instead of the disk cache. Default: %(default)r")
    add("--promstack-log", metavar="PATH", default=None, dest="promstack_log",
        help="Call log (JSONL, one line per model call). Default: %(default)r (the config's log, "
             "else .promstack/calls.jsonl)")
    add("--promstack-json", metavar="PATH", default=None, dest="promstack_json",
        help="Write the run's results as one JSON document (schema promstack-results/1). Default: %(default)r")
    add("--promstack-report", metavar="PATH", default=None, dest="promstack_report",
        help="Write a self-contained HTML report (no network needed to view it). Default: %(default)r")
    add("--promstack-baseline", metavar="PATH", default=None, dest="promstack_baseline",
        help="Compare with a previous run's results JSON: each case new / fixed / regressed / still "
             "failing, and deltas per suite x model x prompt. Default: %(default)r")
    add("--promstack-fail-on-regression", action="store_true", default=False, dest="promstack_fail_on_regression",
        help="Exit 7 when a case that passed in the baseline fails now, or the quality score drops by more "
             "than the margin (when the tests otherwise passed). Default: %(default)r")
    add("--promstack-regression-margin", metavar="POINTS", type=float, default=5.0,
        dest="promstack_regression_margin",
        help="Quality score drop (0-100 points) that counts as a regression. Default: %(default)r")
    add("--promstack-save-baseline", metavar="PATH", default=None, dest="promstack_save_baseline",
        help="Write this run's results JSON as a baseline for later runs. Default: %(default)r")
    add("--promstack-gate", metavar="KEY=VALUE", action="append", default=[], dest="promstack_gates",
        type=_gate, help="A gate for the whole run, e.g. min_pass_rate=90 or max_cost_usd=1.5; repeatable; "
                         "adds to the config's gates:. Default: %(default)r")
    add("--promstack-estimate", action="store_true", default=False, dest="promstack_estimate",
        help="Print an upper bound of the run's cost per model (judge calls included: judged assertions "
             "and an arena's games; cached calls excluded) and exit without calling any model. "
             "Default: %(default)r")
    add("--promstack-registry", metavar="MODE", choices=REGISTRY_MODES, default="auto",
        dest="promstack_registry",
        help="Prompt registry (.promstack/prompts): write records each new prompt content as a version; "
             "readonly only reports it; auto is readonly when CI is set, else write. Default: %(default)r")
    add("--promstack-prompt-version", metavar="ID=VERSION", action="append", default=[], type=prompt_version,
        dest="promstack_prompt_versions",
        help="Run a recorded version (number or label) of a prompt instead of its file; repeatable. "
             "Default: %(default)r")
    add("--promstack-prompt-branches", action="store_true", default=False, dest="promstack_prompt_branches",
        help="Also run each prompt file's branches (prompts/NAME@BRANCH.yaml) side by side. Default: %(default)r")
    add("--promstack-no-python", action="store_true", default=False, dest="promstack_no_python",
        help="Refuse python: targets (as models or judges) and python assertions (they run code from the "
             "repository's files), "
             "e.g. in CI on pull requests; the same as allow_python: false. Default: %(default)r")
    add("--promstack-probe", metavar="PROMPT_FILE", default=None, dest="promstack_probe",
        help="Run the built-in prompt-injection probes against this prompt file (relative to the config's folder) "
             "as the run's one suite, probe, on --promstack-model or every configured model. Default: %(default)r")
    add("--promstack-probe-var", metavar="NAME", default=None, dest="promstack_probe_var",
        help="The prompt variable --promstack-probe writes each attack into. Default: %(default)r (input)")
    add("--promstack-probe-family", metavar="FAMILY", action="append", default=[], dest="promstack_probe_families",
        help="Only this family of probes (override, roleplay, extraction, delimiter, encoding, smuggling, "
             "indirect); repeatable. Default: %(default)r (every family)")
    add("--promstack-shard", metavar="I/N", type=shard_type, default=None, dest="promstack_shard",
        help="Run only shard I of N of the selected cases (whole test rows, balanced by planned model calls, the "
             "same split in every job); each job writes its --promstack-json and `promstack report A.json B.json ...` "
             "merges them, judging the gates on the whole. Default: %(default)r")
    add("--promstack-repeat", metavar="N", type=repeat_count, default=None, dest="promstack_repeat",
        help=f"Run each case N times, at most {MAX_REPEAT} (see min_pass in the config). Default: %(default)r "
             "(the config's repeat, else 1)")


def settings_options(option: Any, here: Any = None, workers: int = 1) -> dict[str, Any]:
    """The parsed options that ``config.load_settings`` takes; a relative ``--promstack-config``
    is relative to ``here`` (the folder pytest was started in), as a path on a command line is;
    ``workers``: the xdist processes sharing the run's concurrency."""
    config = option.promstack_config
    if config and here is not None:
        config = str(Path(here, config).resolve())
    return {
        "config": config,
        "suites": option.promstack_suites,
        "models": option.promstack_models,
        "concurrency": option.promstack_concurrency,
        "cache": "record" if option.promstack_record else option.promstack_cache,
        "cache_url": option.promstack_cache_url,
        "log": option.promstack_log,
        "repeat": option.promstack_repeat,
        "probe": option.promstack_probe,
        "probe_var": option.promstack_probe_var,
        "probe_families": list(option.promstack_probe_families),
        "gates": list(option.promstack_gates),
        "no_python": option.promstack_no_python,  # pairs: a command-line gate adds to a config gate of its key
        "run": run_options(option),
        "workers": workers,
    }


def run_options(option: Any) -> Any:
    from ..config.settings import RunOptions

    return RunOptions(
        json=tuple(p for p in (option.promstack_json, option.promstack_save_baseline) if p),
        report=option.promstack_report, baseline=option.promstack_baseline,
        regression_margin=option.promstack_regression_margin,
        fail_on_regression=option.promstack_fail_on_regression, registry=option.promstack_registry,
        prompt_versions=tuple(option.promstack_prompt_versions), prompt_branches=option.promstack_prompt_branches,
        estimate=option.promstack_estimate, shard=option.promstack_shard)
