"""Terminal output: the progress of the model calls and the summary table (tabulate)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

HEADERS = ["suite", "model", "prompt", "cases", "passed", "failed", "errors", "xfail", "flaky", "pass %",
           "quality", "P50 ms", "P95 ms", "tokens in", "tokens out", "cost USD", "eval USD", "cache hits"]


def summary_lines(rows: list[dict[str, Any]], unpriced: list[str], flaky: list[dict[str, Any]],
                  calibrations: list[dict[str, Any]] | None = None, quality: float | None = None,
                  prompt_name: Callable[[Any, Any], str] | None = None) -> list[str]:
    """``quality``: the run's quality score (the mean over all judged cases); ``prompt_name``
    names a prompt version (the registry's number and labels), else ``id@hash``."""
    from tabulate import tabulate

    from ..util.text import safe

    name = prompt_name or (lambda i, v: f"{i}@{v}")
    # cells escaped before tabulate measures them, so the columns stay aligned
    table = [[safe(r["suite"]), safe(r["model"]), safe(name(r["prompt_id"], r["prompt_version"])), r["cases"],
              r["passed"], r["failed"], r["error"], r["xfailed"], r["flaky"], f"{r['pass_pct']:.1f}",
              _quality(r.get("quality")),
              _ms(r["p50_ms"]), _ms(r["p95_ms"]), _int(r["input_tokens"]), _int(r["output_tokens"]),
              _cost(r["cost_usd"]), _cost(r.get("eval_cost_usd")) if r.get("judge_calls") else "-",
              f"{r['cache_hits']}/{r['calls']}"] for r in rows]
    lines = tabulate(table, headers=HEADERS, tablefmt="simple", disable_numparse=True).splitlines()
    if quality is not None:
        calls = sum(r["judge_calls"] for r in rows)
        costs = [r.get("eval_cost_usd") for r in rows]
        eval_cost = "n/a" if any(c is None for c in costs) else _cost(sum(costs))
        lines.append(f"promstack: quality score {quality:.1f}/100 over {sum(r['judged'] for r in rows)} "
                     f"judged cases; {calls} judge calls, eval cost {eval_cost} USD (not in cost USD)")
    for c in calibrations or []:
        lines += _calibration_lines(c)
    for r in sorted(flaky, key=lambda r: r["case_id"]):
        if r.get("judge_flaky"):
            lines.append(f"promstack: flaky: {safe(r['case_id'])} judges disagreed across repeats")
        else:
            lines.append(f"promstack: flaky: {safe(r['case_id'])} passed {r['passes']} of {r['repeats']} repeats")
    for model in unpriced:
        if model.startswith("python:"):
            lines.append(f"promstack: warning: {model} reports no cost_usd; its cost shows as n/a (return "
                         '{"text": ..., "cost_usd": x} from it to count one)')
        else:
            lines.append(f"promstack: warning: litellm has no price for {model}; its cost shows as n/a")
    return lines


def _calibration_lines(c: dict[str, Any]) -> list[str]:
    """The judge's agreement with the human labels, and each human score it left out."""
    from ..util.text import safe

    judge = safe(c["judge"])
    if c["n"]:
        out = [f"promstack: calibration {judge}: n={c['n']}, exact {c['exact']:.0%}, within one "
               f"{c['within_one']:.0%}, Spearman {_num(c['spearman'])}, weighted kappa {_num(c['kappa'])}"]
    else:
        out = [f"promstack: calibration {judge}: no case has a human score on the judge's scale"]
    lo, hi = c.get("scale") or ("?", "?")
    for x in c.get("excluded") or []:
        out.append(f"promstack: warning: calibration {judge}: {safe(x['case_id'])}: __human_score "
                   f"{safe(x['human_score'])} is outside the judge's scale {lo}-{hi}; left out of the calibration "
                   f"figures (label it {lo} to {hi})")
    return out


def arena_lines(arena: dict[str, Any]) -> list[str]:
    """Win rates, ratings with 95% intervals, pairwise results and the judge's flip rate."""
    from tabulate import tabulate

    order = sorted(arena["contenders"], key=lambda c: -arena["rating"][c])
    rows = []
    for c in order:
        lo, hi = arena["interval"].get(c, (None, None))
        ci = f"[{lo:.0f}, {hi:.0f}]" if lo is not None else "-"
        rate = arena["win_rate"][c]
        rows.append([c, "-" if rate is None else f"{100 * rate:.1f}%", f"{arena['rating'][c]:.0f}", ci])
    flip = "n/a" if arena["flip_rate"] is None else f"{100 * arena['flip_rate']:.1f}%"
    lines = ["", f"promstack arena: {arena['games']} games, judge order-flip rate {flip} "
                 "(a pair whose two orders disagree counts as a tie)"]
    lines += tabulate(rows, headers=["contender", "win rate", "rating (BT)", "95% CI"], tablefmt="simple",
                      disable_numparse=True).splitlines()
    for pair, wtl in arena["pairs"].items():
        lines.append(f"  {pair}: {wtl['win']} wins, {wtl['tie']} ties, {wtl['loss']} losses")
    return lines


def _quality(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _int(v: int | None) -> str:
    return "n/a" if v is None else str(v)


def _cost(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.6f}" if v == 0 or v >= 0.001 else f"{v:.2e}"  # below a tenth of a cent, always e-notation


class Progress:
    """Calls done / total while they run: rewritten in place on a terminal, a few lines in a
    CI log (at each quarter), nothing under -q."""

    def __init__(self, reporter: Any, total: int, what: str = "calls") -> None:
        self.reporter = reporter
        self.total = total
        self.what = what
        self.start = time.monotonic()
        self.quiet = reporter is None or reporter.verbosity < 0
        self.tty = bool(reporter is not None and reporter.isatty)
        self.next_quarter = 1
        self.shown = False

    def _line(self, done: int, hits: int, errors: int) -> str:
        return (f"promstack: {self.what} {done}/{self.total} done, {hits} from cache, {errors} errors, "
                f"{time.monotonic() - self.start:.1f} s")

    def update(self, done: int, hits: int, errors: int) -> None:
        if self.quiet:
            return
        if self.tty:
            self.reporter.rewrite(self._line(done, hits, errors), erase=True)
            self.shown = True
        elif done * 4 >= self.next_quarter * self.total and done < self.total:
            self.reporter.write_line(self._line(done, hits, errors))
            self.next_quarter = done * 4 // self.total + 1

    def finish(self, done: int, hits: int, errors: int) -> None:
        if self.quiet:
            return
        if self.tty:
            self.reporter.rewrite(self._line(done, hits, errors), erase=True)
            self.reporter.write_line("")
        else:
            self.done_line(done, hits, errors)

    def done_line(self, done: int, hits: int, errors: int) -> None:
        """The last line alone, on a line of its own (below pytest's progress of the items)."""
        if not self.quiet:
            self.reporter.write_line(self._line(done, hits, errors))


def header_line(settings: Any, cases: int, files: int, decoded: dict[str, str]) -> str:
    """What the run is about to do, under pytest's header: cases, files, suites, cache,
    concurrency, repeats, and the files read in another encoding than UTF-8."""
    from ..config.modes import CacheMode
    from ..util.paths import rel
    from ..util.redact import safe_url

    s = settings
    cache = "off" if s.cache_mode == CacheMode.OFF else f"{s.cache_mode} ({rel(s.cache_dir, s.root)})"
    if s.cache_url:
        cache += f" + redis {safe_url(s.cache_url)}"
    repeat = f", repeat {s.repeat} (min_pass {s.min_pass})" if s.repeat > 1 else ""
    read_as = "".join(f"; {path} read as {enc}" for path, enc in sorted(decoded.items()))
    shard = (f", shard {s.run.shard[0]}/{s.run.shard[1]} (gates, baseline and cheapest model wait for the merge: "
             "promstack report)" if s.run.shard else "")
    return (f"promstack: {_count(cases, 'case')} from {_count(files, 'file')}, suites {', '.join(s.suites) or '-'}, "
            f"cache {cache}, concurrency {s.concurrency}{repeat}{shard}{read_as}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
