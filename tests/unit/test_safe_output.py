"""Pure pieces of terminal-safe output and bad-input checks: the escaping, the calibration
that leaves out human scores off the judge's scale, the registry index check."""

from __future__ import annotations

import pytest

from pytest_promstack.score.judges import calibration
from pytest_promstack.util.text import safe, safe_lines
from pytest_promstack.versions import index_problem


def test_safe_escapes_c0_c1_del_and_bidi_controls_visibly():
    assert safe("\x1b[2J\x1b[H ALL TESTS PASSED") == r"\x1b[2J\x1b[H ALL TESTS PASSED"
    assert safe("a\rb\x00c\x07d\x7fe\x85f\x9bg") == r"a\rb\x00c\x07d\x7fe\x85f\x9bg"
    assert safe("abc\u202efed\u2066x\u2069\u200f") == r"abc\u202efed\u2066x\u2069\u200f"
    assert safe("line\u2028break") == r"line\u2028break"


def test_safe_keeps_korean_tabs_and_printable_unicode_as_they_are():
    text = "환불 절차 안내\t— 「ok」 ✓ ✗ …"
    assert safe(text) == text


def test_safe_escapes_newlines_unless_the_message_is_our_own_multi_line_one():
    assert safe("a\nb") == r"a\nb"
    assert safe("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert safe_lines(["x\x1by", "ok"]) == [r"x\x1by", "ok"]


@pytest.mark.parametrize("text", ["\x1b[31m빨강\u202e", "plain", "a\r\n\x9b"])
def test_safe_output_holds_nothing_it_would_escape(text):
    once = safe(text)
    assert safe(once) == once
    assert once.isprintable()


def test_safe_takes_non_strings():
    assert safe(3) == "3"
    assert safe(None) == "None"


def test_calibration_leaves_out_human_scores_off_the_scale_and_names_their_cases():
    c = calibration([(5.0, 5), (4.0, 9), (2.0, 2.2), (3.0, 0), (3.0, float("nan"))], (1, 5),
                    ["a", "b", "c", "d", "e"])
    assert c["n"] == 2
    assert c["exact"] == 1.0
    assert c["kappa"] == 1.0
    assert [x["case_id"] for x in c["excluded"]] == ["b", "d", "e"]
    assert c["scale"] == [1, 5]


def test_calibration_with_no_human_score_on_the_scale_has_no_figures():
    c = calibration([(4.0, 7)], (1, 5), ["a"])
    assert (c["n"], c["exact"], c["kappa"], c["spearman"]) == (0, None, None, None)


V1 = {"number": 1, "hash": "h", "file": "1.yaml", "time": "2026-11-30T08:00:00Z", "author": "kim", "message": "first"}


@pytest.mark.parametrize(("data", "problem"), [
    ({"prompts": []}, "prompts: a list, expected an object of prompt id -> entry"),
    ({"prompts": {"p": []}}, "prompts.p: a list, expected an object"),
    ({"prompts": {"p": {"versions": []}}}, "prompts.p.source: missing"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": []}}}, "prompts.p.versions: empty, expected at least one version"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [{"hash": "h", "file": "1.yaml"}]}}},
     "prompts.p.versions[0].number: missing"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [{"number": True, "hash": "h", "file": "1.yaml"}]}}},
     "prompts.p.versions[0].number: a boolean, expected an integer"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [{"number": 1, "hash": "h", "file": "../../x"}]}}},
     "prompts.p.versions[0].file: '../../x' is not a file name in the prompt's folder"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [{**V1, "author": None}]}}},
     "prompts.p.versions[0].author: null, expected a string"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [{k: v for k, v in V1.items() if k != "message"}]}}},
     "prompts.p.versions[0].message: missing"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [V1],
                        "labels": {"production": "1"}}}}, "prompts.p.labels.production: a string, expected a version number"),
    ({"prompts": {"p": {"source": "p.yaml", "versions": [V1],
                        "labels": [], "audit": []}}}, "prompts.p.labels: a list, expected an object"),
])
def test_registry_index_problem_names_the_first_key_of_a_wrong_type(data, problem):
    assert index_problem(data) == problem


def test_registry_index_of_the_right_types_has_no_problem():
    entry = {"source": "p.yaml", "versions": [{**V1, "evaluations": []}],
             "labels": {"production": 1},
             "audit": [{"time": "t", "who": "w", "action": "label", "label": "production", "from": None, "to": 1}]}
    assert index_problem({"prompts": {"p": entry}}) is None
