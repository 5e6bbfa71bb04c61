"""Masking (docs/safety.md#masking): PII and secrets leave no trace in what a run writes (results
JSON, HTML, JUnit, terminal, call log, cassettes) while the checks score the real answer; one
value keeps one placeholder throughout its case; a setting turns it off per artefact;
``mask_inputs`` sends requests masked, keys them masked, and gives the caller the values back."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from tests.support.project import KEY_ENV

EMAIL, OTHER = "kim.minsu@example.co.kr", "lee@example.com"
KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
# the loopback model echoes the question: the answer holds the question's PII too
ROWS = ("input,__expected\n"
        f'"메일 {EMAIL} 로 보내 주세요, 다시 {EMAIL}",contains:zz\n'
        f'"키는 {KEY} 이고 {OTHER}",no-pii\n'
        "안녕하세요,contains:안녕\n")


def artefacts(project) -> dict[str, str]:
    root = project.path
    return {"json": (root / "out/r.json").read_text(encoding="utf-8"),
            "html": (root / "out/r.html").read_text(encoding="utf-8"),
            "junit": (root / "out/junit.xml").read_text(encoding="utf-8"),
            "calls": (root / ".promstack/calls.jsonl").read_text(encoding="utf-8"),
            "audit": (root / ".promstack/audit.jsonl").read_text(encoding="utf-8")}


RUN = ("--promstack-json=out/r.json", "--promstack-report=out/r.html", "--junitxml=out/junit.xml")


def test_pii_and_secrets_are_masked_in_every_artefact_while_checks_read_the_real_answer(project):
    project.write({"prompt_tests/a.csv": ROWS}, audit={"enabled": True})
    result = project.run(*RUN)
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=2)  # contains:zz and no-pii (the echo holds an address) fail
    texts = {**artefacts(project), "terminal": result.stdout.str()}
    for name, text in texts.items():
        for secret in (EMAIL, OTHER, KEY, KEY[:20]):
            assert secret not in text, f"{secret!r} written to the {name}"
    doc = json.loads(texts["json"])
    first = next(c for c in doc["cases"] if "메일" in c["vars"]["input"])
    # one value, one placeholder, in the vars, the messages and the output of its case
    assert first["vars"]["input"] == "메일 <EMAIL_1> 로 보내 주세요, 다시 <EMAIL_1>"
    assert first["messages"][-1]["content"] == first["vars"]["input"]
    assert first["output"] == "echo: " + first["vars"]["input"]
    second = next(c for c in doc["cases"] if "키는" in c["vars"]["input"])
    assert second["vars"]["input"] == "키는 <OPENAI_KEY_1> 이고 <EMAIL_1>"  # numbered per case
    assert second["assertions"][0]["reason"].startswith("no-pii: 1 personal data found: EMAIL (email, high)")
    assert "\\u003cEMAIL_1\\u003e" in texts["html"]  # in the report's embedded data
    # the failure text pytest prints and JUnit stores carries the case's own placeholders
    assert "echo: 메일 <EMAIL_1> 로 보내 주세요" in texts["terminal"]
    assert "&lt;EMAIL_1&gt;" in texts["junit"]


def test_a_value_is_masked_on_the_terminal_and_in_junit_as_in_the_results_json(project):
    # the failure names the assertion before the output: priming by the record keeps the numbers
    project.write({"prompt_tests/a.csv": f'input,__expected\n"{OTHER} 그리고 {EMAIL}","contains:{EMAIL}"\n'})
    result = project.run(*RUN)
    result.assert_outcomes(passed=1)
    project.write({"prompt_tests/a.csv": f'input,__expected\n"{OTHER} 그리고 {EMAIL}",contains:zz\n'})
    result = project.run(*RUN)
    doc = json.loads((project.path / "out/r.json").read_text(encoding="utf-8"))
    assert doc["cases"][0]["output"] == "echo: <EMAIL_1> 그리고 <EMAIL_2>"
    assert "echo: <EMAIL_1> 그리고 <EMAIL_2>" in result.stdout.str()


def test_masking_turns_off_per_artefact_and_altogether(project):
    project.write({"prompt_tests/a.csv": ROWS}, masking={"results": False, "audit": False}, audit={"enabled": True})
    project.run(*RUN)
    texts = artefacts(project)
    assert EMAIL in texts["json"]
    assert EMAIL in texts["audit"]
    assert EMAIL not in texts["html"]
    assert EMAIL not in texts["junit"]
    project.write({"prompt_tests/a.csv": ROWS}, masking={"enabled": False}, audit={"enabled": True})
    result = project.run(*RUN)
    texts = artefacts(project)
    assert all(EMAIL in texts[name] for name in ("json", "html", "junit"))
    assert EMAIL in result.stdout.str()


def test_masking_types_and_hashing_are_configurable(project):
    project.write({"prompt_tests/a.csv": ROWS}, masking={"types": ["secrets"]})
    project.run(*RUN)
    doc = json.loads((project.path / "out/r.json").read_text(encoding="utf-8"))
    second = next(c for c in doc["cases"] if "키는" in c["vars"]["input"])
    assert second["vars"]["input"] == f"키는 <OPENAI_KEY_1> 이고 {OTHER}"
    project.write({"prompt_tests/a.csv": ROWS}, masking={"hashed": True})
    project.run(*RUN)
    doc = json.loads((project.path / "out/r.json").read_text(encoding="utf-8"))
    inputs = sorted(c["vars"]["input"] for c in doc["cases"])
    digest = {v: hashlib.sha256(v.encode()).hexdigest()[:10] for v in (EMAIL, OTHER)}  # no salt in the environment
    assert inputs[0] == f"메일 <EMAIL_{digest[EMAIL]}> 로 보내 주세요, 다시 <EMAIL_{digest[EMAIL]}>"
    assert inputs[2].endswith(f"이고 <EMAIL_{digest[OTHER]}>")


def test_a_bad_masking_setting_is_one_line_naming_the_key(project):
    project.write({"prompt_tests/a.csv": ROWS}, masking={"types": ["kr_rrm"], "junit": False})
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "masking.types: unknown type 'KR_RRM'" in err
    assert "masking.junit" in err


def test_cassettes_are_recorded_masked_and_replay_with_the_same_verdicts(project):
    project.write({"prompt_tests/a.csv": ROWS})
    project.run("--promstack-record")
    cassette = (project.path / "cassettes/regression.jsonl").read_text(encoding="utf-8")
    assert EMAIL not in cassette
    assert KEY not in cassette
    assert "<EMAIL_1>" in cassette
    calls = project.server.count
    shutil.rmtree(project.path / ".promstack/cache")  # a fresh clone: the cassette is all there is
    result = project.run("--promstack-cache=replay", "-p", "no:randomly")
    assert project.server.count == calls  # no call made
    result.assert_outcomes(passed=1, failed=2)  # no-pii still fails on the masked answer it replays
    result.stdout.fnmatch_lines(["*no-pii: 1 personal data found: EMAIL (masked: <EMAIL_1>)*"])


def test_mask_inputs_sends_placeholders_keys_on_them_and_restores_the_answer(project):
    rows = ("input,__expected\n"
            f'"주소 {EMAIL}","contains:echo: 주소 {EMAIL}"\n'
            f'"주소 {OTHER}","contains:echo: 주소 {OTHER}"\n')
    project.write({"prompt_tests/a.csv": rows}, mask_inputs=True)
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=2)  # the checks read the answer with its values back
    sent = [m["content"] for r in project.server.requests for m in r["messages"]]
    assert sent == ["주소 <EMAIL_1>"]  # both cases ask the same masked question: one call, one key
    assert project.run("-p", "no:randomly").parseoutcomes()["passed"] == 2
    assert project.server.count == 1  # the rerun is served from the cache, keyed on the masked text


def test_a_suite_may_mask_its_inputs_alone(project):
    project.write({"prompt_tests/a.csv": f'input\n"주소 {EMAIL}"\n', "other/b.csv": f'input\n"주소 {EMAIL}"\n'},
                  suites={"masked": {"tests": ["prompt_tests/*"], "mask_inputs": True},
                          "plain": {"tests": ["other/*"]}})
    project.run()
    sent = sorted(m["content"] for r in project.server.requests for m in r["messages"])
    assert sent == ["주소 <EMAIL_1>", f"주소 {EMAIL}"]


def test_the_sdk_masks_inputs_when_asked_and_gives_the_values_back(project, monkeypatch):
    from pytest_promstack import Client

    project.write({"prompts/support.yaml": "id: support\ntemplate: '문의: {{ input }}'\n",
                   "prompt_tests/a.csv": "input\nx\n"})
    monkeypatch.setenv(KEY_ENV, "test-key")
    with Client(root=project.path) as client:
        reply = client.complete("support", input=f"{EMAIL} 로 연락 주세요", mask_inputs=True)
        plain = client.complete("support", input=f"{EMAIL} 로 연락")
    assert reply.text == f"echo: 문의: {EMAIL} 로 연락 주세요"
    assert reply.messages[-1]["content"] == "문의: <EMAIL_1> 로 연락 주세요"  # what was sent
    assert plain.messages[-1]["content"] == f"문의: {EMAIL} 로 연락"
    sent = [r["messages"][-1]["content"] for r in project.server.requests]
    assert sent == ["문의: <EMAIL_1> 로 연락 주세요", f"문의: {EMAIL} 로 연락"]


def test_korean_resident_numbers_and_phones_are_masked_a_post_2020_number_too(project):
    # 900101-1234568 has a valid check digit; 211015-3123457 fails it, as numbers issued since
    # October 2020 may: both are masked (high and medium), the phone forms too
    rows = ("input,__expected\n"
            '"주민번호 900101-1234568, 새 번호 211015-3123457, 연락처 010-1234-5678, 02)123-4567",no-pii:KR_RRN\n')
    project.write({"prompt_tests/a.csv": rows})
    result = project.run("--promstack-json=out/r.json")
    result.assert_outcomes(failed=1)  # the echo holds both numbers
    doc = json.loads((project.path / "out/r.json").read_text(encoding="utf-8"))
    (case,) = doc["cases"]
    assert case["vars"]["input"] == "주민번호 <KR_RRN_1>, 새 번호 <KR_RRN_2>, 연락처 <PHONE_1>, <PHONE_2>"
    assert case["assertions"][0]["reason"] == ("no-pii: 2 personal data found: KR_RRN (kr_rrn, high) at 11; "
                                               "KR_RRN (kr_rrn, medium) at 32")
    for value in ("900101-1234568", "211015-3123457", "010-1234-5678"):
        assert value not in result.stdout.str()


def test_a_value_cut_short_in_a_failure_text_leaves_no_fragment_anywhere(project):
    # contains:'s reason shows the output cut at 80 characters, in the middle of the number
    project.write({"prompt_tests/a.csv": f'input,__expected\n"{"가" * 60} 900101-1234568 {KEY} 끝",contains:없는말\n'},
                  audit={"enabled": True})
    result = project.run(*RUN)
    result.assert_outcomes(failed=1)
    texts = {**artefacts(project), "terminal": result.stdout.str()}
    for name, text in texts.items():
        for fragment in ("900101-12", "1234568", KEY[:12]):
            assert fragment not in text, f"{fragment!r} written to the {name}"
    result.stdout.fnmatch_lines(["*✗ contains: '없는말' in 'echo: 가가*가 <KR_RRN_1>…'"])
