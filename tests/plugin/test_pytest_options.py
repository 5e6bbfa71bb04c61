"""pytest's own options on prompt cases, end to end against the loopback server: --lf, --ff,
--sw, -k, -m, -x, --collect-only, --junitxml and -n (pytest-xdist).

``Project.run`` switches pytest's cache provider off (``-p no:cacheprovider``); --lf, --ff
and --sw need it, so those tests call ``pytester.runpytest`` themselves. CI runs this file on
the newest pytest and on the oldest one pyproject.toml allows (``tox -e pytest-min``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import check_invariants, summary_rows
from tests.support.project import KEY_ENV
from tests.support.run import run_pytest

# row-2 and row-4 pass; row-3 fails (the server echoes: "echo: 둘")
THREE = "input,__expected\n하나,contains:하나\n둘,contains:없음\n셋,contains:셋\n"
FIXED = THREE.replace("contains:없음", "contains:둘")
ONE = "input,__expected\n넷,contains:넷\n"


def run(project, *args: str) -> pytest.RunResult:
    """A run with pytest's cache provider on (the --lf/--ff/--sw state lives in it)."""
    result = project.pytester.runpytest("--promstack", *args)
    check_invariants(result)
    return result


def item_lines(result: pytest.RunResult) -> list[str]:
    return [line.split()[0] for line in result.stdout.lines if line.startswith("prompt_tests/") and "::" in line]


def test_lf_reruns_only_the_failed_case_and_skips_files_without_failures(project):
    project.write({"prompt_tests/a.csv": THREE, "prompt_tests/b.csv": ONE})
    run(project).assert_outcomes(passed=3, failed=1)
    result = run(project, "--lf", "-v")
    result.assert_outcomes(failed=1)
    # our header first, then pytest's own --lf line (as pytest prints its plugins' lines)
    result.stdout.fnmatch_lines(["promstack: 1 case from 1 file, *", "run-last-failure: rerun previous 1 failure (skipped 1 file)"])
    result.stdout.no_fnmatch_line("*known failures not in selected tests*")
    assert item_lines(result) == ["prompt_tests/a.csv::row-3[mine]"]
    (row,) = summary_rows(result)
    assert row["cases"] == "1"
    project.write({"prompt_tests/a.csv": FIXED})
    run(project, "--lf").assert_outcomes(passed=1)
    result = run(project, "--lf")
    result.assert_outcomes(passed=4)  # nothing failed last time: --lf runs everything
    result.stdout.fnmatch_lines(["run-last-failure: no previously failed tests, not deselecting items."])


def test_lf_with_model_and_prompt_variants_in_the_ids(project):
    project.write({
        "prompts/short.yaml": "id: short\ntemplate: '{{ input }}'\n",
        "prompts/long.yaml": "id: long\ntemplate: '질문: {{ input }}'\n",
        "prompt_tests/a.csv": "input,__expected\n하나,contains:질문\n",
    }, models=["m1", "m2"], suites={"s": {"prompts": ["prompts/short.yaml", "prompts/long.yaml"],
                                          "tests": ["prompt_tests/a.csv"]}})
    run(project).assert_outcomes(passed=2, failed=2)  # the short prompt has no "질문"
    result = run(project, "--lf", "-v")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures"])
    assert all("[short-" in line for line in item_lines(result))  # the variant by prompt id, no hash


def test_lf_while_recording_keeps_the_cassette_entries_of_skipped_files(project):
    project.write({"prompt_tests/a.csv": THREE, "prompt_tests/b.csv": ONE})
    run(project, "--promstack-record").assert_outcomes(passed=3, failed=1)
    cassette = project.path / "cassettes/regression.jsonl"
    before = cassette.read_text(encoding="utf-8").splitlines()
    assert len(before) == 4
    run(project, "--promstack-record", "--lf").assert_outcomes(failed=1)
    assert cassette.read_text(encoding="utf-8").splitlines() == before  # b.csv's case still exists


