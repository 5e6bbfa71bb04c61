"""Conversations and agent loops: a case whose requests depend on the answers before them.

A chain's first request is planned with the case (``Planned.requests``, one per repeat); each
later one is built here from the steps so far, so it is an ordinary request with an ordinary
key: a rerun asks for the same requests in the same order and the cache answers every one.

* A conversation (``Case.turns``) renders the prompt once per turn with the turn's variables
  and the earlier turns (``turns``: ``[{input, output}]``, and promptfoo's ``_conversation``).
  The first turn sends the prompt as rendered; a later one sends the history (every message so
  far, the replies included) and the rendered prompt's closing user message(s). A prompt that
  writes the history itself (it names ``_conversation``) is sent as rendered every turn.
* An agent (``Case.agent``) runs the tools the model calls (canned results, or its python
  ``impl`` as a ``tool`` request through the engine, so cached too), appends the assistant's
  calls and the tools' results, and calls the model again, up to ``max_steps`` calls a turn.

Nothing here calls anything: ``advance`` says what to ask next; pipeline/cases.py asks it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model.types import Agent, AssertionSpec, Request, Response, result_text, tool_call
from .requests import build as build_request
from .requests import cache_key

if TYPE_CHECKING:
    from ..config.settings import Settings
    from .planned import Planned
    from .prompts import Prompt

HISTORY_VAR = "_conversation"  # promptfoo's: a prompt naming it writes the history itself
CANNED = "canned"  # a tool request answered from the case's tool_results (pipeline/chains.py), never sent
USER_KIND = "simulated-user"  # a request's meta kind: the model that plays the user
STOP = "###STOP###"  # what the simulated user writes when its goal is reached
SIMULATOR = ("You are role-playing a user who talks to an assistant (a chatbot). Stay in character as the user; "
             "never answer as the assistant.\nYour instructions: {instructions}{persona}{goal}\nWrite only your next "
             "message to the assistant, in the language of your instructions. When your goal is reached, or the "
             f"assistant cannot help you further, write only {STOP}")
OPENING = "(The assistant is waiting for you. Write your first message.)"


@dataclass(frozen=True)
class ChainPlan:
    """What a chained case needs to build its later requests."""

    prompt: Prompt
    variables: dict[str, Any]  # the suite's and the case's
    params: dict[str, Any]  # the prompt's params as its first request sent them (tools read and rendered)
    turn_asserts: tuple[tuple[AssertionSpec, ...], ...]  # each turn's own, then the suite's (rendered when scored)
    conversation: bool  # turns were written (else one turn: an agent's run of a one-shot case)


@dataclass(frozen=True)
class Step:
    """One request of a chain and its answer: a model call, or a tool's run (``request.call == "tool"``)."""

    turn: int  # 0-based
    request: Request
    response: Response

    @property
    def is_tool(self) -> bool:
        return self.request.call == "tool"

    @property
    def is_user(self) -> bool:
        """The simulated user's message (a model playing the user)."""
        return self.request.meta.get("kind") == USER_KIND

    @property
    def is_model(self) -> bool:
        """A call of the model under test."""
        return not self.is_tool and not self.is_user


class ChainProblem(Exception):
    """A later turn cannot be built (its template, a tool's result): the case errors with this line."""


def owns_history(prompt: Prompt) -> bool:
    return any(HISTORY_VAR in str(m.get("content", "")) for m in prompt.messages)


def turns_of(plan: Planned) -> int:
    simulation = plan.case.simulation
    return len(plan.case.turns) or (simulation.max_turns if simulation is not None else 1)


def turn_vars(plan: Planned, turn: int, earlier: Sequence[tuple[str, str]], said: str | None = None
              ) -> dict[str, Any]:
    """The variables turn ``turn`` renders with: the case's, the turn's own, the earlier turns
    (``turns``, ``_conversation``) and the replies stored under a name (``storeOutputAs``); a
    simulated user's message (``said``) is its ``input``."""
    chain = plan.chain
    assert chain is not None
    out = dict(chain.variables)
    turns = plan.case.turns
    for i, (_, output) in enumerate(earlier):
        if i < len(turns) and turns[i].store_as:
            out[turns[i].store_as] = output
    out["turns"] = [{"input": i, "output": o} for i, o in earlier]
    out[HISTORY_VAR] = [{"input": i, "output": o, "prompt": i} for i, o in earlier]
    if turns:  # a turn's own values may name the earlier turns: {{ turns[0].output }}
        out.update({k: _rendered(v, out, f"{_turn_label(plan, turn)} {k}") for k, v in turns[turn].vars.items()})
    if said is not None:
        out["input"] = said
    return out


def _rendered(value: Any, variables: dict[str, Any], origin: str) -> Any:
    from .values import ValueProblem, _render

    try:
        return _render(value, variables, origin)
    except ValueProblem as exc:
        raise ChainProblem(str(exc)) from None


