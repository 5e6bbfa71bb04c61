"""The monitoring dashboard in real headless Chromium: loads with no console error and no
request beyond its own file, every chart draws its lines, legends hide a series, the readout
follows the mouse, and hostile prompt ids and error texts show as text and never run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pytest_promstack.config.settings import AlertsSpec
from pytest_promstack.report import dashboard
from tests.support import calllogs
from tests.support.browser import Page, launch
from tests.unit.test_dashboard import HOSTILE_ERROR, HOSTILE_ID, hostile


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash")
    calllogs.write(folder / "logs", hostile(list(calllogs.generate())))
    data = dashboard.collect([str(folder / "logs")], until=calllogs.START + timedelta(days=3), prices=calllogs.PRICES,
                             alerts=AlertsSpec(max_tokens=400_000, max_cost_usd=5, max_error_rate=2))
    path = folder / "dashboard.html"
    dashboard.write(path, data)
    return path


class Pages:
    """A browser context where Page wants a browser (the context carries the viewport)."""

    def __init__(self, context):
        self.context = context

    def new_page(self, **_):
        return self.context.new_page()


@pytest.fixture
def page(browser, page_file):
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.on("request", lambda r: requests.append(r.url))  # from the first one on
    shown = Page(Pages(context), page_file, ready="#charts svg")
    yield shown, requests
    context.close()


def test_the_dashboard_loads_clean_and_asks_the_network_nothing(page, page_file):
    shown, requests = page
    assert shown.problems() == []
    assert requests == [page_file.resolve().as_uri()]
    p = shown.page
    assert p.locator("svg").count() == 6
    for svg in p.locator("svg").all():  # every chart drew lines across its width
        widths = [line.bounding_box()["width"] for line in svg.locator("polyline").all()]
        assert max(widths) > 400
    assert p.locator("#chart-latency ul.legend li").all_inner_texts() == ["P50", "P95", "P99"]
    assert "over budget" in p.locator("#budget-line").inner_text()


def test_hostile_ids_and_errors_show_as_text_and_never_run(page):
    shown, _ = page
    p = shown.page
    assert p.evaluate("window.__pwned") is None
    assert HOSTILE_ERROR in p.locator("#errors td.err").all_inner_texts()
    assert HOSTILE_ID in p.locator("#expensive td").all_inner_texts()
    assert p.locator("body img, body script:not([id]) ~ script").count() == 0
    assert shown.dialogs == []


def test_a_legend_hides_its_series_and_the_readout_follows_the_mouse(page):
    shown, _ = page
    p = shown.page
    first = p.locator('#chart-cost_model svg g[data-series="0"]')
    assert first.is_visible()
    p.locator('#chart-cost_model ul.legend li[data-series="0"]').click()
    assert not first.is_visible()
    p.locator("#chart-latency svg").hover(position={"x": 600, "y": 100})
    readout = p.locator("#readout").inner_text()
    assert readout.startswith("2025-03-03T2")
    assert "P95 " in readout
    assert shown.problems() == []
