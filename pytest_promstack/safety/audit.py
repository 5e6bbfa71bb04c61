"""The audit trail: an append-only JSONL log where each line carries the hash of the line
before it, so an edited, removed or reordered line shows (``audit_verify.py`` walks it).

One line per event: ``case`` (a test file's case), ``call`` (an SDK call), ``label`` and
``deploy`` (a label moved), ``rollback`` (a prompt file restored). Every line holds the same
keys (``null`` where an event has no such thing), then the event's own, then ``prev`` and
``hash``::

    {"seq": 7, "ts": "2026-11-30T09:12:03.412Z", "event": "call", "user": "minji", "ci": null,
     "run_id": "…", "prompt_id": "support", "prompt_version": "3f2a9c1b0d4e", "model": "mini",
     "question": "<EMAIL_1> 주소로 환불 안내 부탁해요", "answer": "…", "input_tokens": 41,
     "output_tokens": 88, "cost_usd": 0.00012, "guards": [], "prev": "…", "hash": "…"}

``hash`` is the sha256 of the line without ``hash`` as canonical JSON (``canonical``: keys
sorted, no spaces, UTF-8). Texts are masked with one ``Masker`` per line (the same value, the
same placeholder within the line), or replaced by their digest (``texts: hashed``), or left
out (``texts: none``); free text of an event (a deploy's reason, an error) is masked always.

A line is written whole by one ``os.write`` on an ``O_APPEND`` descriptor, under a file lock
(``audit.jsonl.lock``): the writer reads the last line's ``seq`` and ``hash`` under the lock,
so threads, xdist workers and several application processes keep one chain. A line torn by a
killed writer is left where it is: the next line starts on a line of its own and links to the
last whole line. Rotation renames the full file to ``audit.<day>.<n>.jsonl`` (``n`` counts the
rotated files of the chain, 1, 2, …) and the new file's first line links to the old one's last.
A rename that fails (an immutable folder) loses no line: the line goes on to the live file,
linked to its last as ever, and the rotation is tried again a minute later."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..util.rotation import RetriesRotation, Retry, Rotation, due, next_number, rotated_files, rotated_name

EVENTS = ("case", "call", "label", "deploy", "rollback")
TEXTS = ("masked", "hashed", "none")
FIELDS = ("seq", "ts", "event", "user", "ci", "run_id", "prompt_id", "prompt_version", "model", "question", "answer",
          "input_tokens", "output_tokens", "cost_usd", "guards")
# the CI system of a run and the variable holding its run id, first match wins
CI_RUNS = (("github", "GITHUB_RUN_ID"), ("gitlab", "CI_PIPELINE_ID"), ("buildkite", "BUILDKITE_BUILD_ID"),
           ("circleci", "CIRCLE_WORKFLOW_ID"), ("azure", "BUILD_BUILDID"), ("jenkins", "BUILD_TAG"),
           ("bitbucket", "BITBUCKET_BUILD_NUMBER"), ("travis", "TRAVIS_BUILD_ID"))
LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Tail:
    """The last whole line of the chain: what the next line links to."""

    seq: int
    hash: str
    day: str  # its UTC date, YYYY-MM-DD


def canonical(line: dict[str, Any]) -> bytes:
    """The bytes a line's hash is taken over: its JSON without ``hash``, keys sorted, no spaces."""
    body = {k: v for k, v in line.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def digest(line: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(line)).hexdigest()


def ci_run() -> str | None:
    """``github:1234``: the CI system and run id of this process, when in CI."""
    for system, var in CI_RUNS:
        if os.environ.get(var):
            return f"{system}:{os.environ[var]}"
    return None


def chain_files(path: Path) -> list[tuple[int, Path]]:
    """The rotated files of the chain by their number, then the live file (number 0 sorts last)."""
    found = [(n, p) for _, n, p in rotated_files(path, gz=False)]
    return found + ([(0, path)] if path.exists() else [])


class AuditLog(RetriesRotation):
    """Appends lines to the chain at ``path``. A failed write is kept in ``failed`` (the run
    or the call goes on, and says so), as the call log does; a failed rotation in ``unrotated``
    (``unreported_rotation()``: once), its lines appended to the live file."""

    def __init__(self, path: Path, *, run_id: str, user: str | None, texts: str = "masked",
                 rotate: Rotation | None = None, clock: Callable[[], datetime] | None = None,
                 masking: Any = None) -> None:
        if texts not in TEXTS:
            raise ValueError(f"texts must be one of {', '.join(TEXTS)}")
        self.path = path
        self.run_id = run_id
        self.user = user or _login()
        self.texts = texts
        self.rotate = rotate or Rotation()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.ci = ci_run()
        self.failed: str | None = None
        # the run's masking settings (config/settings.Masking): their types and style; None: every type
        self.masking = masking
        self._lock = threading.Lock()
        self._retry = Retry()

    def write(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """Append one line; ``fields``: any of ``FIELDS`` after ``event`` (``question`` and
        ``answer`` as plain text, masked here), and the event's own keys. Returns the line."""
        written = self.write_many([(event, fields)])
        return written[0] if written else None

    def write_many(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append the lines of several events at once, one after the other in the chain."""
        from filelock import FileLock, Timeout

        if not events:
            return []
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _ignore(self.path)
                with FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT):
                    return self._append(events)
            except Timeout:
                self.failed = f"{self.path}: another writer held its lock for {LOCK_TIMEOUT:g} s"
            except OSError as exc:
                self.failed = f"{self.path}: {exc.strerror or exc}"
        return []

    def _append(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        tail = last_line(self.path) or _newest_rotated_tail(self.path)
        written = []
        for event, fields in events:
            now = self.clock()
            line = self.line(event, fields, tail, now)
            data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            self._rotate_if_due(tail, len(data), now)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read: a torn tail
            try:
                if _torn(fd):  # a killed writer left half a line: ours starts on a line of its own
                    data = b"\n" + data
                os.write(fd, data)  # one write per line: O_APPEND keeps it whole
            finally:
                os.close(fd)
            tail = Tail(line["seq"], line["hash"], line["ts"][:10])
            written.append(line)
        return written

    def line(self, event: str, fields: dict[str, Any], tail: Tail | None, now: datetime) -> dict[str, Any]:
        """The line of one event after ``tail``, hashed."""
        from .mask import Masker

        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}; one of {', '.join(EVENTS)}")
        # one per line: the same value, the same placeholder in its question and answer
        masker = Masker() if self.masking is None else Masker.of(self.masking) if self.masking.on("audit") \
            else Masker(())
        line: dict[str, Any] = {"seq": (tail.seq if tail else 0) + 1,
                                "ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                                "event": event, "user": self.user, "ci": self.ci, "run_id": self.run_id}
        for key in FIELDS[6:]:
            value = fields.get(key)
            if key in ("question", "answer"):
                if self.texts == "none":
                    continue
                value = self._text(value, masker)
            elif key == "guards":
                value = masker.mask_json(_plain(list(value or [])))
            line[key] = _plain(value)
        line.update({k: masker.mask_json(_plain(v)) for k, v in fields.items() if k not in (*FIELDS, "prev", "hash")})
        line["prev"] = tail.hash if tail else ""
        line["hash"] = digest(line)
        return line

    def _text(self, value: Any, masker: Any) -> str | None:
        if value is None:
            return None
        text = _clean(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
        if self.texts == "hashed":
            return text_digest(text)
        return masker.mask(text)

    def _rotate_if_due(self, tail: Tail | None, size_needed: int, now: datetime) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if self._retry.allowed(now) and due(self.rotate, size, size_needed, tail.day if tail is not None else None,
                                            now.date().isoformat()):
            day = tail.day if tail is not None else now.date().isoformat()
            try:
                os.replace(self.path, rotated_name(self.path, day, next_number(self.path)))  # numbered over the chain
            except OSError as exc:  # the line goes on to the live file, after its last: the chain holds
                self._retry.refused(self.path, exc, now)


def text_digest(text: str) -> str:
    """``sha256:<hex>`` of a text (``hmac-sha256:`` keyed with PROMSTACK_MASK_SALT when set, as
    masking's hashed placeholders are: a short text could otherwise be found by trying them)."""
    salt = os.environ.get("PROMSTACK_MASK_SALT", "").encode("utf-8")
    if salt:
        return "hmac-sha256:" + hmac.new(salt, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def question_of(messages: Sequence[Any]) -> str | None:
    """What was asked: the last user message's text (its text parts, for a list of parts)."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None
    content = users[-1].get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return None if content is None else str(content)


def last_line(path: Path) -> Tail | None:
    """The last whole audit line of ``path`` (a torn or damaged tail skipped), read from its end."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            window = 1 << 16
            while True:
                start = max(0, size - window)
                f.seek(start)
                lines = f.read(size - start).split(b"\n")
                for raw in reversed(lines[1:] if start else lines):
                    tail = _tail_of(raw)
                    if tail is not None:
                        return tail
                if start == 0:
                    return None
                window *= 4
    except OSError:
        return None


def _tail_of(raw: bytes) -> Tail | None:
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    if (isinstance(line, dict) and isinstance(line.get("seq"), int) and isinstance(line.get("hash"), str)
            and isinstance(line.get("ts"), str)):
        return Tail(line["seq"], line["hash"], line["ts"][:10])
    return None


def _newest_rotated_tail(path: Path) -> Tail | None:
    """After a rotation the live file is new: the chain goes on from the newest rotated file."""
    rotated = [p for n, p in chain_files(path) if n]
    return last_line(rotated[-1]) if rotated else None


def _login() -> str | None:
    """The login name, when the environment names no user (a container without USER)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _torn(fd: int) -> bool:
    size = os.lseek(fd, 0, os.SEEK_END)
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _plain(value: Any) -> Any:
    """JSON's own kinds: a number that is not finite becomes null, tuples lists, texts valid UTF-8."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _clean(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate cannot be written as UTF-8


def _ignore(path: Path) -> None:
    """In ``.promstack/``, the log stays out of git (as the call log does): a CI job uploads it,
    an application ships it; a committed log would conflict at every merge."""
    if path.parent.name != ".promstack":
        return
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    wanted = [f"{path.stem}*{path.suffix}", f"{path.name}.lock"]
    missing = [w for w in wanted if w not in lines]
    if missing:
        with ignore.open("a", encoding="utf-8") as f:
            f.write("".join(f"{w}\n" for w in missing))


def open_log(settings: Any, run_id: str, user: str | None) -> AuditLog | None:
    """The run's audit log as ``audit:`` configures it; None when it is off."""
    spec = getattr(settings, "audit", None)
    if spec is None or not spec.enabled:
        return None
    rotate = spec.rotate
    rotation = Rotation(rotate.max_bytes, rotate.daily) if rotate is not None else None
    return AuditLog(settings.root / spec.path, run_id=run_id, user=user, texts=spec.texts, rotate=rotation,
                    masking=getattr(settings, "masking", None))


def case_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A test file's case record (results/records.py) as the fields of its ``case`` line: its
    last question (a conversation's last turn) and answer, figures, and which case it was."""
    def known(key: str) -> Any:
        value = record.get(key)
        return None if value in ("-", "") else value

    return {"prompt_id": known("prompt_id"), "prompt_version": known("prompt_version"),
            "model": known("litellm_model") or known("model"), "question": question_of(record.get("messages") or []),
            "answer": record.get("output"), "input_tokens": record.get("input_tokens"),
            "output_tokens": record.get("output_tokens"), "cost_usd": record.get("cost_usd"),
            "suite": known("suite"), "case_id": known("case_id"), "cached": bool(record.get("cached")),
            "error": record.get("error")}


def reply_fields(reply: Any, model: str | None = None) -> dict[str, Any]:
    """An SDK reply (pipeline/runner.Reply) as the fields of its ``call`` line; ``model``: the
    model's provider name when the reply names a configured alias."""
    return {"prompt_id": reply.prompt_id, "prompt_version": reply.prompt_version, "model": model or reply.model,
            "question": question_of(reply.messages) or reply.question, "answer": reply.output if not reply.error
            else None, "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
            "cost_usd": reply.cost_usd, "cached": reply.cached, "error": reply.error}
