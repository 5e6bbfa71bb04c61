"""``promstack prompt cost ID``: what a prompt's versions cost at live volumes (the figures come
from results/prompt_cost.py; the call logs are read by results/monitor.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError
from ..util.text import safe

FORMATS = ("table", "json")


def add_parser(psub: Any, common: argparse.ArgumentParser) -> None:
    p = psub.add_parser("cost", parents=[common], help="what each version costs at live volumes",
                        description="Per version of the prompt: the input tokens of its fixed text (rendered with "
                                    "every variable empty, counted with the model's tokenizer) against the logged "
                                    "input tokens, its calls per day and cost per call from the call logs; for two "
                                    "versions, the cost difference per 1,000 calls and per month beside their "
                                    "quality difference from their last evaluations.")
    p.add_argument("id", metavar="ID")
    p.add_argument("--versions", nargs="+", metavar="V",
                   help="version numbers or labels, in this order; two are compared (default: every version in "
                        "the logs, else the latest two)")
    p.add_argument("--logs", nargs="+", metavar="PATH",
                   help="call logs: files, globs, folders (default: log: of the config, with its rotated files)")
    p.add_argument("--since", metavar="T", help="only calls from this time on: an ISO date or time, or a span back "
                                                "from now (30m, 24h, 7d, 2w)")
    p.add_argument("--model", metavar="M", help="count tokens and price input with this model, a configured name or "
                                                "a litellm name (default: the prompt's model:, else the model most "
                                                "logged for the version)")
    p.add_argument("--results", metavar="PATH", help="a results JSON (--promstack-json) of a run on several models: "
                                                     "its cheapest model passing the gates, priced at live volumes")
    p.add_argument("--format", dest="output_format", metavar="F", default="table",
                   help=f"{', '.join(FORMATS)} (default: %(default)s)")


def run(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    from ..results import prompt_cost as pc
    from ..results.monitor import parse_time

    if args.output_format not in FORMATS:
        raise PromstackError(f"--format {args.output_format}: choose one of {', '.join(FORMATS)}")
    registry.entry(args.id)  # an unknown prompt: one line naming the known ones
    since = parse_time(args.since, "--since") if args.since else None
    doc = _results(args.results)
    notes: list[str] = []
    files, rows = _logs(args, settings, since, notes)
    per_hash, whole = pc.traffic(rows, args.id)
    chosen = _versions(args, registry, per_hash, notes)
    figures = []
    for v in chosen:
        model = _model(settings, pc.pick_model(args.model, v.prompt, per_hash.get(v.hash)))
        if model is None:
            notes.append(f"v{v.number}: no model to count its tokens with (no model: in the prompt, no logged call); "
                         "pass --model M")
        figures.append(pc.version_figures(v, model, per_hash.get(v.hash)))
    pair = _pair(args, figures)
    out = {"prompt_id": args.id, "files": files, "since": None if since is None else since.isoformat(),
           "calls_per_day": whole.per_day, "versions": figures,
           "comparison": pc.compare(*pair, whole.per_day) if pair else None,
           "cheapest": pc.cheapest(doc, args.id, figures) if doc is not None else None, "notes": notes}
    if args.output_format == "json":
        import json

        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _table(out)
    return 0


def _results(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from ..results.baseline import load

    return load(Path(path), "results JSON")


def _logs(args: argparse.Namespace, settings: Any, since: Any, notes: list[str]) -> tuple[list[str], list[Any]]:
    """The log files read and their rows by day x version x model; no log at all is a note
    (the fixed text is still counted), a --logs path that names nothing an error."""
    from ..results import monitor

    if args.logs:
        paths = list(args.logs)
    else:
        found = monitor.log_files(settings.log_path) if settings.log_path is not None else []
        if not found:
            notes.append("no call log (log: of the config, or --logs PATH): no live volumes, fixed text only")
            return [], []
        paths = [str(p) for p in found]
    source = monitor.files(paths)
    # live volumes are the application's calls (the SDK's lines): test runs in the same log are not traffic
    rows = monitor.figures(paths, since=since, window="day", by=monitor.BY, warn=_warn, prices=_prices(settings),
                           application_only=True)
    if not any(r.get("prompt_id") == args.id for r in rows):
        notes.append(f"no call of prompt {args.id} by the application{' since ' + args.since if args.since else ''} "
                     "(test runs' lines are not live traffic): no live volumes")
    return [str(p) for p in (*source.jsonl, *source.parquet)], rows


def _versions(args: argparse.Namespace, registry: Any, logged: dict[str, Any], notes: list[str]) -> list[Any]:
    """--versions in their order; else the registry's versions seen in the logs, else its latest two."""
    if args.versions:
        entries = [registry.resolve(args.id, ref) for ref in args.versions]
    else:
        known = registry.versions(args.id)
        entries = [v for v in known if v["hash"] in logged] or known[-2:]
        hashes = {v["hash"] for v in known}
        for h in sorted(h for h in logged if h not in hashes):
            notes.append(f"logged version {h} of {args.id} is not in the registry (its text is unknown); left out")
    return [_version(registry, args.id, v) for v in entries]


