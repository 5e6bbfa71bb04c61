"""Terminal output: the progress of the model calls and the summary table (tabulate)."""

from __future__ import annotations

import time
from typing import Any

HEADERS = ["suite", "model", "prompt", "cases", "passed", "failed", "errors", "xfail", "flaky", "pass %",
           "P50 ms", "P95 ms", "tokens in", "tokens out", "cost USD", "cache hits"]


def summary_lines(rows: list[dict[str, Any]], unpriced: list[str], flaky: list[dict[str, Any]]) -> list[str]:
    from tabulate import tabulate

    table = [[r["suite"], r["model"], f"{r['prompt_id']}@{r['prompt_version']}", r["cases"], r["passed"],
              r["failed"], r["error"], r["xfailed"], r["flaky"], f"{r['pass_pct']:.1f}", _ms(r["p50_ms"]),
              _ms(r["p95_ms"]), _int(r["input_tokens"]), _int(r["output_tokens"]), _cost(r["cost_usd"]),
              f"{r['cache_hits']}/{r['calls']}"] for r in rows]
    lines = tabulate(table, headers=HEADERS, tablefmt="simple", disable_numparse=True).splitlines()
    for r in sorted(flaky, key=lambda r: r["case_id"]):
        lines.append(f"promstack: flaky: {r['case_id']} passed {r['passes']} of {r['repeats']} repeats")
    for model in unpriced:
        lines.append(f"promstack: warning: litellm has no price for {model}; its cost shows as n/a")
    return lines


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _int(v: int | None) -> str:
    return "n/a" if v is None else str(v)


def _cost(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.6f}" if v == 0 or v >= 0.001 else f"{v:.3g}"


class Progress:
    """Calls done / total while they run: rewritten in place on a terminal, a few lines in a
    CI log (at each quarter), nothing under -q."""

    def __init__(self, reporter: Any, total: int) -> None:
        self.reporter = reporter
        self.total = total
        self.start = time.monotonic()
        self.quiet = reporter is None or reporter.verbosity < 0
        self.tty = bool(reporter is not None and reporter.isatty)
        self.next_quarter = 1
        self.shown = False

    def _line(self, done: int, hits: int, errors: int) -> str:
        return (f"promstack: calls {done}/{self.total} done, {hits} from cache, {errors} errors, "
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
            self.reporter.write_line(self._line(done, hits, errors))