def test_ff_runs_the_failed_case_first_then_the_rest(project):
    project.write({"prompt_tests/a.csv": THREE})
    run(project).assert_outcomes(passed=2, failed=1)
    result = run(project, "--ff", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure first"])
    assert item_lines(result) == ["prompt_tests/a.csv::row-3[mine]", "prompt_tests/a.csv::row-2[mine]",
                                  "prompt_tests/a.csv::row-4[mine]"]


def test_sw_stops_at_the_failed_case_and_resumes_from_it(project):
    project.write({"prompt_tests/a.csv": THREE})
    result = run(project, "--sw", "-v")
    result.assert_outcomes(passed=1, failed=1)  # row-4 does not run
    result.stdout.fnmatch_lines(["*Interrupted: Test failed, continuing from this test next run.*"])
    project.write({"prompt_tests/a.csv": FIXED})
    result = run(project, "--sw", "-v")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["stepwise: skipping 1 already passed items*"])
    assert item_lines(result) == ["prompt_tests/a.csv::row-3[mine]", "prompt_tests/a.csv::row-4[mine]"]


def test_k_selects_by_model_and_deselected_cases_make_no_call(project):
    project.write({"prompt_tests/a.csv": THREE}, models=["m1", "m2"])
    result = project.run("-k", "m2 and not row-3", "-v")
    result.assert_outcomes(passed=2, deselected=4)
    assert item_lines(result) == ["prompt_tests/a.csv::row-2[m2]", "prompt_tests/a.csv::row-4[m2]"]
    assert project.server.count == 2
    assert {r["model"] for r in project.server.requests} == {"m2"}


def test_m_selects_cases_by_metadata_marker(project):
    project.write({"prompt_tests/a.csv": """
        input,__expected,__metadata:urgent,__metadata:topic
        하나,contains:하나,yes,refund
        둘,contains:둘,,shipping
        셋,contains:셋,,refund
    """})
    project.run("-m", "urgent").assert_outcomes(passed=1, deselected=2)
    project.run("-m", "not urgent").assert_outcomes(passed=2, deselected=1)
    project.run("-k", "refund").assert_outcomes(passed=2, deselected=1)
    assert project.server.count == 3  # every case called once; the later runs answer from the cache


@pytest.mark.skipif(pytest.version_tuple < (8, 3), reason="marker arguments in -m expressions came with pytest 8.3")
def test_m_selects_cases_by_metadata_value(project):
    project.write({"prompt_tests/a.csv": """
        input,__expected,__metadata:topic
        하나,contains:하나,refund
        둘,contains:둘,shipping
        셋,contains:셋,refund
    """})
    project.run("-m", "topic(value='refund')").assert_outcomes(passed=2, deselected=1)
    project.run("-m", "topic and not topic(value='refund')").assert_outcomes(passed=1, deselected=2)


