"""Structured output, negotiated once per endpoint (model + api_base) for the run.

A judge asks for its verdict as ``response_format: {type: json_schema}``. Some
OpenAI-compatible servers refuse that: llama-cpp-python's server answers HTTP 500 (it takes
``text`` or ``json_object``, the latter with an optional ``schema``). A refused judge call
steps down the ladder at once, without the retry loop's waits:

    json_schema -> json_object with the schema (llama-cpp-python's form) -> json_object -> none

and the endpoint's step is remembered for the run, so later judge calls start where the
last refusal left them. The verdict is parsed strictly whatever the step. The cache key is
not changed by any of this: it holds what the judge asked for (see judging.request).

A refusal is an HTTP 4xx/5xx whose message names the format (``response_format``,
``json_schema``, ``unsupported``, ...): remembered at once. A bare 400/422 is the weaker
sign: it steps down this call, and is remembered only when a lower step then succeeds (a
400 for a too-long prompt must not turn structured output off for the run).
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace

from ..model.types import Request, Response

STEPS = ("json_schema", "json_object with the schema", "json_object", "no response_format")
NAMES_FORMAT = re.compile(r"response_format|json_schema|json_object|structured output|unsupported|not supported",
                          re.I)
# a 5xx that says so is not a passing fault: retrying it only repeats the answer
NOT_TRANSIENT = re.compile(r"unsupported|not supported|unrecognized (request )?(argument|param)|response_format|"
                           r"json_schema|validation error|missing credentials", re.I)

Endpoint = tuple[str, str | None]


def negotiable(req: Request) -> bool:
    """Judge calls (judges and arena) that ask for a JSON schema."""
    fmt = req.params.get("response_format")
    return req.meta.get("kind") == "judge" and isinstance(fmt, dict) and fmt.get("type") == "json_schema"


def endpoint(req: Request) -> Endpoint:
    return req.litellm_model, req.api_base


def at_step(req: Request, step: int) -> Request:
    """The request as sent at ``step`` of the ladder; the cache key stays the first step's."""
    if step == 0:
        return req
    params = dict(req.params)
    fmt = params.pop("response_format")
    if step == 1:
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        params["response_format"] = {"type": "json_object", "schema": schema}
    elif step == 2:
        params["response_format"] = {"type": "json_object"}
    return replace(req, params=params)


def refusal(resp: Response) -> str | None:
    """'strong' when the error names the format, 'weak' for a bare 400/422, else None."""
    status = resp.status_code
    if resp.error is None or status is None or status < 400 or status in (401, 403, 404, 408, 429):
        return None
    if NAMES_FORMAT.search(resp.error):
        return "strong"
    return "weak" if status in (400, 422) else None


def excerpt(error: str, width: int = 150) -> str:
    """The part of a (long, often wrapped) error message around what names the format."""
    text = " ".join(error.split())
    found = NAMES_FORMAT.search(text)
    start = max(0, found.start() - 50) if found else 0
    cut = text[start:start + width]
    return ("…" if start else "") + cut + ("…" if start + width < len(text) else "")


def not_transient(resp: Response) -> bool:
    return (resp.status_code or 0) >= 500 and bool(NOT_TRANSIENT.search(resp.error or ""))


class Formats:
    """Per endpoint: the ladder step its judge calls start at, whether the first call has
    settled it, and the one warning line about a step down."""

    def __init__(self) -> None:
        self._steps: dict[Endpoint, int] = {}
        self._settled: set[Endpoint] = set()
        self._notes: dict[Endpoint, str] = {}
        self._lock = threading.Lock()

    def step(self, req: Request) -> int:
        with self._lock:
            return self._steps.get(endpoint(req), 0)

    def settled(self, req: Request) -> bool:
        with self._lock:
            return endpoint(req) in self._settled

    def settle(self, req: Request) -> None:
        with self._lock:
            self._settled.add(endpoint(req))

    def learn(self, req: Request, step: int, refused: Response) -> None:
        """Remember that this endpoint's judge calls start at ``step`` (never going back up)."""
        ep = endpoint(req)
        with self._lock:
            if step <= self._steps.get(ep, 0):
                return
            self._steps[ep] = step
            where = f"{req.model}" + (f" at {req.api_base}" if req.api_base else "")
            self._notes[ep] = (f"judge model {where} refused response_format json_schema (HTTP "
                               f"{refused.status_code}: {excerpt(refused.error or '')}); its judge calls in this run "
                               f"asked for {STEPS[step]} instead, and verdicts were still parsed strictly")

    @property
    def notes(self) -> list[str]:
        with self._lock:
            return [self._notes[ep] for ep in sorted(self._notes, key=str)]



class Ladder:
    """One judge call's way down the ladder, starting at its endpoint's remembered step."""

    def __init__(self, formats: Formats, req: Request) -> None:
        self.formats = formats
        self.req = req
        self.step = formats.step(req)
        self.first: Response | None = None  # the first refusal, kept for the warning and the error
        self.strong = False

    @property
    def request(self) -> Request:
        return at_step(self.req, self.step)

    def refused(self, resp: Response) -> bool:
        """True when ``resp`` refuses the format: the call goes one step down, at once."""
        kind = refusal(resp)
        if kind is None or self.step >= len(STEPS) - 1:
            return False
        self.first = self.first or resp
        self.step = max(self.step + 1, self.formats.step(self.req))  # another call may be lower already
        if kind == "strong":
            self.strong = True
            self.formats.learn(self.req, self.step, resp)
        return True

    def finish(self, resp: Response) -> Response:
        """Remember a step that worked; when bare 400s led nowhere, the first error says the most."""
        if self.first is None:
            return resp
        if resp.error is None:
            self.formats.learn(self.req, self.step, self.first)
            return resp
        return resp if self.strong else replace(self.first, attempts=resp.attempts)
