"""The shared Redis cache against a real redis-server, and runs under pytest-xdist."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import summary_rows
from tests.support.project import config
from tests.support.redis_server import RedisServer, free_port


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


ROWS = "input,__expected\n" + "\n".join(f"q{i},contains:q{i}" for i in range(6)) + "\n"


def test_two_checkouts_share_answers_through_redis(project, redis, tmp_path):
    project.write({"prompt_tests/a.csv": ROWS})
    project.run(f"--promstack-cache-url={redis.url}").assert_outcomes(passed=6)
    assert project.server.count == 6
    # a second checkout elsewhere (its own empty disk cache), same Redis
    other = tmp_path / "other"
    other.mkdir()
    (other / "prompt_tests").mkdir()
    (other / "prompt_tests/a.csv").write_text(ROWS, encoding="utf-8")
    (other / "promstack.yaml").write_text(
        config(project.server.url, cache={"backend": "redis", "url": redis.url, "ttl": 3600}), encoding="utf-8")
    project.server.reset()
    result = project.pytester.runpytest("--promstack", "-p", "no:cacheprovider", f"--rootdir={other}", str(other))
    result.assert_outcomes(passed=6)
    assert project.server.count == 0
    result.stdout.fnmatch_lines(["*cache use (.promstack/cache) + redis redis://127.0.0.1:*"])


def test_unreachable_redis_warns_once_and_uses_the_disk_cache(project):
    project.write({"prompt_tests/a.csv": ROWS})
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = project.run(f"--promstack-cache-url={url}")
    result.assert_outcomes(passed=6)
    warnings = [line for line in result.stdout.lines if "Redis cache at" in line]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0]
    assert "using the disk cache" in warnings[0]
    project.server.reset()
    project.run(f"--promstack-cache-url={url}").assert_outcomes(passed=6)
    assert project.server.count == 0  # the disk cache kept the answers


def test_redis_without_the_client_says_how_to_install_and_uses_the_disk_cache(project):
    project.write({"prompt_tests/a.csv": ROWS})
    project.pytester.makeconftest("import sys\nsys.modules['redis'] = None  # as if not installed\n")
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = project.pytester.runpytest_subprocess("--promstack", "-p", "no:cacheprovider",
                                                   f"--promstack-cache-url={url}")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f'*Redis cache at {url} needs the redis client: '
                                 'pip install "pytest-promstack[[]redis[]]"; using the disk cache for this run*'])
    result.stdout.no_fnmatch_line("*ModuleNotFoundError*")


def test_redis_stopped_mid_run_the_run_goes_on(project, redis):
    project.server.latency = 0.3
    rows = "input,__expected\n" + "\n".join(f"q{i},contains:q{i}" for i in range(16)) + "\n"
    project.write({"prompt_tests/a.csv": rows}, concurrency=2)
    timer = threading.Timer(0.8, redis.stop)
    timer.start()
    result = project.run(f"--promstack-cache-url={redis.url}")
    timer.join()
    result.assert_outcomes(passed=16)
    assert len([line for line in result.stdout.lines if "Redis cache at" in line]) == 1
    project.server.reset()
    project.run().assert_outcomes(passed=16)
    assert project.server.count < 16  # what was written after Redis went away is on disk


def test_outcomes_and_totals_do_not_depend_on_xdist(both_modes):
    for project in both_modes:
        rows = "input,__expected\n" + "\n".join(f"q{i},contains:{'q' if i % 3 else 'zz'}{i}" for i in range(12)) + "\n"
        project.server.replies = {"q5": "tokens one two three"}
        project.write({"prompt_tests/a.csv": rows, "prompt_tests/b.json": '[{"input": "x"}]'})
        result = project.run("--promstack-cache=off")
        result.assert_outcomes(passed=7, failed=6)
        (row,) = summary_rows(result)
        assert (row["cases"], row["passed"], row["failed"]) == ("13", "7", "6")
        assert row["tokens in"] == "13"
        assert row["tokens out"] == "28"
        assert project.server.count == 13  # each worker called only its own share


def test_no_xdist_plugin_no_unknown_hook(project):
    project.write({"prompt_tests/a.csv": ROWS})
    result = project.run("-p", "no:xdist")
    result.assert_outcomes(passed=6)
    result.stderr.no_fnmatch_line("*unknown hook*")


def test_a_killed_worker_leaves_the_other_results_in_the_summary(project):
    project.write({
        "conftest.py": """
            import os
            def pytest_runtest_call(item):
                if "killme" in item.name and os.environ.get("PYTEST_XDIST_WORKER"):
                    os._exit(1)
        """,
        "prompt_tests/a.csv": "input,__expected,__description\n" + "\n".join(
            f"q{i},contains:q{i},{'killme' if i == 3 else f'c{i}'}" for i in range(8)) + "\n",
    })
    result = project.pytester.runpytest("--promstack", "-p", "no:cacheprovider", "-n", "2")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 7
    assert outcomes.get("failed") == 1
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running*killme*"])
    (row,) = summary_rows(result)
    assert row["passed"] == "7"