def test_x_stops_after_the_first_failure_and_the_summary_counts_what_ran(project):
    project.write({"prompt_tests/a.csv": THREE})
    result = project.run("-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    (row,) = summary_rows(result)
    assert (row["cases"], row["passed"], row["failed"]) == ("2", "1", "1")


def test_collect_only_lists_every_case_and_calls_no_model(project):
    project.write({"prompt_tests/a.csv": THREE, "prompt_tests/b.csv": ONE}, models=["m1", "m2"])
    result = project.run("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    ids = [line for line in result.stdout.lines if "::" in line]
    assert len(ids) == 8
    assert "prompt_tests/b.csv::row-2[m2]" in ids
    assert project.server.count == 0
    assert summary_rows(result) == []


def test_junit_time_is_the_cases_model_latency_summed_over_repeats(project):
    project.server.latency = 0.3
    project.write({"prompt_tests/a.csv": "input,__expected,__providerOutput\n하나,contains:하나,\n둘,contains:둘,둘\n"})
    project.run("--junitxml=junit.xml", "--promstack-repeat=2").assert_outcomes(passed=2)
    times = junit_times(project.path / "junit.xml")
    calls = [json.loads(line) for line in (project.path / ".promstack/calls.jsonl").read_text().splitlines()]
    latency = sum(c["latency_ms"] for c in calls) / 1000
    assert len(calls) == 2  # the row with __providerOutput calls no model
    assert latency >= 0.6
    assert times["row-2[mine]"] == pytest.approx(latency, abs=0.05)  # two repeats of 0.3 s
    assert times["row-3[mine]"] < 0.05
    # from the cache: the recorded latency again (the `cached` property says it was a cache hit)
    project.run("--junitxml=junit.xml", "--promstack-repeat=2").assert_outcomes(passed=2)
    assert junit_times(project.path / "junit.xml")["row-2[mine]"] == pytest.approx(latency, abs=0.05)


def junit_times(path) -> dict[str, float]:
    return {case.get("name"): float(case.get("time")) for case in ET.parse(path).iter("testcase")}


def test_junitxml_names_every_case_with_its_file_and_properties(project):
    project.write({"prompt_tests/a.csv": THREE})
    project.run("--junitxml=junit.xml").assert_outcomes(passed=2, failed=1)
    cases = list(ET.parse(project.path / "junit.xml").iter("testcase"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("prompt_tests.a.csv", "row-2[mine]"), ("prompt_tests.a.csv", "row-3[mine]"),
        ("prompt_tests.a.csv", "row-4[mine]")]
    failure = cases[1].find("failure")
    assert failure is not None
    assert "prompt_tests/a.csv:3 [mine]: 1 of 1 assertions failed" in failure.get("message")
    assert {p.get("name") for p in cases[0].iter("property")} >= {"model", "latency_ms", "cached"}


def test_xdist_gives_the_same_outcomes_summary_and_junit_as_one_process(project):
    project.write({"prompt_tests/a.csv": THREE, "prompt_tests/b.csv": ONE}, models=["m1", "m2"])
    one = project.run("--junitxml=one.xml")
    one.assert_outcomes(passed=6, failed=2)
    project.server.reset()
    two = project.run("-n", "2", "--junitxml=two.xml")
    two.assert_outcomes(passed=6, failed=2)
    assert project.server.count == 0  # the workers share the disk cache
    columns = ("suite", "model", "cases", "passed", "failed", "errors", "pass %")
    assert ([{k: r[k] for k in columns} for r in summary_rows(two)]
            == [{k: r[k] for k in columns} for r in summary_rows(one)])
    assert sorted(junit_names(project.path / "two.xml")) == sorted(junit_names(project.path / "one.xml"))


def junit_names(path) -> list[tuple[str, str, bool]]:
    return [(c.get("classname"), c.get("name"), c.find("failure") is not None)
            for c in ET.parse(path).iter("testcase")]


def test_lf_under_xdist_reruns_only_the_failed_case(project):
    project.write({"prompt_tests/a.csv": THREE, "prompt_tests/b.csv": ONE})
    run(project, "-n", "2").assert_outcomes(passed=3, failed=1)
    result = run(project, "-n", "2", "--lf")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*known failures not in selected tests*")


COUNT_TRACEBACKS = """
import _pytest._code.code as code

formatted = []
_getrepr = code.ExceptionInfo.getrepr


def getrepr(self, *args, **kwargs):
    formatted.append(type(self.value).__name__)
    return _getrepr(self, *args, **kwargs)


code.ExceptionInfo.getrepr = getrepr


def pytest_unconfigure(config):
    print("TRACEBACKS FORMATTED", formatted)
"""


def test_a_cases_error_in_setup_is_one_line_without_formatting_a_traceback_first(project):
    # pytest formats an error in setup as a traceback with every frame's source (about 50 ms a
    # case) before the plugin puts the one line in its place: 1,000 cases without their key
    # took a minute to report
    project.write({"prompt_tests/a.csv": THREE, "conftest.py": COUNT_TRACEBACKS})
    out = run_pytest("-s", "--promstack-cache", "off", cwd=project.path)  # no key: every case errors in setup
    out.fnmatch_lines(["*3 errors*", "TRACEBACKS FORMATTED []"])
    assert out.stdout.count(f"environment variable {KEY_ENV} is not set") == 3


RERUN = '''
import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):  # as a rerun plugin does: a failed case runs again
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for _ in range(3):
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if not any(r.failed for r in reports):
            break
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
'''


def test_a_rerun_plugin_runs_a_failed_case_again_and_the_results_count_it_once(project):
    project.write({"prompt_tests/a.csv": THREE, "conftest.py": RERUN})
    result = project.run("--promstack-json=r.json", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*row-3*FAILED*", "*contains*없음*"])
    doc = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert sorted((c["case_id"].split("::")[-1], c["outcome"]) for c in doc["cases"]) == [
        ("row-2[mine]", "passed"), ("row-3[mine]", "failed"), ("row-4[mine]", "passed")]
