"""The audit trail (safety/audit.py, safety/audit_verify.py): a hash chain that verifies, and
that names an edited, removed, reordered or copied line and a removed rotated file; rotation
by size and by day; concurrent writers (threads and processes); masked, hashed or no texts."""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_promstack.config.settings import build_settings
from pytest_promstack.model.errors import ConfigError
from pytest_promstack.safety.audit import AuditLog, Rotation, canonical, chain_files, digest
from pytest_promstack.safety.audit_verify import verify

EMAIL = "kim.minji@example.co.kr"
RRN_LIKE = "900101-1234568"
KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7z" * 2


def log_at(path: Path, **kwargs) -> AuditLog:
    return AuditLog(path, run_id="run1", user="민지", **kwargs)


def write_calls(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.write("call", prompt_id="support", prompt_version="3f2a", model="openai/mini",
                  question=f"질문 {i}: 환불해 주세요", answer=f"답 {i}", input_tokens=10 + i, output_tokens=5,
                  cost_usd=0.0001 * i)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "logs" / "audit.jsonl"


@pytest.fixture
def chain(path) -> Path:
    write_calls(log_at(path), 5)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def rewrite(path: Path, rows: list[dict | str]) -> None:
    text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def test_a_chain_verifies_with_one_summary_line(chain):
    rows = lines(chain)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev"] == ""
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(rows))
    assert all(r["hash"] == hashlib.sha256(canonical(r)).hexdigest() for r in rows)
    first = rows[0]
    assert list(first)[:6] == ["seq", "ts", "event", "user", "ci", "run_id"]
    assert list(first)[-2:] == ["prev", "hash"]
    assert first["ts"].endswith("Z")
    assert first["user"] == "민지"
    assert first["guards"] == []
    report = verify(chain)
    assert report.intact, report.problems
    assert report.summary() == f"audit: 5 lines in 1 file, chain intact; last hash {rows[-1]['hash'][:16]}"
    assert "환불해 주세요" in chain.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


@pytest.mark.parametrize(("key", "value"), [
    ("user", "someone-else"), ("ts", "2020-01-01T00:00:00.000Z"), ("question", "다른 질문"), ("answer", "다른 답"),
    ("cost_usd", 0.0), ("input_tokens", 1), ("model", "openai/other"), ("guards", [{"guard": "x"}]),
    ("event", "label"), ("seq", 30), ("prev", "0" * 64), ("hash", "f" * 64), ("extra", "added"),
])
def test_editing_any_field_of_a_line_is_named(chain, key, value):
    rows = lines(chain)
    rows[2][key] = value
    rewrite(chain, rows)
    report = verify(chain)
    assert report.problems[0].startswith("audit.jsonl:3: edited: its hash does not match its content")
    assert len(report.problems) == 1, report.problems
    assert "chain BROKEN (1 problems)" in report.summary()


def test_an_edit_with_its_hash_recomputed_is_named_by_the_next_line(chain):
    rows = lines(chain)
    rows[2]["answer"] = "고친 답"
    rows[2]["hash"] = digest(rows[2])
    rewrite(chain, rows)
    assert verify(chain).problems == ["audit.jsonl:3: changed after it was written: the next line (audit.jsonl:4) "
                                      "holds another hash for it"]


def test_a_removed_line_is_named(chain):
    rows = lines(chain)
    rewrite(chain, rows[:2] + rows[3:])
    assert verify(chain).problems == ["audit.jsonl:3: seq 3 missing after audit.jsonl:2: lines were removed"]
    rewrite(chain, rows[1:])
    assert verify(chain).problems == ["audit.jsonl:1: seq 1 missing after the start: lines were removed"]


def test_swapped_lines_are_named_once_as_reordered(chain):
    rows = lines(chain)
    rows[1], rows[2] = rows[2], rows[1]
    rewrite(chain, rows)
    assert verify(chain).problems == ["audit.jsonl:2: seq 3 comes before seq 2 (audit.jsonl:3): lines were reordered"]


def test_a_line_moved_far_back_is_named_once(chain):
    rows = lines(chain)
    rewrite(chain, [rows[0], rows[2], rows[3], rows[1], rows[4]])
    assert verify(chain).problems == ["audit.jsonl:2: seq 3 comes before seq 2 (audit.jsonl:4): lines were reordered"]


