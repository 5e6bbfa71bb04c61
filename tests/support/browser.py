"""Headless Chromium for the HTML report tests: Debian's `chromium` driven by Playwright
(no browser download: Playwright is given the system browser's path)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (.ci/run installs it: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must run these tests, not skip them
    pytest.skip(message)


class Page:
    """One page with its console messages, uncaught errors and dialogs recorded."""

    def __init__(self, browser: Any, path: Path, ready: str = "#case-rows tr") -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector(ready)

    def problems(self) -> list[str]:
        return [f"console {t}: {x}" for t, x in self.console if t in ("error", "warning")] + self.errors + [
            f"dialog: {d}" for d in self.dialogs]

    def rows(self) -> list[str]:
        return self.page.locator("#case-rows tr.case td.id").all_inner_texts()


def launch() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
