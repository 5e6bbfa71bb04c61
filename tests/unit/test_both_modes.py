"""The `both_modes` comparison: what it ignores and what it reports."""

from __future__ import annotations

import copy

from tests.conftest import comparable, document_diffs


def document(**case: object) -> dict:
    run = {"id": "a1", "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:01Z", "git_commit": None,
           "settings": {"concurrency": 8}}
    cases = [{"case_id": "t.csv::row-2[m]", "outcome": "passed", "latencies": [12.5], "output_tokens": 2, **case},
             {"case_id": "t.csv::row-3[m]", "outcome": "failed", "latencies": [3.0], "output_tokens": 2}]
    return {"run": run, "cases": cases, "summary": [{"p95_ms": 12.0, "cases": 2}],
            "prompts": [{"id": "support", "version": "1"}],
            "baseline": {"run": {**copy.deepcopy(run), "id": "b2"}, "groups": [{"p95_ms_delta": 1.5, "pass_pct_delta": 0.0}]}}


def diffs(a: dict, b: dict) -> list[str]:
    return document_diffs(comparable(a), comparable(b))


def test_run_stamps_and_timings_are_ignored():
    other = document(latencies=[99.0])
    other["run"].update(id="zz", started="2027-01-01T00:00:00Z", git_commit="abc")
    other["summary"][0]["p95_ms"] = 40.0
    other["baseline"]["run"]["id"] = "yy"
    other["baseline"]["groups"][0]["p95_ms_delta"] = -7.0
    assert diffs(document(), other) == []


def test_outcomes_tokens_settings_prompt_ids_and_case_order_are_compared():
    base = document()
    assert diffs(base, document(outcome="failed")) == ["  .cases.t.csv::row-2[m].outcome: 'passed' != 'failed'"]
    assert diffs(base, document(output_tokens=3)) == ["  .cases.t.csv::row-2[m].output_tokens: 2 != 3"]
    changed = copy.deepcopy(base)
    changed["run"]["settings"]["concurrency"] = 4
    changed["prompts"][0]["id"] = "other"
    changed["baseline"]["groups"][0]["pass_pct_delta"] = 10.0
    assert [d.split(":")[0] for d in diffs(base, changed)] == [
        "  .baseline.groups[0].pass_pct_delta", "  .prompts[0].id", "  .run.settings.concurrency"]
    swapped = copy.deepcopy(base)
    swapped["cases"].reverse()
    assert [d.split(":")[0] for d in diffs(base, swapped)] == ["  .cases.(order)[0]", "  .cases.(order)[1]"]