def first_messages(plan: Planned, prompt: Prompt) -> list[dict[str, Any]]:
    """The first turn's messages (raises ``ChainProblem``, naming the turn in a conversation)."""
    from ..model.errors import TemplateError

    try:
        return prompt.render(turn_vars(plan, 0, []), plan.case.prefix, plan.case.suffix)
    except TemplateError as exc:
        raise ChainProblem(f"{_turn_label(plan, 0)}: {exc}" if plan.case.turns else str(exc)) from None


def closing_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered prompt's closing run of user messages: what a later turn adds to the history."""
    start = len(messages)
    while start > 0 and messages[start - 1].get("role") == "user":
        start -= 1
    return messages[start:] or messages[-1:]


def user_text(messages: Sequence[dict[str, Any]]) -> str:
    """What a turn said: its closing user messages' text."""
    return "\n".join(_content(m) for m in closing_user(list(messages)))


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # parts: their text
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def assistant_message(resp: Response) -> dict[str, Any]:
    """The reply as the next request's history holds it (its tool calls too)."""
    msg: dict[str, Any] = {"role": "assistant", "content": resp.text if resp.text else None}
    if resp.tool_calls:
        msg["tool_calls"] = [dict(c) for c in resp.tool_calls]
    elif resp.function_call:
        msg["function_call"] = dict(resp.function_call)
    if msg["content"] is None and len(msg) == 2:
        msg["content"] = ""
    return msg


def model_steps(steps: Sequence[Step], turn: int) -> list[Step]:
    return [s for s in steps if s.turn == turn and s.is_model]


def advance(settings: Settings, plan: Planned, repeat: int, steps: Sequence[Step]) -> list[Request]:
    """The requests a chain asks next, given its ``steps`` so far (each answered); [] when it
    has ended: its last call failed, its last turn got a reply that calls no tool it runs (or
    used its ``max_steps``), or its simulated user said its goal was reached. Raises
    ``ChainProblem``."""
    if not steps:
        return [plan.requests[repeat]]
    last = steps[-1]
    if last.is_tool:
        return [_after_tools(settings, plan, repeat, steps)]
    resp = last.response
    if resp.error is not None or resp.miss:
        return []
    if last.is_user:
        said = (resp.text or "").strip()
        if not said or STOP in said:
            return []
        return [_next_turn(settings, plan, repeat, steps, last.turn, said)]
    agent = plan.case.agent
    if agent is not None and resp.calls and len(model_steps(steps, last.turn)) < agent.max_steps:
        return _tool_requests(plan, agent, last)
    if last.turn + 1 >= turns_of(plan):
        return []
    if plan.case.simulation is not None:
        return [simulated_user(settings, plan, repeat, steps, last.turn + 1)]
    return [_next_turn(settings, plan, repeat, steps, last.turn + 1)]


def simulated_user(settings: Settings, plan: Planned, repeat: int, steps: Sequence[Step], turn: int) -> Request:
    """The model that plays the user is asked for turn ``turn``'s message: its instructions, then
    the conversation so far from its side (its own messages as the assistant's, the replies as
    the user's)."""
    from .requests import build

    sim = plan.case.simulation
    assert sim is not None
    system = SIMULATOR.format(instructions=sim.instructions,
                              persona=f"\nYour persona: {sim.persona}" if sim.persona else "",
                              goal=f"\nYour goal: {sim.goal}" if sim.goal else "")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": OPENING}]
    for said, step in replies(plan, steps):
        messages += [{"role": "assistant", "content": said}, {"role": "user", "content": step.response.output}]
    meta = {**plan.meta, "repeat": repeat, "turn": turn + 1, "step": 0, "kind": USER_KIND}
    return build(settings, simulator_model(settings, plan), messages, meta, repeat=repeat)


def simulator_model(settings: Settings, plan: Planned) -> str:
    """The model that plays the user: the scenario's, else the default judge's ("" when neither)."""
    sim = plan.case.simulation
    if sim is not None and sim.model:
        return sim.model
    judge = settings.judges.get(settings.default_judge or "")
    return judge.model if judge is not None else (settings.default_judge or "")


def replies(plan: Planned, steps: Sequence[Step]) -> list[tuple[str, Step]]:
    """Each turn's (input, final model step), in order, for the turns that got one."""
    out = []
    for t in range(turns_of(plan)):
        mine = model_steps(steps, t)
        if mine:
            out.append((user_text(mine[0].request.messages), mine[-1]))
    return out


def request_for(settings: Settings, plan: Planned, repeat: int, messages: list[dict[str, Any]]) -> Request:
    """A chain's first request (turn 1, step 1) of run ``repeat``."""
    return _request(settings, plan, repeat, messages, 0, 1, turn_vars(plan, 0, []))


