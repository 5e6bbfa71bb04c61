"""Work a pull request's files can ask for is bounded: a template that loops or allocates without
end ends its own case in one line naming the limit, and the rest of the run goes on."""

from __future__ import annotations

import json
import time

from pytest_promstack.util.sandbox import MAX_SIZE

GOOD = "input,__expected\nok,contains:ok\n"
QUICK_S = 30  # unbounded, each input below never ends, takes minutes or takes a gigabyte
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ input }}"


def quick_run(project, *args):
    start = time.monotonic()
    result = project.run(*args)
    assert time.monotonic() - start < QUICK_S
    return result


def two_suites(project, template, rows="input\na\nb\nc\n"):
    project.write({"prompts/slow.yaml": f"id: slow\ntemplate: '{template}'\n",
                   "prompts/good.yaml": "id: good\ntemplate: '{{ input }}'\n",
                   "prompt_tests/slow.csv": rows, "prompt_tests/good.csv": GOOD},
                  suites={"slow": {"prompt": "prompts/slow.yaml", "tests": ["prompt_tests/slow.csv"]},
                          "good": {"prompt": "prompts/good.yaml", "tests": ["prompt_tests/good.csv"]}})


def test_nested_loops_in_a_prompt_template_stop_at_the_cpu_limit_and_the_run_goes_on(project):
    two_suites(project, NESTED)
    quick_run(project, "--collect-only")
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines([
        "*slow.csv:2 [[]mine[]]: prompts/slow.yaml: template stopped: it ran for more than 1 s of CPU time, the limit "
        "per render; simplify it (nested loops multiply their work)",
    ])
    result.stdout.fnmatch_lines(["*slow.csv:3 [[]mine[]]: prompts/slow.yaml: template stopped: it ran for more than "
                                 "1 s of CPU time*(on an earlier render; it is not run again)"])
    assert project.server.count == 1  # no call for the stopped cases


def test_a_template_that_would_make_a_gigabyte_string_is_one_error_naming_the_limit(project):
    two_suites(project, "{{ (\"x\" * 1000000000)|length }}", rows="input\na\n")
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*slow.csv:2 [[]mine[]]: prompts/slow.yaml: template stopped: str * 1000000000 would "
                                 f"make 1,000,000,000 characters, more than the limit of {MAX_SIZE:,}; templates may "
                                 "not build values that large"])


def test_a_judge_template_over_the_cpu_limit_errors_its_case_naming_the_setting(project):
    from tests.plugin.test_judges import judge_config

    config = json.loads(judge_config(project)["promstack.yaml"])
    config["judges"]["support_quality"]["prompt"] = NESTED.replace("input", "answer")
    project.write({"promstack.yaml": json.dumps(config, ensure_ascii=False),
                   "prompt_tests/a.csv": "input,__expected\nx,judge:support_quality\n"})
    result = quick_run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*judge support_quality gave no usable verdict: judge support_quality's prompt "
                                 "template stopped: it ran for more than 1 s of CPU time, the limit per render; "
                                 "simplify it (nested loops multiply their work); fix judges.support_quality.prompt"])
