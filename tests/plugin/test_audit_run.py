"""A `pytest --promstack` run with `audit: {enabled: true}`: the controller writes one masked
`case` line per case that called a model (never a worker, so `-n 2` writes each case once),
later runs extend the same chain, and a run with audit off writes no log."""

from __future__ import annotations

import json

import pytest

from pytest_promstack.safety.audit_verify import verify

EMAIL = "kim.minji@example.co.kr"
ROWS = ("input,__expected\n" + "\n".join(f"질문{i},contains:질문{i}" for i in range(4))
        + f"\n{EMAIL} 로 보내 주세요,contains:보내\n")


def audit_lines(project) -> list[dict]:
    path = project.path / ".promstack/audit.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["no-xdist", "xdist"])
def test_each_case_is_one_masked_line_written_by_the_controller(project, xdist, monkeypatch):
    monkeypatch.setenv("PROMSTACK_USER", "ci-bot")
    project.write({"prompt_tests/a.csv": ROWS}, audit={"enabled": True})
    result = project.run(*xdist)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["promstack: appended 5 lines to .promstack/audit.jsonl (audit trail)"])
    rows = audit_lines(project)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["event"] for r in rows} == {"case"}
    assert len({r["case_id"] for r in rows}) == 5
    assert {(r["user"], r["model"], r["suite"], r["prompt_id"]) for r in rows} == {
        ("ci-bot", "openai/mine", "regression", "input")}
    assert len({r["run_id"] for r in rows}) == 1
    assert all(r["input_tokens"] is not None and r["cached"] is False for r in rows)
    raw = (project.path / ".promstack/audit.jsonl").read_text(encoding="utf-8")
    assert EMAIL not in raw
    masked = next(r for r in rows if "보내" in r["question"])
    assert masked["question"] == "<EMAIL_1> 로 보내 주세요"
    assert masked["answer"] == "echo: <EMAIL_1> 로 보내 주세요"
    assert verify(project.path / ".promstack/audit.jsonl").intact

    again = project.run(*xdist)  # answered from the cache, audited all the same: the chain goes on
    again.assert_outcomes(passed=5)
    rows = audit_lines(project)
    assert len(rows) == 10
    assert rows[5]["prev"] == rows[4]["hash"]
    assert all(r["cached"] for r in rows[5:])
    report = verify(project.path / ".promstack/audit.jsonl")
    assert report.intact, report.problems
    assert (project.path / ".promstack/.gitignore").read_text(encoding="utf-8").count("audit*.jsonl") == 1


def test_a_run_with_audit_off_writes_no_log(project):
    project.write({"prompt_tests/a.csv": ROWS})
    result = project.run()
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*audit trail*")
    assert not (project.path / ".promstack/audit.jsonl").exists()


def test_an_unwritable_audit_log_is_a_warning_not_a_failed_run(project):
    project.write({"prompt_tests/a.csv": ROWS, "logs": "a file where the folder should be"},
                  audit={"enabled": True, "path": "logs/audit.jsonl"})
    result = project.run()
    result.assert_outcomes(passed=5)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*audit log not written: *logs/audit.jsonl*"])


def test_logs_that_cannot_rotate_are_one_warning_each_and_keep_every_line(project, monkeypatch):
    import errno
    import os

    def refusing(real):
        def move(src, dst, *args, **kwargs):  # the folder made immutable (chattr +i)
            if os.path.basename(src) in ("calls.jsonl", "audit.jsonl"):
                raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "rename", refusing(os.rename))
    monkeypatch.setattr(os, "replace", refusing(os.replace))
    project.write({"prompt_tests/a.csv": ROWS}, audit={"enabled": True, "rotate": {"max_bytes": 1024}},
                  log={"path": ".promstack/calls.jsonl", "rotate": {"max_bytes": 1024}})
    result = project.run()
    result.assert_outcomes(passed=5)
    out = result.stdout.str()
    assert out.count("call log not rotated: ") == 1
    assert out.count("audit log not rotated: ") == 1
    result.stdout.fnmatch_lines(["*call log not rotated: *calls.jsonl: Operation not permitted; its lines go on to it*",
                                 "promstack: appended 5 lines to .promstack/audit.jsonl (audit trail)"])
    calls = (project.path / ".promstack/calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(calls) == 5
    assert [r["seq"] for r in audit_lines(project)] == [1, 2, 3, 4, 5]
    assert verify(project.path / ".promstack/audit.jsonl").intact
    assert sorted(p.name for p in (project.path / ".promstack").glob("*.jsonl")) == ["audit.jsonl", "calls.jsonl"]