def _request(settings: Settings, plan: Planned, repeat: int, messages: list[dict[str, Any]], turn: int,
             step: int, variables: dict[str, Any]) -> Request:
    chain = plan.chain
    assert chain is not None
    meta = {**plan.meta, "repeat": repeat, "turn": turn + 1, "step": step}
    shown = {k: v for k, v in variables.items() if k != HISTORY_VAR}
    return build_request(settings, plan.model, messages, meta, params=chain.params, repeat=repeat, variables=shown)


def _next_turn(settings: Settings, plan: Planned, repeat: int, steps: Sequence[Step], turn: int,
               said: str | None = None) -> Request:
    """Turn ``turn``'s request (``said``: the simulated user's message); the first turn's too
    when a simulated user opened the conversation."""
    from ..model.errors import TemplateError

    chain = plan.chain
    assert chain is not None
    earlier = [(i, s.response.output) for i, s in replies(plan, steps)]
    variables = turn_vars(plan, turn, earlier, said)
    try:
        rendered = chain.prompt.render(variables, plan.case.prefix, plan.case.suffix)
    except TemplateError as exc:
        raise ChainProblem(f"{_turn_label(plan, turn)}: {exc}") from None
    if owns_history(chain.prompt) or turn == 0:
        messages = rendered
    else:
        last = model_steps(steps, turn - 1)[-1]
        messages = [*last.request.messages, assistant_message(last.response), *closing_user(rendered)]
    return _request(settings, plan, repeat, messages, turn, 1, variables)


def _turn_label(plan: Planned, turn: int) -> str:
    turns = plan.case.turns
    label = turns[turn].label if turn < len(turns) else ""
    return label or f"turn {turn + 1}"


def _tool_requests(plan: Planned, agent: Agent, step: Step) -> list[Request]:
    """One request per tool call of the model's reply: canned (answered from the case's
    tool_results, pipeline/chains.canned_result) or the python impl's run (a ``tool`` request
    the engine makes, cached like any answer)."""
    out = []
    for index, (name, args) in enumerate(step.response.calls):
        body = {"name": name, "arguments": args, "index": index}
        messages = ({"role": "tool", "content": json.dumps(body, ensure_ascii=False, sort_keys=True)},)
        target = f"python:{agent.impl}" if agent.impl else CANNED
        key = cache_key(target, list(messages), {}, extra={"call": "tool"})
        meta = {**plan.meta, **step.request.meta, "kind": "tool", "tool": name}
        out.append(Request(model=target, litellm_model=target, messages=messages, params={}, key=key,
                           timeout=step.request.timeout, meta=meta, call="tool"))
    return out


def _after_tools(settings: Settings, plan: Planned, repeat: int, steps: Sequence[Step]) -> Request:
    """The model called again: its last request, its reply with the calls, each tool's result."""
    tools: list[Step] = []
    for s in reversed(steps):
        if s.is_model:
            model = s
            break
        tools.insert(0, s)
    messages = [*model.request.messages, assistant_message(model.response)]
    legacy = not model.response.tool_calls
    for call, tool in zip(model.response.tool_calls or (None,) * len(tools), tools, strict=True):
        text = tool.response.text if tool.response.error is None else result_text({"error": tool.response.error})
        if legacy:
            messages.append({"role": "function", "name": tool_call(tool.request)[0], "content": text})
        else:
            messages.append({"role": "tool", "tool_call_id": (call or {}).get("id", ""), "content": text})
    mine = model_steps(steps, model.turn)
    earlier = [(i, s.response.output) for i, s in replies(plan, steps) if s.turn < model.turn]
    said = user_text(mine[0].request.messages) if plan.case.simulation is not None else None
    return _request(settings, plan, repeat, messages, model.turn, len(mine) + 1,
                    turn_vars(plan, model.turn, earlier, said))


def trajectory(steps: Sequence[Step], turn: int | None = None) -> list[dict[str, Any]]:
    """The tool calls of a turn (or of every turn), in order, each with what its tool returned:
    ``assertions.Context.trajectory`` and the record's steps."""
    out: list[dict[str, Any]] = []
    n = {}
    pending: list[dict[str, Any]] = []
    for s in steps:
        if (turn is not None and s.turn != turn) or s.is_user:
            continue
        if s.is_model:
            n[s.turn] = n.get(s.turn, 0) + 1
            out += [{"turn": s.turn + 1, **ran} for ran in s.response.trajectory or ()]  # a python: agent's own
            pending = [{"turn": s.turn + 1, "step": n[s.turn], "name": name, "arguments": args, "result": None}
                       for name, args in s.response.calls]
            out += pending
            continue
        index = json.loads(str(s.request.messages[0]["content"])).get("index", 0)
        if index < len(pending):
            resp = s.response
            pending[index]["result"] = _parsed(resp.text) if resp.error is None else {"error": resp.error}
    return out


def _parsed(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return text
