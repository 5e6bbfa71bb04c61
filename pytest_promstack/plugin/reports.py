"""pytest reports made by promstack itself: for cases an interrupted run scored without pytest
running them, so JUnit, the terminal and xdist's controller count them."""

from __future__ import annotations

from typing import Any

import pytest


def reports_of_salvaged(nodeid: str, rec: dict[str, Any]) -> list[pytest.TestReport]:
    """Reports for a case an interrupted run scored without pytest running it: a passed or
    failed call, or an error at setup, with the case's JUnit properties and model latency."""
    junit = rec.get("junit") or {}
    location = (str(rec.get("file") or nodeid.split("::")[0]), max(int(rec.get("row") or 1) - 1, 0),
                nodeid.split("::")[-1])

    def report(when: str, outcome: str, longrepr: Any = None, duration: float = 0.0) -> pytest.TestReport:
        return pytest.TestReport(nodeid, location, {}, outcome, longrepr, when, duration=duration,  # type: ignore[arg-type]
                                 user_properties=junit.get("properties") or [])

    latency = sum(rec.get("latencies") or []) / 1000
    if rec["outcome"] == "error":
        first = report("setup", "failed", junit.get("message"), latency)
    else:
        first = report("setup", "passed")
    calls = [] if rec["outcome"] == "error" else [
        report("call", "passed" if rec["outcome"] == "passed" else "failed",
               None if rec["outcome"] == "passed" else junit.get("message"), latency)]
    return [first, *calls, report("teardown", "passed")]
