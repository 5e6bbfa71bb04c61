"""The call log for production: its fields, rotation by size and by UTC day (an injected
clock), keep and gzip, whole lines under concurrent writers across rotations, and a write
that fails (a full disk, a read-only folder, a path that is a folder) is one reported
failure while the caller goes on."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_promstack.execute.calllog import FIELDS, CallLog, read
from pytest_promstack.util.rotation import Rotation, rotated_files

OLD_FIELDS = ("timestamp", "run_id", "kind", "suite", "case_id", "prompt_id", "prompt_version", "model",
              "input_tokens", "output_tokens", "cost_usd", "latency_ms", "cached", "attempt", "attempts",
              "status", "status_code", "error", "user_id")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def every_line(path: Path) -> list[dict]:
    """The records of the whole set, oldest file first (gzipped ones too), then the live file."""
    out = []
    for _, _, f in rotated_files(path):
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh.read().splitlines()]
    return out + read(path)


def wait_for_gzip() -> None:
    for t in threading.enumerate():
        if t.name == "promstack-calllog-gzip":
            t.join(timeout=30)


def test_a_call_line_keeps_the_old_fields_in_order_and_adds_session_provider_model_and_finish_reason(tmp_path):
    log = CallLog(tmp_path / "calls.jsonl", "run1", "민지")
    log.write(suite="fixture", model="mini", litellm_model="openai/gpt-4o-mini", session_id="chat-42",
              finish_reason="length", status="ok", input_tokens=12, output_tokens=64, not_a_field="dropped")
    log.close()
    (record,) = read(tmp_path / "calls.jsonl")
    assert tuple(record) == FIELDS
    assert FIELDS[:len(OLD_FIELDS)] == OLD_FIELDS  # readers of the old lines find every field where it was
    assert (record["session_id"], record["litellm_model"], record["finish_reason"]) == ("chat-42", "openai/gpt-4o-mini",
                                                                                       "length")
    assert (record["model"], record["user_id"]) == ("mini", "민지")


def test_the_log_rotates_by_size_into_files_found_by_a_glob_in_time_order(tmp_path):
    path = tmp_path / "calls.jsonl"
    clock = Clock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    log = CallLog(path, "run1", "me", rotate=Rotation(max_bytes=2048), clock=clock)
    for i in range(60):
        clock.now += timedelta(seconds=1)
        log.write(case_id=f"c{i:02d}", error="x" * 100)
    log.close()
    rotated = sorted(p.name for p in tmp_path.glob("calls.*.jsonl"))
    assert len(rotated) >= 5
    assert all(re.fullmatch(r"calls\.2026-11-30\.\d{3}\.jsonl", n) for n in rotated)
    assert [f.name for _, _, f in rotated_files(path)] == rotated  # the names sort in time order
    assert all((tmp_path / n).stat().st_size <= 2048 for n in rotated)
    assert [r["case_id"] for r in every_line(path)] == [f"c{i:02d}" for i in range(60)]


def test_the_log_rotates_at_a_new_utc_day_under_the_day_of_its_lines(tmp_path):
    path = tmp_path / ".promstack/calls.jsonl"
    clock = Clock(datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC))
    log = CallLog(path, "run1", "me", rotate=Rotation(daily=True), clock=clock)
    log.write(case_id="late")
    log.write(case_id="later")
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    log.write(case_id="next day")
    log.close()
    again = CallLog(path, "run2", "me", rotate=Rotation(daily=True), clock=clock)  # a later process, same day
    again.write(case_id="same day")
    clock.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    again.write(case_id="two days on")
    again.close()
    names = sorted(p.name for p in path.parent.glob("calls.*.jsonl"))
    assert names == ["calls.2026-11-30.001.jsonl", "calls.2026-12-01.001.jsonl"]
    assert [r["case_id"] for r in read(path.parent / names[0])] == ["late", "later"]
    assert [r["case_id"] for r in read(path.parent / names[1])] == ["next day", "same day"]
    assert [r["case_id"] for r in read(path)] == ["two days on"]
    ignored = (path.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ignored == ["calls.jsonl", "calls.*.jsonl*", "calls.jsonl.lock"]


def test_keep_removes_the_oldest_rotated_files_and_gzip_compresses_all_but_the_newest(tmp_path):
    path = tmp_path / "calls.jsonl"
    log = CallLog(path, "run1", "me", rotate=Rotation(max_bytes=1024, keep=3, gzip=True))
    for i in range(80):
        log.write(case_id=f"c{i:02d}", error="y" * 100)
        wait_for_gzip()
    log.close()
    files = [f.name for _, _, f in rotated_files(path)]
    assert len(files) == 3
    assert all(f.endswith(".jsonl.gz") for f in files[:-1])
    assert files[-1].endswith(".jsonl")
    assert not list(tmp_path.glob("*.part"))
    ids = [r["case_id"] for r in every_line(path)]
    assert ids == [f"c{i:02d}" for i in range(80 - len(ids), 80)]  # the newest lines, whole and in order


def test_concurrent_threads_keep_whole_lines_across_rotations(tmp_path):
    path = tmp_path / "calls.jsonl"
    log = CallLog(path, "run1", "me", rotate=Rotation(max_bytes=8192))
    threads = [threading.Thread(target=lambda i=i: [log.write(case_id=f"t{i}-{j}", error="z" * 300)
                                                   for j in range(50)]) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    ids = [r["case_id"] for r in every_line(path)]
    assert sorted(ids) == sorted(f"t{i}-{j}" for i in range(8) for j in range(50))
    for i in range(8):  # each thread's lines in its own order
        assert [x for x in ids if x.startswith(f"t{i}-")] == [f"t{i}-{j}" for j in range(50)]
    assert len(rotated_files(path)) > 10


def test_two_writers_of_one_file_follow_each_others_rotation(tmp_path):
    path = tmp_path / "calls.jsonl"
    a = CallLog(path, "a", "me", rotate=Rotation(max_bytes=4096))
    b = CallLog(path, "b", "me", rotate=Rotation(max_bytes=4096))
    for i in range(100):
        (a if i % 2 else b).write(case_id=f"c{i:03d}", error="w" * 400 if i % 2 else None)  # b's fit after a's
    a.close()
    b.close()
    assert [r["case_id"] for r in every_line(path)] == [f"c{i:03d}" for i in range(100)]
    assert all(f.stat().st_size <= 4096 for _, _, f in rotated_files(path))


@pytest.mark.parametrize("where", ["full disk", "a folder", "under a file"])
def test_a_write_that_fails_is_one_reported_failure_and_the_writer_goes_on(tmp_path, where):
    target = {"full disk": Path("/dev/full"), "a folder": tmp_path,
              "under a file": tmp_path / "file" / "calls.jsonl"}[where]
    (tmp_path / "file").write_text("", encoding="utf-8")
    if where == "full disk" and not os.access("/dev/full", os.W_OK):
        pytest.skip("no /dev/full here")
    log = CallLog(target, "run1", "me")
    for i in range(3):
        log.write(case_id=f"c{i}")  # never raises
    log.close()
    first = log.unreported()
    assert (first or "").startswith(f"{target}: ")
    assert log.unreported() is None  # once


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder_is_one_reported_failure(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        log = CallLog(folder / "calls.jsonl", "run1", "me")
        log.write(case_id="c")
        log.write(case_id="d")
        assert "Permission denied" in (log.unreported() or "")
        assert log.unreported() is None
    finally:
        folder.chmod(0o700)


class RefusedRename:
    """``os.rename``/``os.replace`` refusing to move the live file ``name`` (as in a folder made
    immutable with ``chattr +i``), counting the tries; ``allow()`` lifts it."""

    def __init__(self, monkeypatch, name: str) -> None:
        self.name, self.tries, self.refusing = name, 0, True
        for fn in ("rename", "replace"):
            real = getattr(os, fn)
            monkeypatch.setattr(os, fn, lambda src, dst, *a, _real=real, **k: self.move(_real, src, dst, *a, **k))

    def move(self, real, src, dst, *args, **kwargs):
        if Path(src).name == self.name:
            self.tries += 1
            if self.refusing:
                raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        return real(src, dst, *args, **kwargs)

    def allow(self) -> None:
        self.refusing = False


def test_a_rotation_whose_rename_fails_keeps_every_line_in_the_live_file_and_retries_a_minute_later(
        tmp_path, monkeypatch):
    path = tmp_path / "calls.jsonl"
    refused = RefusedRename(monkeypatch, "calls.jsonl")
    clock = Clock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    log = CallLog(path, "run1", "me", rotate=Rotation(max_bytes=2048), clock=clock)
    for i in range(40):  # ~12 KB: due from the 8th line on
        clock.now += timedelta(seconds=1)
        log.write(case_id=f"c{i:02d}", error="x" * 100)
    assert refused.tries == 1  # not a failing rename for each line
    assert [r["case_id"] for r in read(path)] == [f"c{i:02d}" for i in range(40)]  # none dropped
    assert log.failed is None  # no write failed
    assert log.unreported() is None
    assert log.unreported_rotation() == (f"{path}: Operation not permitted; its lines go on to it, and the "
                                         "rotation is tried again a minute later")
    assert log.unreported_rotation() is None  # one warning
    clock.now += timedelta(seconds=40)  # a minute after the failure: tried again (and refused again)
    log.write(case_id="c40")
    assert refused.tries == 2
    refused.allow()
    clock.now += timedelta(seconds=61)
    log.write(case_id="c41")  # rotates: the live file's 41 lines move, this one starts the new file
    log.close()
    assert refused.tries == 3
    assert [f.name for _, _, f in rotated_files(path)] == ["calls.2026-11-30.001.jsonl"]
    assert [r["case_id"] for r in read(path)] == ["c41"]
    assert [r["case_id"] for r in every_line(path)] == [f"c{i:02d}" for i in range(42)]
    assert log.unreported_rotation() is None


def test_a_rotation_without_its_lock_file_keeps_the_lines_in_the_live_file(tmp_path):
    path = tmp_path / "calls.jsonl"
    (tmp_path / "calls.jsonl.lock").mkdir()  # the lock cannot be made (a folder that takes no new file)
    clock = Clock(datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC))
    log = CallLog(path, "run1", "me", rotate=Rotation(daily=True), clock=clock)
    for i in range(6):
        log.write(case_id=f"c{i}")
        clock.now += timedelta(seconds=20)  # the day changes after the second line
    log.close()
    assert [r["case_id"] for r in read(path)] == [f"c{i}" for i in range(6)]
    assert rotated_files(path) == []
    assert log.failed is None
    assert (log.unrotated or "").startswith(f"{path}: ")


def test_a_failed_append_still_drops_its_line_after_a_failed_rotation(tmp_path, monkeypatch):
    path = tmp_path / "calls.jsonl"
    RefusedRename(monkeypatch, "calls.jsonl")
    log = CallLog(path, "run1", "me", rotate=Rotation(max_bytes=1024))
    log.write(case_id="c0", error="x" * 1100)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    log.write(case_id="c1")  # due, refused, then the append fails: this line is lost, and said
    monkeypatch.setattr(os, "write", real_write)
    log.write(case_id="c2")
    log.close()
    assert [r["case_id"] for r in read(path)] == ["c0", "c2"]
    assert log.unreported() == f"{path}: No space left"
    assert log.unrotated is not None
