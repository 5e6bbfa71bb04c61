"""strict.load_yaml / load_json: bounded nesting and alias expansion, one line with the line number."""

from __future__ import annotations

import pytest
import yaml

from pytest_promstack.util import strict
from pytest_promstack.util.strict import MAX_ALIAS_NODES, MAX_DEPTH, LimitError, load_json, load_yaml


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_yaml(depth: int) -> str:
    return "[" * depth + "]" * depth


def laughs(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_json_at_the_depth_limit_loads():
    assert load_json(nested_json(MAX_DEPTH)) is not None


def test_json_one_level_beyond_is_a_limit_error_with_its_line():
    text = "{\n" + '"a":\n' + nested_json(MAX_DEPTH) + "\n}"
    with pytest.raises(LimitError) as exc:
        load_json(text)
    assert exc.value.at("t.json") == f"t.json:3: nested deeper than {MAX_DEPTH} levels; flatten the data to at most {MAX_DEPTH}"


def test_json_far_too_deep_for_the_parser_is_the_same_limit_error():
    with pytest.raises(LimitError, match="nested deeper than"):
        load_json(nested_json(200_000))


def test_json_brackets_inside_strings_do_not_count():
    assert load_json('{"a": "' + "[" * 500 + '"}') == {"a": "[" * 500}


def test_json_duplicate_key_still_reported():
    with pytest.raises(strict.DuplicateKeyError):
        load_json('{"a": 1, "a": 2}')


def test_yaml_at_the_depth_limit_loads_and_beyond_is_a_yaml_error_too():
    assert load_yaml(nested_yaml(MAX_DEPTH - 1)) is not None
    with pytest.raises(LimitError) as exc:
        load_yaml("a: 1\nb: " + nested_yaml(MAX_DEPTH))
    assert isinstance(exc.value, yaml.YAMLError)  # the config and prompt readers report it as they are
    assert exc.value.line == 2
    assert exc.value.problem_mark.line == 1
    assert str(exc.value) == f"nested deeper than {MAX_DEPTH} levels; flatten the data to at most {MAX_DEPTH}"


def test_yaml_far_too_deep_is_a_limit_error_not_a_recursion_error():
    with pytest.raises(LimitError):
        load_yaml("[" * 100_000)


def test_yaml_billion_laughs_is_refused_before_expanding():
    sizes = [10]  # l0: a list of 9 values; each next level: a list of 9 copies of the previous
    for _ in range(8):
        sizes.append(1 + 9 * sizes[-1])
    added = sum(sizes) - (10 + 8)  # all of it but l0's 10 nodes and the 8 other lists themselves
    assert added == 490_329_036
    with pytest.raises(LimitError, match=r"its aliases \(\*name\) expand to 490,329,036 more values, beyond the "
                                         r"limit of 1,000,000; write the data out"):
        load_yaml(laughs(9))


def test_yaml_aliases_within_the_bound_load_and_share():
    data = load_yaml(laughs(4))  # 9**4 = 6,561 values once expanded
    assert data["l3"][0] is data["l2"]


def test_yaml_alias_expansion_just_over_the_bound_is_refused():
    width = 1001
    text = f"a: &a [{', '.join(['x'] * width)}]\nb: [{', '.join(['*a'] * width)}]\n"
    added = width * (width + 1)  # each alias repeats a's list and its width items
    assert added > MAX_ALIAS_NODES
    with pytest.raises(LimitError, match=f"expand to {added:,} more"):
        load_yaml(text)


def test_yaml_merge_keys_still_work():
    assert load_yaml("base: &b {x: 1}\ncase: {<<: *b, y: 2}\n")["case"] == {"x": 1, "y": 2}


def test_yaml_recursive_alias_is_refused_with_its_line():
    with pytest.raises(LimitError) as exc:
        load_yaml("ok: 1\nloop: &x [1, *x]\n")
    assert exc.value.line == 2
    assert "refers to a node that contains it" in str(exc.value)


def test_yaml_large_plain_document_is_not_counted_as_aliases():
    text = "".join(f"- {{input: {i}}}\n" for i in range(30_000))  # 90k nodes, no alias
    assert len(load_yaml(text)) == 30_000