def _version(registry: Any, prompt_id: str, v: dict[str, Any]) -> Any:
    from ..plan.prompts import load_prompt
    from ..results.prompt_cost import Version

    number = int(v["number"])
    prompt = load_prompt(registry.snapshot(prompt_id, number), registry.root, default_id=prompt_id)
    return Version(number, v["hash"], prompt, tuple(registry.labels_of(prompt_id, number)),
                   registry.last_evaluation(prompt_id, number))


def _model(settings: Any, name: str | None) -> Any:
    """A configured alias with its litellm name and params' price, else a litellm name."""
    from ..execute.pricing import price
    from ..results.prompt_cost import Model

    if name is None:
        return None
    spec = settings.models.get(name)
    if spec is not None:
        return Model(name, spec.model, price(spec.model, spec.params))
    return Model(name, name, price(name, {}))


def _pair(args: argparse.Namespace, figures: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The two versions compared: --versions A B in their order; else the two latest shown."""
    if len(figures) < 2 or (args.versions and len(figures) != 2):
        return None
    if args.versions:
        return figures[0], figures[1]
    a, b = sorted(figures, key=lambda f: f["number"])[-2:]
    return a, b


def _prices(settings: Any) -> dict[str, tuple[float, float] | None]:
    from .monitor import _prices as prices

    return prices(settings)


def _warn(text: str) -> None:
    print(safe(f"promstack prompt cost: warning: {text}"), file=sys.stderr)


# -- the table ----------------------------------------------------------------------------------


def _table(out: dict[str, Any]) -> None:
    from tabulate import tabulate

    since = f" since {out['since']}" if out["since"] else ""
    print(safe(f"promstack prompt cost: {out['prompt_id']}, {len(out['files'])} log file"
               f"{'s' * (len(out['files']) != 1)}{since}"))
    headers = ["version", "labels", "model", "fixed tokens", "mean input", "variable", "fixed share %", "calls/day",
               "USD/call", "quality"]
    rows = [[f"v{f['number']}", safe(", ".join(f["labels"]) or "-"), safe(f["model"] or "-"), _n(f["fixed_tokens"]),
             _n(f["mean_input_tokens"], 1), _n(f["variable_tokens"], 1), _n(f["fixed_share"], 1),
             _n(f["calls_per_day"], 1), _usd(f["cost_per_call"]), _n(f["quality"])] for f in out["versions"]]
    print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True,
                   colalign=("left",) * 3 + ("right",) * 7))
    if out["comparison"]:
        print()
        for line in _comparison(out["comparison"]):
            print(safe(line))
    for c in out["cheapest"] or []:
        print(safe(_cheapest(c, out["versions"])))
    for note in out["notes"]:
        print(safe(f"note: {note}"))


def _comparison(c: dict[str, Any]) -> list[str]:
    ab = f"v{c['a']} -> v{c['b']}"
    volume = "n/a calls/day" if c["calls_per_day"] is None else f"{c['calls_per_day']:,.1f} calls/day"
    fixed = "n/a" if c["fixed_tokens"] is None else f"{c['fixed_tokens']:+d} tokens"
    lines = [f"{ab}: fixed text {fixed} ({_pct(c['fixed_percent'])}; {_pct(c['input_percent'])} of "
             f"v{c['a']}'s logged input tokens): input cost {_usd(c['fixed_cost_per_1000'], True)} USD per 1,000 "
             f"calls, {_usd(c['fixed_cost_per_month'], True)} USD per month at {volume}"]
    if not c["same_tokenizer"]:
        lines.append(f"{ab}: counted with different models' tokenizers; pass --model M to compare like with like")
    lines.append(f"{ab}: logged cost per call {_usd(c['cost_per_call'], True)} USD: {_usd(c['cost_per_1000'], True)} "
                 f"USD per 1,000 calls, {_usd(c['cost_per_month'], True)} USD per month at {volume}")
    if c["quality"] is None:
        lines.append(f"{ab}: quality n/a (last evaluations: v{c['a']} {_n(c['quality_a'])}, v{c['b']} "
                     f"{_n(c['quality_b'])}; `promstack evaluate --prompt ID --version N` records one)")
    else:
        lines.append(f"{ab}: quality {c['quality_a']} -> {c['quality_b']} ({c['quality']:+g}, last evaluations)")
    return lines


def _cheapest(c: dict[str, Any], versions: list[dict[str, Any]]) -> str:
    months = "; ".join(f"at v{v['number']}'s {_n(v['calls_per_day'], 1)} calls/day {_usd(c['per_month'][v['number']])} "
                       "USD per month" for v in versions if v["calls_per_day"] is not None)
    return (f"cheapest model passing {c['criterion']} (suite {c['suite']}): {c['model']}, "
            f"{_usd(c['cost_per_call'])} USD per call in the run" + (f"; {months}" if months else ""))


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"


def _usd(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    body = f"{abs(value):.6f}" if abs(value) < 0.01 else f"{abs(value):,.2f}"
    return ("-" if value < 0 else "+" if sign else "") + body


def _pct(value: float | None) -> str:
    return "n/a %" if value is None else f"{value:+.1f} %"
