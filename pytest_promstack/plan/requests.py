"""The one Request builder and the one cache key, for every entry point (test files, the
fixture and SDK, judges, the arena).

The key is a sha256 over a versioned canonical JSON of everything that changes the answer
(model, endpoint, messages, every sampling parameter); timeouts and keys are left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config.policy import PREFIX
from ..model.types import NOT_IN_KEY, Request

if TYPE_CHECKING:
    from ..config.settings import ModelSpec, Settings

KEY_VERSION = 1




def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any],
              api_base: str | None = None, repeat: int = 0, extra: dict[str, Any] | None = None) -> str:
    """sha256 of the canonical request; equal requests give equal keys across runs.
    ``repeat`` (the repeat index) and ``extra`` (a Python target's vars) join only when set."""
    body: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": model,
        "api_base": api_base,
        "messages": messages,
        "params": {k: v for k, v in params.items() if k not in NOT_IN_KEY},
    }
    if repeat:
        body["repeat"] = repeat
    if extra:
        body["extra"] = extra
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def model_spec(settings: Settings, model: str) -> ModelSpec:
    """A configured model by its alias, else a litellm model name used as it is."""
    from ..config.settings import ModelSpec

    return settings.models.get(model) or ModelSpec(name=model, model=model)


def masks_inputs(settings: Settings, meta: dict[str, Any]) -> bool:
    """Whether requests of this suite (``meta["suite"]``) leave masked: the suite's
    ``mask_inputs``, else the config's; an SDK or fixture call says so in ``meta["mask_inputs"]``."""
    if meta.get("mask_inputs") is not None:
        return bool(meta["mask_inputs"])
    suite = settings.suites.get(str(meta.get("suite"))) if meta.get("suite") is not None else None
    return suite.mask_inputs if suite is not None else settings.mask_inputs


# the keys of a message that name, never carry data: left as they are
MESSAGE_NAMES = frozenset({"role", "type", "name", "id", "tool_call_id"})


def masked(settings: Settings, messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[
        tuple[str, str], ...]]:
    """``messages`` with their PII and secrets masked (one masker for the request: a value has one
    placeholder in all of them), and the (placeholder, value) pairs to restore the answer with.
    The types are ``masking.types`` (every type when masking is off), with its style."""
    from ..safety.findings import TYPES
    from ..safety.mask import Masker

    m = settings.masking
    masker = Masker(m.types or TYPES, hashed=m.hashed, min_confidence=m.min_confidence)
    out = masker.mask_json(list(messages), keep=MESSAGE_NAMES)
    return out, tuple(masker.values.items())


_NONE: dict[str, Any] = {}
_MERGED: dict[tuple[int, int, int], tuple[dict[str, Any], Any, Any, Any]] = {}


def _merged(defaults: dict[str, Any], own: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` < a model's ``own`` params < a prompt's ``params``, one dict shared by every
    request merging the same three dicts (on a large run, a dict per case less). The entry
    holds the three, so their ids stay theirs while it lives; a few dozen entries are kept."""
    key = (id(defaults), id(own), id(params))
    hit = _MERGED.get(key)
    if hit is not None and hit[1] is defaults and hit[2] is own and hit[3] is params:
        return hit[0]
    if len(_MERGED) >= 64:  # per-case params (tools rendered for each case) would otherwise pile up
        _MERGED.clear()
    merged = {**defaults, **own, **params}
    _MERGED[key] = (merged, defaults, own, params)
    return merged


def build(settings: Settings, model: str, messages: Sequence[dict[str, Any]], meta: dict[str, Any], *,
          params: dict[str, Any] | None = None, defaults: bool = True, repeat: int = 0,
          variables: dict[str, Any] | None = None, judge: bool = False) -> Request:
    """A request to ``model`` (an alias or a litellm name): its params are the config's
    ``defaults`` (unless ``defaults=False``: judges), the model's own params, then ``params``.
    A ``python:`` target's ``variables`` join its key and meta (it answers from them, not only
    from the messages); ``repeat`` is the run index of a repeated case. A judge's request asks
    for its structured output in the key and sends ``drop_params`` (kept out of the key).
    With mask_inputs (``masks_inputs``) the messages leave masked, and the key is the masked
    request's: masking never adds anything of its own to a key."""
    spec = model_spec(settings, model)
    unmask: tuple[tuple[str, str], ...] = ()
    if masks_inputs(settings, meta) and not spec.model.startswith(PREFIX):  # a python: target is the app itself
        messages, unmask = masked(settings, messages)
    merged = _merged(settings.defaults if defaults else _NONE, spec.params, params or _NONE)
    is_app = spec.model.startswith(PREFIX) and variables is not None
    key = cache_key(spec.model, list(messages), merged, spec.api_base, repeat=repeat,
                    extra={"vars": variables} if is_app else None)
    meta = {**meta, **({"vars": variables} if is_app else {}), **({"kind": "judge"} if judge else {})}
    return Request(model=model, litellm_model=spec.model, messages=tuple(messages),
                   params={**merged, "drop_params": True} if judge else merged, key=key,
                   api_base=spec.api_base, api_key_env=spec.api_key_env, timeout=settings.timeout, meta=meta,
                   unmask=unmask)


def measure(settings: Settings, model: str, call: str, text: str, meta: dict[str, Any]) -> Request:
    """A ``call`` ("embedding" or "moderation") of ``text`` by ``model`` (an alias or a litellm
    name), for the similar and moderation checks: keyed like a chat request of that one
    message, with the call kind in the key; the model's own params go along (``dimensions``)."""
    spec = model_spec(settings, model)
    messages = [{"role": "user", "content": text}]
    if masks_inputs(settings, meta):
        messages, _ = masked(settings, messages)
    key = cache_key(spec.model, messages, spec.params, spec.api_base, extra={"call": call})
    return Request(model=model, litellm_model=spec.model, messages=tuple(messages),
                   params={**spec.params, "drop_params": True}, key=key, api_base=spec.api_base,
                   api_key_env=spec.api_key_env, timeout=settings.timeout, meta={**meta, "kind": call}, call=call)