def test_a_copied_line_is_named(chain):
    rows = lines(chain)
    rewrite(chain, [*rows[:4], rows[1], rows[4]])
    assert verify(chain).problems == ["audit.jsonl:5: seq 2 again after seq 4 (first at audit.jsonl:2): a line was "
                                      "copied or written twice"]


def test_a_line_that_is_not_an_audit_line_is_named(chain):
    rows = lines(chain)
    rewrite(chain, [*rows[:2], {"seq": "3"}, *rows[2:]])
    assert verify(chain).problems[0].startswith("audit.jsonl:3: not an audit line (seq, ts, event, prev, hash")


def test_rotation_by_size_keeps_the_chain_across_files(path):
    log = log_at(path, rotate=Rotation(max_bytes=1500))
    write_calls(log, 12)
    files = chain_files(path)
    assert len(files) >= 3
    today = datetime.now(UTC).date().isoformat()
    assert [p.name for _, p in files[:2]] == [f"audit.{today}.1.jsonl", f"audit.{today}.2.jsonl"]
    assert all(p.stat().st_size <= 1500 for _, p in files)
    first_of_second = lines(files[1][1])[0]
    assert first_of_second["prev"] == lines(files[0][1])[-1]["hash"]
    assert first_of_second["seq"] == len(lines(files[0][1])) + 1
    report = verify(path)
    assert report.intact, report.problems
    assert report.summary().startswith(f"audit: 12 lines in {len(files)} files, chain intact")


def test_rotation_by_day_names_each_file_by_its_day(path):
    now = [datetime(2026, 11, 29, 23, 59, tzinfo=UTC)]
    log = log_at(path, rotate=Rotation(daily=True), clock=lambda: now[0])
    for _ in range(3):
        write_calls(log, 2)
        now[0] += timedelta(hours=12)
    write_calls(log, 1)
    names = [p.name for _, p in chain_files(path)]
    assert names == ["audit.2026-11-29.1.jsonl", "audit.2026-11-30.2.jsonl", "audit.jsonl"]
    assert [len(lines(path.with_name(n))) for n in names] == [2, 4, 1]
    assert lines(path)[0]["ts"].startswith("2026-12-01")
    report = verify(path)
    assert report.intact, report.problems
    assert report.lines == 7


def test_a_removed_rotated_file_in_the_middle_is_named(path):
    log = log_at(path, rotate=Rotation(max_bytes=1500))
    write_calls(log, 12)
    files = chain_files(path)
    files[1][1].unlink()
    problems = verify(path).problems
    assert problems == [f"audit.<day>.2.jsonl: rotated file 2 of the chain is missing (before {files[2][1].name}); "
                        "restore it from your archive"]


def test_a_removed_last_rotated_file_is_named(path):
    log = log_at(path, rotate=Rotation(max_bytes=1500))
    write_calls(log, 12)
    files = chain_files(path)
    files[-2][1].unlink()  # the newest rotated file: the live file's first line links to it
    problems = verify(path).problems
    assert len(problems) == 1
    last = len(lines(files[-3][1]))
    assert problems[0].startswith(f"audit.jsonl:1: seq {lines(files[-3][1])[-1]['seq'] + 1} to ")
    assert problems[0].endswith(f"missing after {files[-3][1].name}:{last}: lines were removed")


def test_a_torn_last_line_does_not_break_later_appends(path):
    log = log_at(path)
    write_calls(log, 2)
    with path.open("ab") as f:
        f.write(b'{"seq":3,"ts":"2026-11-30T00:00:00.000Z","event":"call","question":"\xec\xa7')  # killed mid-line
    report = verify(path)
    assert report.intact
    assert report.warnings == ["audit.jsonl:3: not a whole line (a writer killed mid-write?); skipped"]
    write_calls(log, 2, start=2)
    rows = path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert json.loads(rows[3])["seq"] == 3  # on a line of its own, linked to the last whole line
    report = verify(path)
    assert report.intact, report.problems
    assert report.lines == 4
    assert report.warnings == ["audit.jsonl:3: a torn line (a writer killed mid-write); the chain runs across it"]


