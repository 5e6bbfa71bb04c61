"""Frozen, JSON-serialisable dataclasses of the data flow:
Case -> Request -> Response -> Score/Result."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any


def is_count(value: Any) -> bool:
    """A token count as stored: a whole number, not negative (``None``, unknown, is fine)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


# the token details of an answer beyond its input/output tokens that change its price
# (Response.usage; execute/pricing.py reads them, execute/stored.py checks them on read):
# counts of tokens, the provider's words for how it served the call, and the cost it stated
USAGE_COUNTS = ("cache_read", "cache_write", "cache_write_1h", "reasoning", "audio_in", "audio_out")
USAGE_WORDS = ("service_tier", "inference_geo", "speed")
USAGE_KEYS = (*USAGE_COUNTS, *USAGE_WORDS, "cost")


# request params that do not change the answer: left out of the cache key (plan/requests.py)
# and out of the comparison of a cassette entry with the request that looks it up
NOT_IN_KEY = frozenset({"timeout", "api_key", "num_retries", "max_retries", "stream", "metadata", "drop_params",
                        "input_cost_per_token", "output_cost_per_token"})


@dataclass(frozen=True, slots=True)
class AssertionSpec:
    """One check: ``type`` (``not-`` prefix negates), its ``value``, threshold and weight."""

    type: str
    value: Any = None
    threshold: float | None = None
    weight: float = 1.0
    origin: str = ""  # where it was written, e.g. "__expected2" or "suite assert[0]"
    metric: str | None = None  # promptfoo's metric: a name the reports group scores under
    transform: tuple[str, ...] = ()  # python expressions (or file://x.py:fn) applied to the output first, in order


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn of a conversation: its own variables (over the case's; ``input`` is the usual
    one), the assertions on the reply to it, and where it was written."""

    vars: dict[str, Any]
    asserts: tuple[AssertionSpec, ...] = ()
    row: int = 0  # its CSV line or record number (a turns: list's item is its case's row)
    label: str = ""  # how messages name it: "turn 2" (and the file:row of a CSV row of its own)
    store_as: str | None = None  # promptfoo's options.storeOutputAs: later turns see the reply as this variable


@dataclass(frozen=True, slots=True)
class Agent:
    """How a case runs the tools its model calls: ``results`` canned by tool name (and arguments),
    or ``impl`` a python function ``module:function`` called as ``fn(name, arguments)``; at most
    ``max_steps`` model calls per turn."""

    results: tuple[dict[str, Any], ...] = ()  # each {"name", "arguments" (a subset to match; None: any), "result"}
    impl: str | None = None
    max_steps: int = 10


@dataclass(frozen=True, slots=True)
class Simulation:
    """A simulated user: a model plays the user (its ``instructions``, ``persona``, ``goal``) against
    the prompt for at most ``max_turns`` turns, or until it says its goal is reached."""

    instructions: str
    persona: str = ""
    goal: str = ""
    model: str | None = None  # a models: name or litellm name; None: the default judge's model
    max_turns: int = 6


@dataclass(frozen=True, slots=True)
class Case:
    """One test case: the variables of one row plus its expectations."""

    file: str  # path relative to rootdir, posix
    row: int  # 1-based data row (CSV: line of the row; JSON/YAML: index + 1)
    vars: dict[str, Any]
    asserts: tuple[AssertionSpec, ...] = ()
    description: str | None = None
    case_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    marks: tuple[str, ...] = ()
    threshold: float | None = None
    prefix: str = ""
    suffix: str = ""
    provider: str | None = None  # a promptfoo test's own provider: the model it runs on
    scoring: str | None = None  # promptfoo's assertScoringFunction: file:///abs/x.py:fn, deciding the case
    provider_output: str | None = None
    human_score: float | None = None  # a human label on the judges' scale, for calibration
    transform: str | None = None  # promptfoo's options.transform of the test: replaces the suite's default one
    providers: tuple[str, ...] = ()  # promptfoo's test-level providers filter: the models it runs on
    # a conversation: its user turns in order (the case's own asserts then judge the whole transcript)
    turns: tuple[Turn, ...] = ()
    agent: Agent | None = None  # the tools it runs when the model calls them (an agent loop)
    simulation: Simulation | None = None  # a model plays the user (scenario:, max_turns:)
    conversation: str | None = None  # __conversation / metadata.conversationId: rows of one conversation
    store_as: str | None = None  # promptfoo's options.storeOutputAs (a row that becomes a turn keeps it)
    error: str | None = None  # a malformed row: the item fails with this line

    @property
    def where(self) -> str:
        return f"{self.file}:{self.row}"

    @property
    def name(self) -> str:
        return self.case_id or self.description or f"row-{self.row}"


@dataclass(frozen=True, slots=True)
class Request:
    """A rendered model call. ``key`` is the cache key."""

    model: str  # alias shown in ids and reports
    litellm_model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    key: str
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = 120.0
    meta: dict[str, Any] = field(default_factory=dict)  # suite, case_id, prompt: for the call log
    # what is asked: a chat completion, or (for the similar and moderation checks) the embedding
    # or the moderation of the one user message's text
    call: str = "chat"  # "chat" | "embedding" | "moderation" | "tool" (an agent's tool run by its python impl)
    # mask_inputs: the (placeholder, value) pairs masked out of the messages before they leave, put
    # back into the answer for its caller (Engine.result); never written, not in the key
    unmask: tuple[tuple[str, str], ...] = ()

    def restored(self, resp: Response) -> Response:
        """``resp`` with this request's masked values back in its text and tool calls."""
        if not self.unmask or resp.error is not None:
            return resp

        def back(value: Any) -> Any:
            if isinstance(value, str):
                for placeholder, original in self.unmask:
                    value = value.replace(placeholder, original)
                return value
            if isinstance(value, dict):
                return {k: back(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return type(value)(back(v) for v in value)
            return value

        return replace(resp, text=back(resp.text), tool_calls=back(resp.tool_calls),
                       function_call=back(resp.function_call))


@dataclass(frozen=True, slots=True)
class Response:
    """What a model call produced; ``error`` set means the call failed."""

    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    cached: bool = False
    finish_reason: str | None = None
    error: str | None = None
    status_code: int | None = None
    attempts: int = 1
    retry_after: float | None = None  # what the provider asked us to wait
    retry: bool | None = None  # False: retrying cannot help (no key, no choices, deadline)
    miss: bool = False  # replay mode had no recorded answer
    logprobs: tuple[float, ...] | None = None  # each output token's log probability, when asked for (perplexity)
    vector: tuple[float, ...] | None = None  # an embedding call's vector (its text is "")
    # the model's tool calls, in OpenAI's shape: {"id", "type": "function", "function": {"name", "arguments"}}
    # with the arguments as JSON text; None when it called none
    tool_calls: tuple[dict[str, Any], ...] | None = None
    function_call: dict[str, Any] | None = None  # OpenAI's legacy single call: {"name", "arguments"}
    # a python: target that is an agent: the tools it ran itself, in order, each {"step" (the model call
    # that asked it, 1-based), "name", "arguments", "result"}, and its model calls as it reports them
    trajectory: tuple[dict[str, Any], ...] | None = None
    model_calls: int | None = None
    # what of the call changes its price beyond input/output tokens (USAGE_KEYS: cached, cache-written,
    # reasoning and audio tokens, the service tier served, a cost the provider stated), only the
    # non-zero ones; None for most answers (pricing.usage_details makes it from a provider's usage)
    usage: dict[str, Any] | None = None

    @property
    def output(self) -> str:
        """The answer as the checks and reports read it: its text, or, when the model called
        tools, the output as promptfoo stringifies it: the calls as JSON (a list of tool calls,
        or the function call), and with text beside them ``{"content", "tool_calls"}``."""
        text = self.text or ""
        calls: Any = list(self.tool_calls) if self.tool_calls else self.function_call
        if not calls:
            return text
        key = "tool_calls" if self.tool_calls else "function_call"
        shown = {"content": text, key: calls} if text else calls
        return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))

    @property
    def calls(self) -> list[tuple[str, Any]]:
        """The tool calls as ``(name, arguments)``, the arguments parsed from their JSON text
        (left as text when they are not JSON); the legacy function call too."""
        raw = [c.get("function") or {} for c in self.tool_calls or ()] + ([self.function_call] if self.function_call
                                                                            else [])
        out = []
        for fn in raw:
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except (TypeError, ValueError):
                args = fn.get("arguments")
            out.append((str(fn.get("name")), args))
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("retry_after")
        data.pop("retry")
        data.pop("miss")
        # most answers have none of these: their rows stay as they were
        for key in ("tool_calls", "function_call", "vector", "trajectory", "model_calls", "usage"):
            if data[key] is None:
                data.pop(key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Response:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name in ("logprobs", "vector", "tool_calls", "trajectory"):
            if known.get(name) is not None:
                known[name] = tuple(known[name])
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Score:
    """The outcome of one assertion."""

    type: str
    passed: bool
    score: float
    reason: str
    weight: float = 1.0


def tool_call(req: Request) -> tuple[str, Any]:
    """An agent's tool request's (name, arguments): its one message holds them as JSON."""
    body = json.loads(str(req.messages[0]["content"]))
    return body["name"], body["arguments"]


def result_text(value: Any) -> str:
    """A tool's result as the model is sent it: text as it is, anything else as JSON (raises
    TypeError or ValueError for what JSON cannot hold: a set, bytes, NaN)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)
