"""The files a run writes at its end: the results JSON (``--promstack-json``), the HTML report
(``--promstack-report``) and, in record mode, the cassettes. Each file is written whole (to a
temporary file, then renamed), so an interrupted run leaves the finished cases' reports and
never a truncated file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.modes import CacheMode
from ..config.settings import Settings
from ..util.paths import rel


def write_all(settings: Settings, document: Callable[[], dict[str, Any]],
              cassette_entries: dict[str, list[dict[str, Any]]], case_ids: set[str]) -> list[str]:
    """Write what the run produced; returns the lines that announce each file. ``document``
    is built only when a report asks for it; ``case_ids``: every case the suites have (a
    cassette keeps the entries of cases this run did not select)."""
    lines: list[str] = []
    run = settings.run
    if run.json or run.report:
        from ..results.document import write

        doc = document()
        shown = None
        if settings.masking.on("results") or settings.masking.on("html"):
            from ..results.masking import masked

            shown = masked(doc, settings.masking)
        for target in run.json:
            write(Path(target), shown if settings.masking.on("results") else doc)
            lines.append(f"promstack: wrote {target}")
        if run.report:
            from . import html

            size = html.write(Path(run.report), shown if settings.masking.on("html") else doc)
            lines.append(f"promstack: wrote {run.report} ({html.human_size(size)}, {len(doc['cases'])} cases)")
    if settings.cache_mode == CacheMode.RECORD:
        from ..execute.cassettes import write as write_cassette

        for suite, entries in sorted(cassette_entries.items()):
            path = write_cassette(settings.cassette_dir, suite, entries, case_ids)
            lines.append(f"promstack: wrote {rel(path, settings.root)} ({len(entries)} recorded)")
    return lines
