"""The HTML report in real headless Chromium: loads with no console error, filters and
Korean search work, injected markup shows as text and never runs, 10,000 cases stay usable."""

from __future__ import annotations

import copy
import json

import pytest
from playwright.sync_api import expect

from pytest_promstack.report import html
from tests.support.browser import Page, launch

PROBES = {
    "img": "<img src=x onerror=alert(1)>",
    "script": "</script><script>window.__pwned = 1; alert(2)</script>",
    "svg": "<svg onload=alert(3)>",
}


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def report(project):
    """A run whose outputs and inputs carry XSS probes, one failing case and Korean cases."""
    project.server.replies = {name: probe for name, probe in PROBES.items()}
    project.server.replies["환불"] = "환불은 7일 이내에 가능합니다."
    rows = ["img,contains:img", "script,contains:script", "svg,contains:<svg", "환불,contains:환불",
            '"<b onmouseover=alert(4)>bold</b>",contains:bold', "배송,contains:없는말"]
    project.write({"prompt_tests/a.csv": "input,__expected\n" + "\n".join(rows) + "\n"})
    result = project.run("--promstack-report=report.html", "--promstack-json=r.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["promstack: wrote report.html (* KiB, 6 cases)"])
    return project.path / "report.html"


def test_report_loads_clean_and_injected_markup_is_text(browser, report):
    page = Page(browser, report)
    p = page.page
    assert page.problems() == []
    assert len(page.rows()) == 6
    for row in ("row-2", "row-3", "row-4", "row-6"):  # expand the probes' cases
        p.locator("#case-rows tr.case", has_text=row).click()
    outputs = p.locator("pre.output").all_inner_texts()
    assert [PROBES["img"], PROBES["script"], PROBES["svg"]] == outputs[:3]
    assert outputs[3] == "echo: <b onmouseover=alert(4)>bold</b>"
    assert p.evaluate("window.__pwned") is None
    assert p.locator("#case-rows img, #case-rows script, #case-rows svg, #case-rows b").count() == 0
    assert page.dialogs == []
    assert page.problems() == []
    csp = p.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp


def test_filters_and_korean_search(browser, report):
    page = Page(browser, report)
    p = page.page
    p.click('#filters button[data-filter="failed"]')
    assert page.rows() == ["prompt_tests/a.csv::row-7[mine]"]
    assert p.locator("#shown").inner_text().startswith("showing 1–1 of 1 matching cases (6 in the run)")
    p.click('#filters button[data-filter="all"]')
    p.fill("#search", "환불")
    expect(p.locator("#case-rows tr.case")).to_have_count(1)  # polls: the search waits for typing to pause
    assert page.rows() == ["prompt_tests/a.csv::row-5[mine]"]
    p.fill("#search", "7일 이내")  # found in the output, not the id
    expect(p.locator("#shown")).to_contain_text("of 1 matching")
    p.fill("#search", "")
    expect(p.locator("#case-rows tr.case")).to_have_count(6)
    assert page.problems() == []


def test_a_10000_case_report_pages_and_searches(browser, report, tmp_path):
    doc = json.loads((report.parent / "r.json").read_text(encoding="utf-8"))
    template = doc["cases"]
    cases = []
    for i in range(10_000):
        c = copy.deepcopy(template[i % len(template)])
        c["case_id"] = f"prompt_tests/big.csv::case-{i}[mine]"
        c["output"] = f"답변 {i}: " + "가나다라 " * 40
        cases.append(c)
    doc["cases"] = cases
    big = tmp_path / "big.html"
    size = html.write(big, doc)
    assert size < 20 * 1024 * 1024, html.human_size(size)
    page = Page(browser, big)
    p = page.page
    assert len(page.rows()) == 100  # one page at a time
    assert p.locator("#page").inner_text() == "page 1 of 100"
    p.click("#next")
    assert page.rows()[0] == "prompt_tests/big.csv::case-100[mine]"
    p.fill("#search", "답변 9999:")
    expect(p.locator("#case-rows tr.case")).to_have_count(1)
    assert page.rows() == ["prompt_tests/big.csv::case-9999[mine]"]
    assert page.problems() == []


def test_the_matrix_shows_each_case_across_prompts_filters_and_diffs_two_cells(browser, project):
    """promptfoo's view: a row per case, a column per prompt version x model; failures and
    differences filters; two ticked cells show a word diff of their outputs."""
    project.server.replies = {"짧게: 환불": "환불은 7일 안에 됩니다", "길게: 환불": "환불은 구매 후 7일 안에 됩니다",
                              "짧게: 배송": "배송은 3일", "길게: 배송": "배송은 3일"}
    project.write({"prompt_tests/a.csv": "input,__expected\n환불,contains:구매\n배송,contains:3일\n"},
                  suites={"s": {"tests": ["prompt_tests/*"], "prompts": [
                      {"id": "terse", "template": "짧게: {{ input }}"}, {"id": "long", "template": "길게: {{ input }}"}]}})
    project.run("--promstack-report=report.html").assert_outcomes(passed=3, failed=1)
    page = Page(browser, project.path / "report.html")
    p = page.page
    heads = p.locator("#matrix-head th").all_inner_texts()
    assert heads[0] == "case"
    names = [h.split("@")[0] for h in heads[1:]]
    assert sorted(names) == ["long", "terse"]
    assert all(h.endswith(" · mine") for h in heads[1:])
    terse, long = names.index("terse"), names.index("long")
    assert p.locator("#matrix-rows tr").count() == 2
    assert p.locator("#mfilters button").all_inner_texts() == ["all (2)", "failures (1)", "differences (1)"]
    p.click('#mfilters button[data-filter="failures"]')
    assert p.locator("#matrix-rows tr").count() == 1
    row = p.locator("#matrix-rows tr").first
    assert row.locator("td.id").inner_text().startswith("row-2")
    assert row.locator("td.cell").nth(terse).locator(".pill").first.inner_text() == "failed"
    assert "✗ contains 0.00" in row.locator("td.cell").nth(terse).inner_text()
    row.locator("td.cell input").nth(terse).check()
    expect(p.locator("#mdiff")).to_be_hidden()
    p.locator("#matrix-rows tr").first.locator("td.cell input").nth(long).check()
    expect(p.locator("#mdiff")).to_be_visible()
    assert p.locator("#mdiff span.add").all_inner_texts() == ["구매", " ", "후", " "]
    assert p.locator("#mdiff span.del").count() == 0
    assert p.locator("#mdiff pre").inner_text() == "환불은 구매 후 7일 안에 됩니다"
    assert page.problems() == []


def test_a_conversation_shows_its_turns_in_order_with_their_tool_calls_and_names_the_failing_turn(browser, tmp_path):
    from tests.support.records import PROBE, SCRIPT, agent_record, conversation_record, doc_with, plain_record

    path = tmp_path / "chat.html"
    html.write(path, doc_with([conversation_record(), agent_record(), plain_record()]))
    page = Page(browser, path)
    p = page.page
    chat = p.locator("#case-rows tr.case", has_text="chat.yaml::row-2")
    assert chat.locator(".pill").all_inner_texts() == ["failed", "turn 2"]  # named before it is opened
    chat.click()
    turns = p.locator(".chat .turn")
    assert turns.locator(".who .name").all_inner_texts() == ["turn 1", "turn 2", "turn 3"]
    assert p.locator(".chat .turn.failed").get_attribute("data-turn") == "2"
    assert p.locator(".chat .turn.failed .who .pill").inner_text() == "failed"
    assert p.locator(".chat .turn .who .pill").count() == 1
    assert p.locator(".chat .bubble.user .text").all_inner_texts() == ["서울 날씨 알려줘", f"환불 규정은? {PROBE}", "고마워요"]
    assert p.locator(".chat .bubble.assistant .text").all_inner_texts() == [
        "서울은 맑고 21도예요.", f"모르겠어요 {SCRIPT}", "천만에요!"]
    first = turns.nth(0)  # the tool calls sit in the turn that made them, between the question and the reply
    assert first.locator("ol.steps .tool").all_inner_texts() == ["get_weather", "get_time"]
    assert first.locator("ol.steps pre.args").all_inner_texts() == ['{"city": "서울"}', '{"tz": "Asia/Seoul"}']
    assert first.locator("ol.steps pre.result").all_inner_texts() == ['→ {"temp": 21, "sky": "맑음"}', f"→ 10:00 {PROBE}"]
    assert turns.nth(1).locator("ol.steps").count() == 0
    assert turns.nth(1).locator("ul.asserts").inner_text() == "✗ contains (score 0.00): expected 7일"
    assert turns.nth(0).locator("ul.asserts .pass").count() == 1
    assert "failed at turn 2" in p.locator(".detail .kv").inner_text()
    assert "4 model calls · 2 tool calls" in p.locator(".detail .kv").inner_text()
    sent = p.locator("details.sent pre").all_text_contents()  # the transcript sent last, folded
    assert sent[1] == '[assistant] → get_weather({"city": "\\uc11c\\uc6b8"})'
    chat.click()

    p.locator("#case-rows tr.case", has_text="chat.yaml::row-3").click()  # a one-shot agent: its numbered steps
    assert p.locator(".detail h4").all_inner_texts()[3] == "tool calls (2)"
    assert p.locator(".detail ol.steps li .tool").all_inner_texts() == ["lookup_order", "track"]
    assert p.locator(".detail ol.steps pre.args").all_inner_texts() == ['{"id": 42}', "not json {"]
    assert p.locator(".detail ol.steps pre.result").all_inner_texts() == ['→ {"status": "배송 중"}', "(no tool ran)"]
    assert p.locator(".chat").count() == 0

    p.fill("#search", "천만에요")  # the search reaches a conversation's turns
    expect(p.locator("#case-rows tr.case")).to_have_count(1)
    assert p.locator("#case-rows img, #case-rows script").count() == 0
    assert p.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert page.problems() == []
