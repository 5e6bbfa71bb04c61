"""The Masker (safety/mask.py): typed numbered placeholders, one per value in every form it is
written in, values masked again where no rule would find them alone, and a value's beginning
masked where a cut ends it; restore puts the values back."""

from __future__ import annotations

import pytest

from pytest_promstack.safety.mask import Masker, canonical


def test_one_value_one_placeholder_numbered_per_type_in_order_of_first_sight():
    m = Masker()
    assert m.mask("a@x.com, 010-1234-5678, b@y.org, a@x.com") == "<EMAIL_1>, <PHONE_1>, <EMAIL_2>, <EMAIL_1>"
    assert m.mask("다시 b@y.org") == "다시 <EMAIL_2>"  # the same masker: the same numbers


def test_a_number_written_in_several_forms_is_one_placeholder_and_restores_as_first_written():
    m = Masker()
    masked = m.mask("01012345678 / +82 10-1234-5678 / 010.1234.5678 / 82-10-1234-5678")
    assert masked == "<PHONE_1> / <PHONE_1> / <PHONE_1> / <PHONE_1>"
    assert m.restore("연락처 <PHONE_1>") == "연락처 01012345678"
    assert Masker().mask("4111 1111 1111 1111, 4111-1111-1111-1111") == "<CREDIT_CARD_1>, <CREDIT_CARD_1>"


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("PHONE", "+82 10-1234-5678", "01012345678"), ("PHONE", "(02) 123-4567", "021234567"),
    ("KR_RRN", "900101 - 1234568", "9001011234568"), ("EMAIL", "Kim@Example.COM", "kim@example.com"),
    ("OPENAI_KEY", "sk-Abc", "sk-Abc"),
])
def test_canonical_forms(kind, value, expected):
    assert canonical(kind, value) == expected


def test_a_seen_value_is_masked_where_no_rule_would_find_it_alone():
    m = Masker()
    assert m.mask("성명: 김민지") == "성명: <PERSON_1>"
    assert m.mask("김민지 님의 주문") == "<PERSON_1> 님의 주문"
    assert Masker().mask("김민지의 주문") == "김민지의 주문"  # without the label, no rule finds the name


def test_a_value_cut_short_before_an_ellipsis_is_masked_too():
    m = Masker()
    m.mask("echo: 가가가 900101-1234568 끝, 카드 4111 1111 1111 1111, sk-proj-AbC123dEf456GhIjKlMnOpQrSt")
    reason = "contains: 'x' in 'echo: 가가가 900101-12345…' / '4111 1111 11…' / 'sk-proj-AbC123…' / 'plain…'"
    assert m.mask(reason) == ("contains: 'x' in 'echo: 가가가 <KR_RRN_1>…' / '<CREDIT_CARD_1>…' / "
                              "'<OPENAI_KEY_1>…' / 'plain…'")


def test_masking_twice_changes_nothing_and_restore_leaves_unknown_placeholders():
    m = Masker()
    once = m.mask("주민번호 900101-1234568")
    assert m.mask(once) == once
    assert m.restore("<KR_RRN_1> <EMAIL_9>") == "900101-1234568 <EMAIL_9>"


def test_no_types_masks_nothing():
    assert Masker(()).mask("a@x.com 900101-1234568") == "a@x.com 900101-1234568"


def test_a_number_in_fullwidth_digits_is_the_same_value_as_in_ascii():
    assert Masker().mask("０１０－１２３４－５６７８ 또는 010-1234-5678") == "<PHONE_1> 또는 <PHONE_1>"


def test_a_value_as_repr_shows_it_and_a_detected_beginning_before_a_cut_keep_its_placeholder():
    m = Masker()
    raw = "전화 010\u30001234\u30005678, 키 sk-proj-AbC123dEf456GhIjKlMnOpQrSt, kim.cs@example.com"
    assert m.mask(raw) == "전화 <PHONE_1>, 키 <OPENAI_KEY_1>, <EMAIL_1>"
    # repr() escapes the ideographic space; a cut key or address would be found as a value of its own
    assert m.mask(repr(raw)) == "'전화 <PHONE_1>, 키 <OPENAI_KEY_1>, <EMAIL_1>'"
    assert m.mask("'sk-proj-AbC123dEf456Gh…' 'kim.cs@example.co…'") == "'<OPENAI_KEY_1>…' '<EMAIL_1>…'"
