"""``promstack audit verify``: walk the audit chain (the rotated files by number, then the live
file) and name every place where it does not hold, as ``file:line: what``.

- an edited line: its ``hash`` is not the hash of its content; or, when the hash was
  recomputed too, the next line's ``prev`` still holds the old one (the edited line is named);
- a removed line: ``seq`` jumps and the missing numbers are nowhere in the chain;
- reordered lines: ``seq`` jumps and the missing number comes later (named with where);
- a line written twice: a ``seq`` seen before;
- a rotated file removed: its number is missing between two others (or before the first);
- a line that is not whole JSON: a writer killed mid-line leaves one, and the next line links
  to the line before it: then it is a warning (``torn``), the chain is intact; when the chain
  does not run across it, it was damaged or edited, and that is named.

What a chain cannot show: that its newest lines were removed, or the whole log replaced. For
that keep the last hash elsewhere (the success line prints it) and pass it back with
``--head``: verify then checks that the line with that hash is still in the chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audit import chain_files, digest

REQUIRED = {"seq": int, "ts": str, "event": str, "prev": str, "hash": str}


@dataclass
class Entry:
    where: str  # file:line
    line: dict[str, Any] | None  # None: not a whole JSON line


@dataclass
class Report:
    lines: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_hash: str = ""
    hashes: set[str] = field(default_factory=set)

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        state = "chain intact" if self.intact else f"chain BROKEN ({len(self.problems)} problems)"
        head = f"; last hash {self.last_hash[:16]}" if self.last_hash and self.intact else ""
        return f"audit: {self.lines:,} lines in {files}, {state}{head}"


def verify(path: Path, head: str | None = None) -> Report:
    """The chain that ends in ``path``, checked; ``head``: a hash (or a prefix of 12 or more hex
    digits) noted earlier, which must still be in it."""
    report = Report()
    files = chain_files(path)
    report.files = len(files)
    follows_gap = _missing_files(path, files, report)
    entries = [e for _, p in files for e in _entries(p, report)]
    report.lines = sum(e.line is not None for e in entries)
    _walk(entries, report, follows_gap)
    if head and not any(h.startswith(head.lower()) for h in report.hashes):
        report.problems.append(f"no line has the hash {head}: lines after it were removed, or the log was replaced "
                               "(or it was noted from another log)")
    return report


def _missing_files(path: Path, files: list[tuple[int, Path]], report: Report) -> set[str]:
    """Rotated files missing from the numbering, named; returns the files that follow a gap."""
    numbers = [n for n, _ in files if n]
    follows: set[str] = set()
    for i, (n, p) in enumerate(files):
        before = numbers[i - 1] if 0 < i <= len(numbers) else 0
        missing = range(before + 1, n if n else max(numbers, default=0) + 1)
        for m in missing:
            report.problems.append(f"{path.stem}.<day>.{m}{path.suffix}: rotated file {m} of the chain is missing "
                                   f"(before {p.name}); restore it from your archive")
        if missing:
            follows.add(p.name)
    return follows


def _entries(path: Path, report: Report) -> list[Entry]:
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        report.problems.append(f"{path.name}: cannot be read ({exc.strerror})")
        return []
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # the newline that ends the last line
    out = []
    for n, raw in enumerate(rows, 1):
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        out.append(Entry(f"{path.name}:{n}", line if isinstance(line, dict) else None))
    return out


def _walk(entries: list[Entry], report: Report, follows_gap: set[str]) -> None:
    seqs: dict[int, str] = {}  # every seq -> where it first is
    for e in entries:
        if e.line is not None and isinstance(e.line.get("seq"), int):
            seqs.setdefault(e.line["seq"], e.where)
    chain = _Chain(seqs, follows_gap)
    for i, e in enumerate(entries):
        if e.line is None:
            chain.torn.append(e.where)
        else:
            chain.check(e, entries[i - 1] if i else None, report)
    # at the end there is no next line to tell a torn write from a damaged line
    report.warnings += [f"{w}: not a whole line (a writer killed mid-write?); skipped" for w in chain.torn]
    report.last_hash = chain.hash


class _Chain:
    """Where the walk is: the last accepted line's seq, hash and place."""

    def __init__(self, seqs: dict[int, str], follows_gap: set[str]) -> None:
        self.seqs = seqs
        self.follows_gap = follows_gap
        self.seq, self.hash, self.before = 0, "", "the start"
        self.torn: list[str] = []  # lines that are not whole JSON since the last accepted line
        self.explained: set[int] = set()  # seqs already named as out of order
        self.edited = False  # the last accepted line was named as edited

    def check(self, e: Entry, previous: Entry | None, report: Report) -> None:
        line = e.line or {}
        bad = [k for k, kind in REQUIRED.items() if not isinstance(line.get(k), kind) or isinstance(line.get(k), bool)]
        if bad:
            report.problems.append(f"{e.where}: not an audit line ({', '.join(bad)} missing or of the wrong kind)")
            return
        report.hashes.add(line["hash"])
        if digest(line) != line["hash"]:
            report.problems.append(f"{e.where}: edited: its hash does not match its content (seq {line['seq']})")
            self.accept(e, {**line, "seq": self.seq + 1})  # its seq and hash may be what was edited
            self.edited = True
            return
        if not self._in_order(e, line, report):
            return  # named; the walk went on from the right place
        if line["prev"] == self.hash or self.edited:  # after an edited line: named there already
            report.warnings += [f"{w}: a torn line (a writer killed mid-write); the chain runs across it"
                                for w in self.torn]
        elif self.torn:
            report.problems.append(f"{self.torn[-1]}: not a whole line, and the chain does not run across it: the "
                                   "line was damaged or edited")
        elif previous is not None and previous.line is not None:
            report.problems.append(f"{previous.where}: changed after it was written: the next line ({e.where}) holds "
                                   "another hash for it")
        else:
            report.problems.append(f"{e.where}: does not link to {self.before} (its prev is not that line's hash)")
        self.accept(e, line)

    def accept(self, e: Entry, line: dict[str, Any]) -> None:
        self.torn, self.edited = [], False
        self.seq, self.hash, self.before = line["seq"], line["hash"], e.where

    def _in_order(self, e: Entry, line: dict[str, Any], report: Report) -> bool:
        """False when the line is out of order: named (once), and the walk goes on from the right place."""
        seq, expected = line["seq"], self.seq + 1
        if seq == expected:
            return True
        if seq < expected:  # a line named as moved, or one written twice: the walk keeps its place
            if seq not in self.explained:
                report.problems.append(f"{e.where}: seq {seq} again after seq {self.seq} (first at {self.seqs[seq]}): "
                                       "a line was copied or written twice")
            self.torn = []
            return False
        later = [s for s in sorted(self.seqs) if expected <= s < seq and s not in self.explained]
        if later:
            self.explained.update(later)
            report.problems.append(f"{e.where}: seq {seq} comes before seq {later[0]} ({self.seqs[later[0]]}): lines "
                                   "were reordered")
        elif self.torn:
            report.problems.append(f"{self.torn[0]}: not a whole line, and the chain does not run across it: the "
                                   f"line was damaged or edited (seq {expected} is missing)")
        elif not (e.where.endswith(":1") and e.where.rsplit(":", 1)[0] in self.follows_gap):
            gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
            report.problems.append(f"{e.where}: {gap} missing after {self.before}: lines were removed")
        self.accept(e, line)
        return False