def test_a_line_damaged_in_the_middle_is_named(chain):
    rows = lines(chain)
    rewrite(chain, [*rows[:2], json.dumps(rows[2], ensure_ascii=False)[:-9], *rows[3:]])
    problems = verify(chain).problems
    assert problems == ["audit.jsonl:3: not a whole line, and the chain does not run across it: the line was "
                        "damaged or edited (seq 3 is missing)"]


def test_head_names_a_log_whose_newest_lines_were_removed(chain):
    head = lines(chain)[-1]["hash"]
    assert verify(chain, head[:12]).intact
    rewrite(chain, lines(chain)[:-1])
    report = verify(chain, head[:12])
    assert report.problems == [f"no line has the hash {head[:12]}: lines after it were removed, or the log was "
                               "replaced (or it was noted from another log)"]


def test_threads_keep_one_chain(path):
    shared = log_at(path)

    def work(i: int) -> None:
        own = log_at(path, rotate=Rotation(max_bytes=4096))  # rotation under the lock, too
        for _ in range(10):
            write_calls(shared if i % 2 else own, 1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify(path)
    assert report.intact, report.problems
    assert report.lines == 80
    assert not shared.failed


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pytest_promstack.safety.audit import AuditLog, Rotation
    log = AuditLog(Path(sys.argv[1]), run_id=sys.argv[2], user="p", rotate=Rotation(max_bytes=8192))
    for i in range(60):
        log.write("call", question=f"{sys.argv[2]} {i}", answer="ok")
    assert log.failed is None, log.failed
""")


def test_two_processes_keep_one_chain(path):
    path.parent.mkdir(parents=True)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    report = verify(path)
    assert report.intact, report.problems
    assert report.lines == 120
    runs = {row["run_id"] for _, f in chain_files(path) for row in lines(f)}
    assert runs == {"a", "b"}


def test_masked_texts_hold_no_email_or_key_and_one_placeholder_per_value(path):
    log = log_at(path)
    log.write("call", question=f"제 메일 {EMAIL}, 주민번호 {RRN_LIKE}, 키 {KEY} 로 조회해 주세요",
              answer=f"{EMAIL} 로 보냈습니다", guards=[{"guard": "pii", "matched": EMAIL}], reason=f"by {EMAIL}")
    raw = path.read_text(encoding="utf-8")
    assert EMAIL not in raw
    assert KEY not in raw
    assert KEY[:12] not in raw
    row = lines(path)[0]
    assert row["question"].startswith("제 메일 <EMAIL_1>, 주민번호 ")
    assert "키 <OPENAI_KEY_1> 로 조회해 주세요" in row["question"]
    assert row["answer"] == "<EMAIL_1> 로 보냈습니다"  # the same value, the same placeholder within the line
    assert row["guards"] == [{"guard": "pii", "matched": "<EMAIL_1>"}]
    assert row["reason"] == "by <EMAIL_1>"
    log.write("call", question=f"다른 {KEY}")
    assert lines(path)[1]["question"] == "다른 <OPENAI_KEY_1>"  # numbered per line
    assert verify(path).intact


def test_hashed_texts_are_digests_and_none_leaves_them_out(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_MASK_SALT", raising=False)
    hashed = log_at(tmp_path / "h.jsonl", texts="hashed")
    hashed.write("call", question=f"메일 {EMAIL}", answer="네")
    row = lines(tmp_path / "h.jsonl")[0]
    assert row["question"] == "sha256:" + hashlib.sha256(f"메일 {EMAIL}".encode()).hexdigest()
    assert row["answer"] == "sha256:" + hashlib.sha256("네".encode()).hexdigest()
    monkeypatch.setenv("PROMSTACK_MASK_SALT", "pepper")
    hashed.write("call", question="네")
    assert lines(tmp_path / "h.jsonl")[1]["question"].startswith("hmac-sha256:")
    none = log_at(tmp_path / "n.jsonl", texts="none")
    none.write("call", question=f"메일 {EMAIL}", answer="네", model="m")
    row = lines(tmp_path / "n.jsonl")[0]
    assert "question" not in row
    assert "answer" not in row
    assert row["model"] == "m"
    assert verify(tmp_path / "h.jsonl").intact
    assert verify(tmp_path / "n.jsonl").intact


def test_the_ci_run_is_recorded_when_set(path, monkeypatch):
    for var in ("GITHUB_RUN_ID", "CI_PIPELINE_ID", "BUILDKITE_BUILD_ID", "CIRCLE_WORKFLOW_ID", "BUILD_BUILDID",
                "BUILD_TAG", "BITBUCKET_BUILD_NUMBER", "TRAVIS_BUILD_ID"):
        monkeypatch.delenv(var, raising=False)
    log_at(path).write("label")
    monkeypatch.setenv("CI_PIPELINE_ID", "4242")
    log_at(path).write("deploy")
    assert [r["ci"] for r in lines(path)] == [None, "gitlab:4242"]


def test_an_unwritable_log_is_reported_not_raised(tmp_path):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    log = log_at(tmp_path / "file" / "audit.jsonl")
    assert log.write("call", question="q") is None
    assert log.failed is not None
    assert "audit.jsonl" in log.failed


def test_in_dot_promstack_the_log_stays_out_of_git(tmp_path):
    log_at(tmp_path / ".promstack" / "audit.jsonl").write("call")
    assert (tmp_path / ".promstack/.gitignore").read_text(encoding="utf-8").splitlines() == [
        "audit*.jsonl", "audit.jsonl.lock"]


@pytest.mark.parametrize(("audit", "problem"), [
    ({"enabled": True, "texst": "hashed"}, "audit.texst: unknown key (did you mean 'texts'?)"),
    ({"texts": "plain"}, "audit.texts: Input should be 'masked', 'hashed' or 'none'"),
    ({"rotate": "weekly"}, "audit.rotate: write rotate: daily, or rotate: {max_bytes: 10000000}"),
    ({"rotate": {"max_bytes": 10}}, "audit.rotate.max_bytes: Input should be greater than or equal to 1024"),
    ({"path": "../outside.jsonl"}, "audit.path: '../outside.jsonl' resolves to"),
])
def test_a_bad_audit_setting_is_one_line_naming_the_key(tmp_path, audit, problem):
    (tmp_path / ".git").mkdir()
    with pytest.raises(ConfigError) as info:
        build_settings(tmp_path, {"audit": audit}, "promstack.yaml", {})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(problem)


def test_audit_is_off_by_default_and_rotate_daily_reads_as_written(tmp_path):
    (tmp_path / ".git").mkdir()
    default = build_settings(tmp_path, {}, "promstack.yaml", {}).audit
    assert (default.enabled, default.path, default.texts, default.rotate) == (False, ".promstack/audit.jsonl",
                                                                               "masked", None)
    spec = build_settings(tmp_path, {"audit": {"enabled": True, "rotate": "daily"}}, "promstack.yaml", {}).audit
    assert spec.rotate is not None
    assert spec.rotate.daily
    assert spec.rotate.max_bytes is None


def test_a_rotation_whose_rename_fails_appends_to_the_live_file_and_the_chain_holds(path, monkeypatch):
    real, tries = os.replace, []

    def refuse(src, dst, *args, **kwargs):
        if Path(src).name == "audit.jsonl":
            tries.append(dst)
            if len(tries) <= 2:  # a folder made immutable (chattr +i), then writable again
                raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse)
    now = [datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]
    log = log_at(path, rotate=Rotation(max_bytes=1500), clock=lambda: now[0])
    write_calls(log, 12)  # due from the 4th line: one refused try, no line lost
    assert (len(tries), log.failed) == (1, None)
    assert [r["seq"] for r in lines(path)] == list(range(1, 13))
    assert log.unreported_rotation() == (f"{path}: Operation not permitted; its lines go on to it, and the "
                                         "rotation is tried again a minute later")
    assert log.unreported_rotation() is None
    now[0] += timedelta(minutes=1)
    write_calls(log, 1, start=12)  # tried again, refused again
    now[0] += timedelta(minutes=1)
    write_calls(log, 2, start=13)  # rotates: the 13 lines move, the new file links to their last
    assert len(tries) == 3
    files = chain_files(path)
    assert [(n, len(lines(p))) for n, p in files] == [(1, 13), (0, 2)]
    assert lines(path)[0]["prev"] == lines(files[0][1])[-1]["hash"]
    report = verify(path)
    assert report.intact, report.problems
    assert report.lines == 15
