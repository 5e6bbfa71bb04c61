"""Bounded work per input: a test file, prompt or option from someone else's pull request is
one error item with a one-line reason (file, row, the limit, the fix); the good file beside
it still runs, and the run ends quickly instead of stalling or crashing."""

from __future__ import annotations

import json
import time

import pytest

GOOD = "input,__expected\nok,contains:ok\n"
QUICK_S = 20  # unbounded, each input below takes minutes, gigabytes or the whole session

BOMB = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]" for p, x in zip("abcdefgh", "bcdefghi", strict=True)),
]) + "\n"


def quick_run(project, *args):
    start = time.monotonic()
    result = project.run(*args)
    assert time.monotonic() - start < QUICK_S
    return result


def test_yaml_alias_bomb_is_one_error_and_the_good_file_passes(project):
    assert len(BOMB) < 600
    project.write({"prompt_tests/bomb.yaml": BOMB, "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/bomb.yaml:1: its aliases (*name) expand to 490,329,036 more values, "
                                 "beyond the limit of 1,000,000; write the data out instead of nesting aliases*"])


def test_yaml_alias_bomb_in_a_prompt_file_is_one_error(project):
    project.write({"prompts/p.yaml": f"id: p\ntemplate: '{{{{ input }}}}'\nbomb:\n  {BOMB.replace(chr(10), chr(10) + '  ')}",
                   "prompts/q.yaml": "id: q\ntemplate: '{{ input }}'\n",
                   "prompt_tests/good.csv": GOOD},
                  suites={"bad": {"prompt": "prompts/p.yaml", "tests": ["prompt_tests/good.csv"]},
                          "good": {"prompt": "prompts/q.yaml", "tests": ["prompt_tests/good.csv"]}})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompts/p.yaml*its aliases (*name) expand to * more values, beyond the limit "
                                 "of 1,000,000*"])


def test_yaml_alias_bomb_in_the_config_is_a_config_error_with_the_line(project):
    project.write({"prompt_tests/good.csv": GOOD})
    config = (project.path / "promstack.yaml").read_text(encoding="utf-8")
    (project.path / "promstack.yaml").write_text(config + "bomb:\n  " + BOMB.replace("\n", "\n  "), encoding="utf-8")
    result = quick_run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["promstack.yaml:*: not valid YAML: its aliases (*name) expand to * more values, "
                                 "beyond the limit of 1,000,000*"])


def test_recursive_yaml_alias_is_one_error(project):
    project.write({"prompt_tests/loop.yaml": "- vars: &v {input: x, again: *v}\n", "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/loop.yaml:1: an alias (*name) refers to a node that contains it*"])


def test_json_nested_100k_deep_is_one_error_not_the_end_of_the_session(project):
    project.write({"prompt_tests/deep.json": "[" * 100_000 + "]" * 100_000, "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/deep.json:1: nested deeper than 100 levels; flatten the data to "
                                 "at most 100*"])


def test_yaml_nested_deep_is_one_error(project):
    project.write({"prompt_tests/deep.yaml": "- vars: {input: " + "[" * 5000 + "]" * 5000 + "}\n",
                   "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/deep.yaml:1: nested deeper than 100 levels*"])


def test_jsonl_line_nested_too_deep_is_its_row_and_the_other_rows_run(project):
    deep = json.dumps({"input": "x", "__expected": "contains:x"})[:-1] + ', "v": ' + "[" * 200 + "]" * 200 + "}"
    project.write({"prompt_tests/a.jsonl": f'{{"input": "ok", "__expected": "contains:ok"}}\n{deep}\n'})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*prompt_tests/a.jsonl:2: nested deeper than 100 levels*"])


def test_csv_with_100k_columns_is_rejected_fast(project):
    header = ",".join(f"c{i}" for i in range(100_000))
    project.write({"prompt_tests/wide.csv": header + "\n" + ",".join("x" * 100_000) + "\n",
                   "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/wide.csv:1: has 100,000 columns, more than the limit of 1,000; "
                                 "split the file or move data into fewer columns*"])


def test_csv_at_the_column_limit_with_duplicates_names_them(project):
    header = ",".join(["input", *(f"c{i}" for i in range(997)), "c5", "c7"])
    project.write({"prompt_tests/dup.csv": header + "\n", "prompt_tests/good.csv": GOOD})
    result = quick_run(project)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*prompt_tests/dup.csv:1: duplicate column(s) c5, c7*"])


def test_csv_cell_over_1_mib_is_its_row_and_the_rows_before_run(project):
    big = "x" * 1_048_577
    project.write({"prompt_tests/a.csv": f"input,__expected\nok,contains:ok\n{big},contains:x\n"})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*prompt_tests/a.csv:3: malformed CSV: a cell is longer than 1,048,576 characters "
                                 "(the limit per CSV cell); shorten it, or check for a quote that is never closed*"])


def test_repeat_option_beyond_the_cap_is_a_usage_error_naming_it(project):
    project.write({"prompt_tests/good.csv": GOOD})
    result = quick_run(project, "--promstack-repeat", "1000000000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --promstack-repeat: 1000000000: at most 1000 runs per case; "
                                 "use a smaller N*"])
    assert project.server.count == 0


def test_repeat_in_the_config_has_the_same_cap(project):
    project.write({"prompt_tests/good.csv": GOOD}, repeat=1001)
    result = quick_run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["promstack.yaml: repeat: Input should be less than or equal to 1000"])


def test_backtracking_regex_fails_after_its_time_limit_naming_the_pattern(project):
    long = "a" * 5000  # the server echoes it ("echo: aaa…"); stdlib re would never finish on it
    project.write({"prompt_tests/a.csv": f"input,__expected\n{long},regex:(a+)+b\n{long},not-regex:(a+)+b\n"
                                         "ok,regex:^echo: o+k$\n"})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*regex: /(a+)+b/ took longer than 1 s on 5,006 characters of output and was "
                                 "stopped; simplify the pattern (nested repeats like (a+)+ backtrack)*",
                                 "*not-regex: /(a+)+b/ took longer than 1 s*"])


def test_levenshtein_on_a_long_output_is_fast_and_says_beyond_the_limit(project):
    long = "Paris" * 200_000  # 1 MB: pure Python would take minutes
    project.server.replies["Pariss"] = "Pariss"
    project.write({"prompt_tests/a.csv": f"input,__expected\n{long},levenshtein(3):Paris\nPariss,levenshtein(2):Paris\n"})
    result = quick_run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*levenshtein: distance more than 3 to 'Paris', limit 3*"])
