"""The report stage on plain data: what the HTML page ships of conversations and agent
trajectories (bounded, escaped), and the summary's steps lines (only when a case made tool calls
or had turns)."""

from __future__ import annotations

import json

from pytest_promstack.config.modes import CacheMode
from pytest_promstack.report import html
from pytest_promstack.report.summary import cache_lines, run_summary, trajectory_lines
from tests.support import tables
from tests.support.records import (
    PROBE,
    SCRIPT,
    agent_record,
    check,
    conversation_record,
    doc_with,
    plain_record,
    step,
    turn,
)


def summary(records: list[dict]) -> list[str]:
    return run_summary(records, comparison=None, prompt_name=lambda i, v: f"{i}@{v}", arena=None, gate_lines=[],
                       selection=[], notes=[], cache_mode=CacheMode.USE, interrupted=None, warnings=[])


def rows(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in html._table_data(doc)["cases"]}


def test_the_page_ships_turns_in_order_with_their_steps_and_the_first_failing_turn():
    data = html._table_data(doc_with([conversation_record(), agent_record(), plain_record()]))
    chat, agent, plain = (next(r for r in data["cases"] if r["id"].endswith(f"row-{n}[mine]")) for n in (2, 3, 4))
    texts = data["texts"]
    assert [t[0] for t in chat["turns"]] == [1, 2, 3]
    assert [texts[t[2]] for t in chat["turns"]] == ["서울 날씨 알려줘", f"환불 규정은? {PROBE}", "고마워요"]
    assert [t[3] for t in chat["turns"]] == ["서울은 맑고 21도예요.", f"모르겠어요 {SCRIPT}", "천만에요!"]
    assert [t[4] for t in chat["turns"]] == [True, False, True]
    assert chat["turns"][1][6] == [["contains", False, 0.0, "expected 7일"]]
    assert (chat["fturn"], chat["tcount"], chat["calls"], chat["scount"]) == (2, 3, 4, 2)
    assert [(s[0], s[2], texts[s[3]]) for s in chat["steps"]] == [(1, "get_weather", '{"city": "서울"}'),
                                                                   (1, "get_time", '{"tz": "Asia/Seoul"}')]
    assert [texts[s[4]] if s[4] >= 0 else None for s in agent["steps"]] == ['{"status": "배송 중"}', None]
    assert texts[agent["steps"][1][3]] == "not json {"  # arguments that were not JSON, as the model wrote them
    assert "turns" not in agent
    assert "fturn" not in agent
    assert not {"turns", "steps", "calls", "fturn"} & set(plain)  # a one-shot case ships what it did before
    msgs = {texts[t] for _, t in chat["msgs"]}
    assert '→ get_weather({"city": "\\uc11c\\uc6b8"})' in msgs
    assert "null" not in msgs


def test_the_page_escapes_every_text_of_a_conversation():
    page = html.render(doc_with([conversation_record()]))
    data = page.split('id="promstack-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data
    assert ">" not in data
    assert json.loads(data)["cases"][0]["turns"][1][3] == f"모르겠어요 {SCRIPT}"
    assert "환불 규정은?" in data  # Korean as it is, not \\u escapes


def test_a_long_conversation_ships_a_bounded_number_of_turns_and_keeps_the_failing_one():
    record = conversation_record()
    record["turns"] = [turn(i, f"질문 {i}", "x" * (html.MAX_TEXT + 50), [check("contains", i != 180, "r")])
                       for i in range(1, 251)]
    record["steps"] = [step(i, 1, "lookup", {"i": i}, "ok") for i in range(1, 251)]
    chat = rows(doc_with([record]))[record["case_id"]]
    assert len(chat["turns"]) == html.MAX_TURNS
    assert [t[0] for t in chat["turns"]][-2:] == [html.MAX_TURNS - 1, 180]  # the failing turn keeps a place
    assert (chat["fturn"], chat["tcount"], chat["scount"]) == (180, 250, 250)
    assert {s[0] for s in chat["steps"]} == {t[0] for t in chat["turns"]}  # no step of a turn left out
    assert chat["turns"][0][3].endswith("; the results JSON has all]")
    record["turns"], record["steps"] = record["turns"][:2], [step(1, i, "t", {}, None) for i in range(1, 501)]
    assert len(rows(doc_with([record]))[record["case_id"]]["steps"]) == html.MAX_STEPS


def test_the_summary_shows_steps_only_for_the_models_that_called_a_tool_or_had_turns():
    one_shot = [plain_record(), {**plain_record(), "model": "other", "case_id": "x"}]
    assert trajectory_lines(one_shot) == []
    assert not any("steps" in line for line in summary(one_shot))
    lines = summary([conversation_record(), agent_record(), plain_record(),
                     {**plain_record(), "model": "other", "case_id": "x"}])
    steps = [line for line in lines if line.startswith("promstack: steps")]
    assert steps == [
        "promstack: steps mine: 3 cases, 8 model calls, 4 tool calls (get_time 1, get_weather 1, lookup_order 1, "
        "track 1); 1 conversation of 3 turns, 1 failed",
    ]  # "other" made one-shot calls only


def test_a_tool_name_with_control_characters_is_escaped_in_the_summary():
    record = {**agent_record(), "steps": [step(1, 1, "x\x1b[2J\nPASSED", {}, None)] * 7}
    record["steps"] += [step(1, 1, f"t{i}", {}, None) for i in range(5)]
    (line,) = trajectory_lines([record])
    assert "\x1b" not in line
    assert "\n" not in line
    assert "(x\\x1b[2J\\nPASSED 7, t0 1, t1 1, t2 1, t3 1, …)" in line


def test_korean_suite_and_prompt_names_keep_the_summary_table_aligned_on_a_terminal():
    korean = {**plain_record(), "suite": "요약 테스트", "prompt_id": "고객지원", "model": "모델-가"}
    lines = summary([korean, {**plain_record(), "case_id": "x"}])
    table = lines[lines.index(next(line for line in lines if line.startswith("suite"))):][:4]
    assert any("고객지원" in line for line in table)
    assert tables.misaligned(table) == []


def test_cache_off_says_how_many_answers_were_not_stored_in_words_that_agree():
    called = {"called": True, "cached": False, "error": None}
    assert cache_lines([called], CacheMode.OFF) == [
        "promstack: cache off: the answer of this run was not stored; the next run calls the models again "
        "(--promstack-cache use keeps them)"]
    assert cache_lines([called, called], CacheMode.OFF)[0].startswith(
        "promstack: cache off: the 2 answers of this run were not stored; ")
    assert cache_lines([{**called, "cached": True}], CacheMode.OFF) == []
