"""What ``promstack mcp`` runs, and what it answers about a run: ``promstack test``,
``evaluate`` and ``deploy``, each in a child process of this Python with the project's folder
as its working directory, exactly as a terminal would run them (the same engine, cache,
cassettes, call log and gates). A child per run, because the server lives as long as the
editor: the project's own code (``python:`` targets, conftest.py) is imported afresh by every
run, and a run that is cancelled is stopped like Ctrl-C (SIGTERM), keeping what it finished.

The child's progress comes back through ``PROMSTACK_PROGRESS_FILE`` (plugin/progress.py).
This module imports neither ``mcp`` nor pytest; ``anyio`` is what the server runs on."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..model.errors import PromstackError, TemplateError

CHILD = [sys.executable, "-m", "pytest_promstack.cli"]
RESULTS = Path(".promstack", "mcp")  # the last run's results JSON and report, under the project
MAX_FAILURES = 20  # listed in a run's answer; the rest are counted (the results JSON has them all)
OUTPUT_CHARS = 600  # of a failing case's output, in the answer
STOP_GRACE = 10.0  # seconds a cancelled run gets to finish its session before it is killed
# what a `promstack test` exit status means (pytest's, then promstack's own)
STATUS = {0: "passed", 1: "some cases failed", 2: "interrupted", 3: "internal error", 4: "usage error",
          5: "no case collected", 6: "the cases passed but a gate failed",
          7: "the cases passed but a regression against the baseline was found"}

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
RUNNING: set[Any] = set()  # the child processes of this server (stop_all on SIGTERM)


@dataclass
class Finished:
    status: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 4) -> str:
        """Why a run did not happen, on one line: pytest and promstack say it on stderr (a usage
        error, a bad config); else the end of the output."""
        said = self.stderr.strip() or self.stdout.strip()
        return " ".join(line.strip() for line in said.splitlines()[-lines:] if line.strip())


async def run_child(args: list[str], cwd: Path, progress: Progress | None = None,
                    stdin: bytes | None = None, python: bool = False) -> Finished:
    """``promstack ARGS`` (``python``: ``python ARGS``) in a child process; its progress lines
    go to ``progress``."""
    with tempfile.TemporaryDirectory(prefix="promstack-mcp-") as tmp:
        feed, out_path, err_path = Path(tmp, "progress.jsonl"), Path(tmp, "stdout"), Path(tmp, "stderr")
        feed.touch()
        env = {**os.environ, "PROMSTACK_PROGRESS_FILE": str(feed), "PYTHONIOENCODING": "utf-8"}
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            command = [sys.executable, *args] if python else [*CHILD, *args]
            process = await anyio.open_process(command, cwd=cwd, env=env, stdout=out, stderr=err,
                                               stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
            RUNNING.add(process)
            try:
                if stdin is not None and process.stdin is not None:
                    await process.stdin.send(stdin)
                    await process.stdin.aclose()
                relay, status = Relay(progress), None
                while status is None:
                    with anyio.move_on_after(0.2):
                        status = await process.wait()
                    await relay.read(feed)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
                raise
            finally:
                RUNNING.discard(process)
        return Finished(int(status), out_path.read_text("utf-8", "replace"), err_path.read_text("utf-8", "replace"))


async def stop_all() -> None:
    """Stop every run in progress (the server is stopping), each as a cancelled one."""
    async with anyio.create_task_group() as tg:
        for process in list(RUNNING):
            tg.start_soon(_stop, process)


async def _stop(process: Any) -> None:
    """SIGTERM (the run ends like Ctrl-C: what it finished is kept), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    with anyio.move_on_after(STOP_GRACE):
        await process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


