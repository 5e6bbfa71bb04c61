"""The promstack summary under pytest's: the table per suite x model x prompt, the baseline
comparison, the arena, gates, the cheapest passing model, and what the run should tell
(truncated answers, answers not cached, an interrupt, xfail hiding errors, warnings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config.modes import CacheMode
from ..util.text import safe_lines


def run_summary(records: list[dict[str, Any]], *, comparison: dict[str, Any] | None,
                prompt_name: Callable[[Any, Any], str], arena: dict[str, Any] | None, gate_lines: list[str],
                selection: list[dict[str, Any]], notes: list[str], cache_mode: CacheMode,
                interrupted: int | None, warnings: list[str]) -> list[str]:
    """The lines; ``interrupted``: how many cases the run set out to run, when it was cut short."""
    from ..results.gates import cheapest_line
    from ..results.metrics import calibrations, flaky, quality, summarise, unpriced
    from ..results.probes import lines as probe_lines
    from .terminal import arena_lines, summary_lines

    lines: list[str] = []
    if comparison is not None:
        from ..results.baseline import lines as baseline_lines

        lines += baseline_lines(comparison, records)
    lines += summary_lines(summarise(records), unpriced(records), flaky(records), calibrations(records),
                           quality(records), prompt_name)
    lines += trajectory_lines(records)
    lines += probe_lines(records)
    if arena is not None:
        lines += arena_lines(arena)
    lines += gate_lines
    lines += [cheapest_line(sel) for sel in selection]
    lines += notes + truncation_lines(records) + cache_lines(records, cache_mode)
    if interrupted is not None:
        lines.append(f"promstack: interrupted: {len(records)} of {interrupted} cases finished; the reports hold "
                     "those, and the calls cut short are logged as cancelled")
    lines += hidden_error_lines(records)
    return safe_lines(lines + [f"promstack: warning: {w}" for w in warnings])


def trajectory_lines(records: list[dict[str, Any]]) -> list[str]:
    """Per model that called a tool or held a conversation, its model calls and tool calls (the
    five most used tools by name) and its conversations; one-shot models get no line."""
    from ..results.metrics import trajectories
    from ..util.text import safe

    lines = []
    for t in trajectories(records):
        if not t["tool_calls"] and not t["conversations"]:
            continue
        tools = ", ".join(f"{safe(name)} {n}" for name, n in t["tools"][:5]) + (", …" if len(t["tools"]) > 5 else "")
        line = (f"promstack: steps {safe(t['model'])}: {_count(t['cases'], 'case')}, "
                f"{_count(t['model_calls'], 'model call')}, {_count(t['tool_calls'], 'tool call')}"
                + (f" ({tools})" if tools else ""))
        if t["conversations"]:
            line += (f"; {_count(t['conversations'], 'conversation')} of {_count(t['turns'], 'turn')}, "
                     f"{t['failed_turns']} failed")
        lines.append(line)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def hidden_error_lines(records: list[dict[str, Any]]) -> list[str]:
    """An xfail case that errored before it was scored: the mark hides an error, not a failure."""
    hidden = [r for r in records if r.get("outcome") == "xfailed" and r.get("phase") == "setup"]
    lines = [f"promstack: warning: xfail hides an error, not a failure: {r['case_id']}: "
             f"{(r.get('setup_error') or r.get('error') or 'it errored before it was scored')[:200]}"
             for r in hidden[:5]]
    if len(hidden) > 5:
        lines.append(f"promstack: warning: … and {len(hidden) - 5} more xfail cases that errored")
    return lines


def truncation_lines(records: list[dict[str, Any]]) -> list[str]:
    cut = [r for r in records if r.get("truncated")]
    if not cut:
        return []
    suites = ", ".join(sorted({str(r.get("suite")) for r in cut}))
    return [f"promstack: {len(cut)} of {len(records)} cases have an answer cut at max_tokens (finish_reason "
            f"length; suites {suites}): cached and marked truncated; raise max_tokens, or fail them with "
            "not-finish-reason:length"]


def cache_lines(records: list[dict[str, Any]], cache_mode: CacheMode) -> list[str]:
    """Why answers called in this run were not cached (so the next run calls them again)."""
    fresh = [r for r in records if r.get("called") and not r.get("cached")]
    failed = sum(r.get("error") is not None for r in fresh)
    if not fresh or cache_mode == CacheMode.REPLAY:  # replay calls nothing: a miss says so itself
        return []
    if cache_mode == CacheMode.OFF:
        answers = "the answer of this run was" if len(fresh) == 1 else f"the {len(fresh)} answers of this run were"
        return [f"promstack: cache off: {answers} not stored; the next run "
                "calls the models again (--promstack-cache use keeps them)"]
    if failed:
        return [f"promstack: {failed} of {len(fresh)} new answers were not cached: their calls failed, "
                "and errors are never cached (the next run calls them again)"]
    return []
