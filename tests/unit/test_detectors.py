"""The PII and secret detectors against their fixtures (``tests/data/safety/*.yaml``, see the
README there): each entry's text must give exactly its findings (type, value, confidence
level), minus the misses and plus the false findings the fixture records as known limits.
``benchmarks/bench_detectors.py`` counts precision and recall per type over the same files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_promstack.safety import detect
from pytest_promstack.safety.findings import HIGH, LOW, MEDIUM, PII, SECRETS, TYPES, Finding
from pytest_promstack.safety.mask import Masker

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "safety"
LEVELS = {"high": HIGH, "medium": MEDIUM, "low": LOW}
NAMES = {v: k for k, v in LEVELS.items()}


def load_fixtures() -> list[tuple[str, int, dict[str, Any]]]:
    """(file name, index, entry) for every entry of every fixture file."""
    out = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        if path.name == "injection.yaml":  # the injection score's fixtures (tests/unit/test_injection.py)
            continue
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        out += [(path.name, i, entry) for i, entry in enumerate(entries)]
    return out


def spans(text: str, rows: list[list[str]]) -> list[tuple[int, int, str, float]]:
    """Fixture rows ``[type, value, level]`` as (start, end, type, confidence), each value
    found in ``text`` left to right (a repeated value is its next occurrence)."""
    out, at = [], {}
    for kind, value, level in rows:
        start = text.find(value, at.get(value, 0))
        if start < 0:
            raise ValueError(f"{value!r} is not in the fixture's text (after position {at.get(value, 0)})")
        at[value] = start + len(value)
        out.append((start, start + len(value), kind, LEVELS[level]))
    return out


def truth(entry: dict[str, Any]) -> list[list[str]]:
    return entry.get("findings") or []


def expected(entry: dict[str, Any]) -> list[list[str]]:
    """What the rules report: the truth without its known misses, with the known false findings."""
    misses = entry.get("known_misses") or []
    return [f for f in truth(entry) if f not in misses] + (entry.get("known_false") or [])


def as_rows(found: list[Finding]) -> list[list[str]]:
    return [[f.type, f.value, NAMES[f.confidence]] for f in found]


ENTRIES = load_fixtures()


@pytest.mark.parametrize("entry", [e for _, _, e in ENTRIES], ids=[f"{name}:{i}" for name, i, _ in ENTRIES])
def test_fixture_text_gives_exactly_its_findings(entry: dict[str, Any]) -> None:
    found = detect.find(entry["text"])
    assert sorted(as_rows(found)) == sorted(expected(entry))
    assert all(entry["text"][f.start:f.end] == f.value for f in found)
    want = sorted(spans(entry["text"], expected(entry)))
    assert [(f.start, f.end, f.type, f.confidence) for f in found] == want


def test_near_miss_fixtures_expect_nothing() -> None:
    near = [e for name, _, e in ENTRIES if name == "near_miss.yaml"]
    assert len(near) >= 30
    assert all(not truth(e) and not e.get("known_misses") for e in near)


def test_fixtures_cover_every_type_at_its_levels() -> None:
    seen = {(kind, level) for _, _, e in ENTRIES for kind, _, level in truth(e)}
    assert {kind for kind, _ in seen} == set(TYPES)
    assert {("KR_RRN", "high"), ("KR_RRN", "medium"), ("KR_FRN", "high"), ("KR_FRN", "medium"),
            ("PHONE", "high"), ("PHONE", "medium"), ("PHONE", "low")} <= seen


def test_fixture_rows_name_known_types_and_levels() -> None:
    for _, _, e in ENTRIES:
        for kind, _value, level in truth(e) + (e.get("known_false") or []):
            assert kind in TYPES, kind
            assert level in LEVELS, level


def test_types_filter_keeps_only_the_asked_types() -> None:
    text = "홍길동 고객님 010-1234-5678, hong@example.com, sk-proj-1D61k7U4O5ZiczrwcKtmoYgj7LZDwTkENN"
    assert [f.type for f in detect.find(text, ("PHONE",))] == ["PHONE"]
    assert [f.type for f in detect.find(text, ("EMAIL", "OPENAI_KEY"))] == ["EMAIL", "OPENAI_KEY"]
    assert {f.type for f in detect.find(text, SECRETS)} == {"OPENAI_KEY"}
    assert {f.type for f in detect.find(text, PII)} == {"PERSON", "PHONE", "EMAIL"}


def test_min_confidence_drops_low_findings() -> None:
    text = "고객센터 1588-1234, 휴대폰 010-1234-5678, 서버 192.168.0.1"
    assert [f.value for f in detect.find(text)] == ["1588-1234", "010-1234-5678", "192.168.0.1"]
    assert [f.value for f in detect.find(text, min_confidence=MEDIUM)] == ["010-1234-5678"]


def test_a_key_assigned_to_a_key_word_is_reported_once_as_the_surer_type() -> None:
    found = detect.find("OPENAI_API_KEY=sk-proj-1D61k7U4O5ZiczrwcKtmoYgj7LZDwTkENN and password=Tr0ub4dor&3")
    assert [(f.type, f.confidence) for f in found] == [("OPENAI_KEY", HIGH), ("SECRET", MEDIUM)]


def test_default_masking_hides_medium_and_high_findings_only() -> None:
    masker = Masker()
    text = "홍길동 고객님(010-1234-5678)의 주민번호 211015-4123451, 고객센터 1588-1234"
    assert masker.mask(text) == "<PERSON_1> 고객님(<PHONE_1>)의 주민번호 <KR_RRN_1>, 고객센터 1588-1234"


@pytest.mark.parametrize("text", [
    "513b01012345678ece9f5", "513b010-1234-5678ece9f5", "T01012345678", "01012345678x", "abc900101-1234568def",
    "k4111111111111111z", "x123-45-6789y", "1588-1234A", "z415-555-2671q", "a8.8.8.8", "x+44 20 7946 0958",
    "ab2001:db8::1",
])
def test_digits_glued_to_ascii_letters_or_digits_are_no_number(text: str) -> None:
    assert detect.find(text, PII) == []


@pytest.mark.parametrize(("text", "value"), [
    ("전화번호010-1234-5678로", "010-1234-5678"), ("번호는01012345678입니다", "01012345678"),
    ("주민번호900101-1234568입니다", "900101-1234568"), ("카드4111111111111111로", "4111111111111111"),
    ("대표번호1588-1234로", "1588-1234"), ("번호+44 20 7946 0958로", "+44 20 7946 0958"),
    ("서버192.168.0.1에서", "192.168.0.1"), ("주소2001:db8::1에서", "2001:db8::1"),
    ("tel_01012345678", "01012345678"), ("host_8.8.8.8", "8.8.8.8"), ("(key 010-1234-5678)", "010-1234-5678"),
])
def test_hangul_and_punctuation_next_to_a_number_are_boundaries(text: str, value: str) -> None:
    assert [f.value for f in detect.find(text, PII)] == [value]


def test_a_cache_key_in_a_masked_error_stays_whole() -> None:
    error = "cache miss in replay mode (key 513b01012345678ece9f5d1c2a…); 고객 010-9876-5432"
    assert Masker().mask(error) == "cache miss in replay mode (key 513b01012345678ece9f5d1c2a…); 고객 <PHONE_1>"


def test_types_of_other_modules_do_not_load_phonenumbers() -> None:
    code = ("import sys; from pytest_promstack.safety.detect import find; "
            "find('010-1234-5678 +44 20 7946 0958 a@b.com sk-x', ('EMAIL', 'OPENAI_KEY', 'KR_RRN')); "
            "assert 'phonenumbers' not in sys.modules and 'stdnum' not in sys.modules; "
            "find('+44 20 7946 0958', ('PHONE',)); assert 'phonenumbers' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("text", [
    "1" * 100_000,
    "1-" * 50_000,
    "1 " * 50_000,
    "a:" * 50_000,
    "@a." * 30_000,
    "가" * 100_000,
    "김가 " * 25_000,
    "서울 강남구 " * 10_000,
    "-----BEGIN PRIVATE KEY-----" * 3_000,
    "x://a:" * 15_000,
    "password=" * 10_000,
    "eyJ" + "a" * 100_000,
    "Aa1+" * 25_000,
], ids=lambda t: repr(t[:12]))
def test_no_pattern_backtracks_on_long_repetitive_text(text: str) -> None:
    # a guard against catastrophic backtracking, not a speed figure (see bench_detectors.py):
    # a linear rule takes milliseconds here, an exponential one would not finish
    started = time.perf_counter()
    detect.find(text)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(("value", "types"), [
    ("kr_rrn, phone", ("KR_RRN", "PHONE")),
    (["KR-RRN", "phone", "kr_rrn"], ("KR_RRN", "PHONE")),
    ("pii", PII),
    ("secrets", SECRETS),
    ("all", TYPES),
    ("email, secrets", ("EMAIL", *SECRETS)),
    ("", ()),
    (None, ()),
])
def test_parse_types_reads_names_groups_and_lists(value: object, types: tuple[str, ...]) -> None:
    assert detect.parse_types(value) == types


def test_parse_types_names_an_unknown_type_and_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown type 'PHONES': use pii, secrets or any of EMAIL, PHONE, .*SECRET$"):
        detect.parse_types("email, phones")