class Relay:
    """The child's progress lines as MCP progress, which must only grow: model calls done plus
    cases scored, of calls submitted plus cases collected (the cases are scored after the calls,
    or as each one's answers arrive, plugin/progress.py)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.offset = 0
        self.cases: int | None = None
        self.calls = 0  # submitted so far
        self.calls_done = 0
        self.cases_done = 0
        self.sent = -1.0  # the last progress value sent (0 first: the run is under way)

    async def read(self, feed: Path) -> None:
        """Send the lines written since the last read (whole lines only); nothing to read when
        the caller asked for no progress."""
        if self.progress is None:
            return
        with open(feed, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for raw in chunk[:end].splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                await self._send(self.progress, line)

    async def _send(self, progress: Progress, line: dict[str, Any]) -> None:
        if "calls" in line:
            self.calls, self.calls_done = int(line["of"]), int(line["calls"])
            message = (f"model calls {line['calls']}/{line['of']} ({line.get('hits')} from the cache, "
                       f"{line.get('errors')} errors)")
        elif "done" in line:
            self.cases_done = int(line["done"])
            message = f"case {line['done']}/{self.cases or '?'} {line.get('outcome')}: {line.get('case')}"
        else:
            if "total" in line:
                self.cases = int(line["total"])
            return
        value = float(self.calls_done + self.cases_done)
        if value > self.sent:  # MCP's progress must grow with every notification
            self.sent = value
            await progress(value, self._total(), message)

    def _total(self) -> float | None:
        return float(self.calls + self.cases) if self.cases is not None else None


# -- what a run answers --------------------------------------------------------------------------

SUMMARY_KEYS = ("suite", "model", "prompt_id", "prompt_version", "cases", "passed", "failed", "error", "xfailed",
                "xpassed", "skipped", "pass_pct", "quality", "p50_ms", "p95_ms", "input_tokens", "output_tokens",
                "cost_usd", "eval_cost_usd", "cache_hits", "calls")
COUNTED = ("cases", "passed", "failed", "error", "xfailed", "xpassed", "skipped", "input_tokens", "output_tokens",
           "cache_hits", "calls")


def summarize(doc: dict[str, Any], status: int | None = None) -> dict[str, Any]:
    """A results document as an agent reads it: totals, the summary's rows, the failing cases
    (their failed assertions and output, cut short), the gates."""
    rows = [{k: _rounded(row.get(k)) for k in SUMMARY_KEYS} for row in doc.get("summary") or []]
    totals: dict[str, Any] = {k: sum(int(r.get(k) or 0) for r in rows) for k in COUNTED}
    costs = [r["cost_usd"] for r in rows if r.get("cost_usd") is not None]
    totals["cost_usd"] = round(sum(costs), 6) if costs else None
    failing = [c for c in doc.get("cases") or [] if c.get("outcome") in ("failed", "error")]
    run = doc.get("run") or {}
    answer: dict[str, Any] = {
        "run_id": run.get("id"), "finished": run.get("finished"), "interrupted": bool(run.get("interrupted")),
        "totals": totals, "quality": _rounded(doc.get("quality")), "summary": rows,
        "failures": [_failure(c) for c in failing[:MAX_FAILURES]],
        "gates": [{k: _rounded(g.get(k)) for k in ("key", "scope", "value", "limit", "passed")}
                  for g in doc.get("gates") or []],
    }
    if len(failing) > MAX_FAILURES:
        answer["more_failures"] = len(failing) - MAX_FAILURES
    if doc.get("baseline"):
        answer["regressions"] = len((doc["baseline"] or {}).get("regressions") or [])
    if status is not None:
        answer = {"status": status, "verdict": STATUS.get(status, f"exit status {status}"), **answer}
    return answer


def _failure(case: dict[str, Any]) -> dict[str, Any]:
    output = case.get("output")
    if isinstance(output, str) and len(output) > OUTPUT_CHARS:
        output = output[:OUTPUT_CHARS] + f"… ({len(output)} characters)"
    return {"case": case.get("case_id"), "suite": case.get("suite"), "model": case.get("model"),
            "outcome": case.get("outcome"), "error": in_tool_terms(case.get("error") or case.get("setup_error") or "")
            or None,
            "failed": [a.get("reason") for a in case.get("assertions") or [] if not a.get("passed")],
            "output": output}


# the CLI's fixes, as this server's tools take them
TOOL_TERMS = (("record it with --promstack-record, or run with --promstack-cache use",
               'run with cache "record" (or "use")'),
              ("or --force --reason WHY", "or force with a reason (when the server runs with --allow-force)"),
              ("pass --version N", "pass version"))


def in_tool_terms(text: str) -> str:
    for cli, tool in TOOL_TERMS:
        text = text.replace(cli, tool)
    return text


def _rounded(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def read_results(path: Path) -> dict[str, Any]:
    """A results JSON, or one line saying why not."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromstackError(f"{path}: no results yet; run a suite (the run_suite tool) or pass the path of a "
                             "results JSON (--promstack-json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PromstackError(f"{path}: not a results JSON ({exc}); pass a file --promstack-json or run_suite "
                             "wrote") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise PromstackError(f"{path}: not a promstack results JSON (no cases); pass a file --promstack-json wrote")
    return doc


# -- one call with ad-hoc variables, in the child ---------------------------------------------------


def adhoc_child() -> None:
    """Read ``{"root", "config", "prompt", "version", "label", "variables", "model", "asserts",
    "cache"}`` on stdin; call the model once through the SDK's engine and score the reply; write
    the answer as JSON on stdout (anything else the call prints goes to stderr)."""
    real = sys.stdout
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    with contextlib.redirect_stdout(sys.stderr):
        try:
            answer = _adhoc(request)
        except PromstackError as exc:
            answer = {"problem": str(exc)}
    real.write(json.dumps(answer, ensure_ascii=False))
    real.flush()


def _adhoc(request: dict[str, Any]) -> dict[str, Any]:
    from ..config.policy import runs_code
    from ..model.errors import CallFailed, CheckFailed
    from ..pipeline.runner import Runner
    from ..sdk import Client

    with Client(root=request["root"], config=request.get("config"), cache=request.get("cache")) as client:
        asserts = request.get("asserts") or []
        problem = runs_code(Runner(client.settings).parse(*asserts), "an agent's assertion may not run code")
        if problem is not None:  # as parsed: a file://check.py:fn is a python assertion too
            raise PromstackError(problem)
        version = client.get_prompt(request["prompt"], version=request.get("version"), label=request.get("label"))
        try:
            reply = client.complete(version, model=request.get("model"), **(request.get("variables") or {}))
        except TemplateError as exc:
            if exc.variable is None:
                raise
            name = json.dumps(exc.variable, ensure_ascii=False)
            raise PromstackError(f"prompt {version.id!r} v{version.number} needs the variable {exc.variable!r}; "
                                 f"give it in variables: {{{name}: ...}}") from None
        answer: dict[str, Any] = {
            "prompt": version.id, "number": version.number, "hash": version.hash, "model": reply.model,
            "messages": list(reply.messages), "output": reply.output,
            "error": in_tool_terms(reply.error) if reply.error else None,
            "tool_calls": list(reply.tool_calls or []) or None, "latency_ms": _rounded(reply.latency_ms),
            "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "cost_usd": reply.cost_usd,
            "cached": reply.cached}
        if asserts:
            try:
                scores = client.check(reply, *asserts)
                answer.update(passed=True, assertions=[{"type": s.type, "passed": s.passed, "score": s.score,
                                                        "reason": s.reason} for s in scores])
            except (CheckFailed, CallFailed) as exc:
                answer.update(passed=False, failure=in_tool_terms(str(exc)))
        return answer
