"""Ctrl-C and SIGTERM mid-run: finished calls are kept, nothing half-done is cached."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.support.project import KEY_ENV
from tests.support.run import pytest_argv, run_pytest, run_python, start


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_keeps_finished_calls(project, sig, xdist):
    project.server.latency = 0.4
    rows = "\n".join(f"q{i},contains:q{i}" for i in range(40))
    project.write({"prompt_tests/a.csv": f"input,__expected\n{rows}\n"}, concurrency=4)
    proc = start(pytest_argv("--promstack-json=out/r.json", "--promstack-report=out/r.html", "--junitxml=out/j.xml",
                             *xdist),
                 cwd=project.path, env={KEY_ENV: "k"})
    deadline = time.monotonic() + 60
    while project.server.count < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)  # to the controller alone, as `kill` or a CI runner does
    out, _ = proc.communicate(timeout=60)
    calls_at_end = project.server.count
    time.sleep(1.0)
    assert project.server.count == calls_at_end  # no process of the run goes on calling
    assert calls_at_end < 40
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out.split("KeyboardInterrupt")[0]
    lines = [json.loads(x) for x in (project.path / ".promstack/calls.jsonl").read_text().splitlines()]
    ok = {x["case_id"] for x in lines if x["status"] == "ok"}
    assert 8 <= len(ok) < 40  # some finished, not all
    cancelled = {x["case_id"] for x in lines if x["status"] == "cancelled"}
    assert cancelled  # the calls cut short are in the log as such
    assert not cancelled & ok
    assert f"promstack: interrupted: {len(ok)} of 40 cases finished; the reports hold those" in out
    # the reports hold exactly the finished cases, whole files (written to a temporary name, then renamed)
    doc = json.loads((project.path / "out/r.json").read_text(encoding="utf-8"))
    assert doc["run"]["interrupted"] is True
    assert {c["case_id"] for c in doc["cases"]} == ok
    assert all(c["outcome"] == "passed" for c in doc["cases"])
    page = (project.path / "out/r.html").read_text(encoding="utf-8")
    assert page.rstrip().endswith("</html>")
    assert f"interrupted: {len(ok)} of 40 cases finished" in page
    assert sorted(p.name for p in (project.path / "out").iterdir()) == ["j.xml", "r.html", "r.json"]
    # JUnit too: every finished case passed, with its properties; under xdist the case a worker
    # was waiting on when the signal came may stay xdist's "crashed" error, one per worker at most
    cases = ET.parse(project.path / "out/j.xml").getroot().iter("testcase")
    passed = {c.get("name") for c in cases if not list(c.iter("error")) + list(c.iter("failure"))}
    assert passed == {cid.split("::")[-1] for cid in ok}
    errors = [c for c in ET.parse(project.path / "out/j.xml").getroot().iter("testcase") if list(c.iter("error"))]
    assert len(errors) <= (2 if xdist else 0)
    props = ET.parse(project.path / "out/j.xml").getroot().find(".//testcase/properties")
    assert {p.get("name") for p in props.iter("property")} >= {"model", "latency_ms", "cached"}
    # every finished call was cached; nothing else was
    project.server.reset()
    result = project.run("--promstack-cache=replay")
    result.assert_outcomes(passed=len(ok), failed=40 - len(ok))
    assert project.server.count == 0


def test_temp_files_of_a_writer_killed_hard_are_removed_by_the_next_run(project):
    """SIGKILL (or power loss) mid-write leaves `.r.json.PID.xxx.tmp`; the next write of the same
    report removes it once its process is gone, and never a live writer's temp file."""
    project.write({"prompt_tests/a.csv": "input,__expected\nq,contains:q\n"})
    out = project.path / "out"
    out.mkdir()
    dead = run_python("import os; print(os.getpid())").check().stdout.strip()
    live = start([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f".r.json.{dead}.k1ll.tmp").write_text('{"half": ')
        (out / f".r.html.{dead}.k1ll.tmp").write_text("<html")
        old = out / ".r.json.abc123"  # an older version's name, no pid: removed after 10 minutes
        old.write_text("{")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        (out / f".r.json.{live.pid}.busy.tmp").write_text("{")  # another run writing right now
        project.run("--promstack-json=out/r.json", "--promstack-report=out/r.html").assert_outcomes(passed=1)
        assert sorted(p.name for p in out.iterdir()) == [f".r.json.{live.pid}.busy.tmp", "r.html", "r.json"]
    finally:
        live.kill()
        live.communicate()


ONCE = ("python:__import__('pathlib').Path('signalled').exists() or bool(__import__('pathlib').Path('signalled')"
        ".touch() or __import__('os').kill(__import__('os').getpid(), __import__('signal').SIGINT)) or True")


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["no-xdist", "xdist"])
def test_an_interrupt_while_a_case_is_scored_keeps_that_case_scored(project, xdist):
    # the signal lands after the case's setup was reported (its record was its identity) and
    # before its call was: the interrupted run scores it as it scores every finished case,
    # instead of leaving it unscored (or, under xdist, "crashed")
    project.write({"prompt_tests/a.csv": f'input,__expected\nq1,"{ONCE}"\n'})
    out = run_pytest("--promstack-json=r.json", "--junitxml=j.xml", *xdist, cwd=project.path, env={KEY_ENV: "k"})
    assert out.returncode == pytest.ExitCode.INTERRUPTED, out.stdout
    (case,) = json.loads((project.path / "r.json").read_text(encoding="utf-8"))["cases"]
    assert (case["outcome"], case["called"], len(case["latencies"])) == ("passed", True, 1), case
    (testcase,) = ET.parse(project.path / "j.xml").getroot().iter("testcase")
    assert not list(testcase.iter("error")) + list(testcase.iter("failure"))
