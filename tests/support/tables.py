"""Column alignment of a tabulate "simple" table as a terminal shows it: Hangul and other wide
characters take two columns (wcwidth), so a table is aligned when every row's cells start at the
display columns of the dashed rule's groups."""

from __future__ import annotations

from wcwidth import wcswidth


def rule_gaps(rule: str) -> list[int]:
    """The display columns of the blanks between the dashed groups of a table's rule line."""
    return [i for i, ch in enumerate(rule) if ch == " "]


def misaligned(lines: list[str]) -> list[str]:
    """The rows of a table (header, rule, rows) whose cells do not start where the rule's do."""
    rule = lines[1]
    gaps = rule_gaps(rule)
    bad = []
    for line in [lines[0], *lines[2:]]:
        columns = _display(line)
        if any(g < len(columns) and columns[g] != " " for g in gaps) or wcswidth(line.rstrip()) > len(rule):
            bad.append(line)
    return bad


def _display(line: str) -> list[str]:
    """One entry per terminal column: a wide character fills two."""
    cells: list[str] = []
    for ch in line:
        cells += [ch] * max(wcswidth(ch), 1)
    return cells
