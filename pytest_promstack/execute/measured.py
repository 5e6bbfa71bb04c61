"""The answers of the calls that are not chat completions: an embedding (for ``similar``) and a
moderation (for ``moderation``), read from litellm's objects into a Response the cache, the
cassettes and the call log keep like any other. A moderation's verdict is its text, as JSON:
``{"flagged": bool, "categories": [flagged category, ...], "scores": {category: score}}``."""

from __future__ import annotations

import json
import math
from typing import Any

from ..model.types import Response, is_count
from .stored import vector_problem


def response(call: str, raw: Any, latency_ms: float) -> Response:
    latency = round(latency_ms, 3)
    try:
        return embedding(raw, latency) if call == "embedding" else moderation(raw, latency)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        return Response(error=f"APIError: the provider's answer is not {'an' if call == 'embedding' else 'a'} "
                              f"{call} ({type(exc).__name__}: {str(exc)[:200]})", latency_ms=latency, retry=False)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def embedding(raw: Any, latency_ms: float) -> Response:
    data = _get(raw, "data")
    if not data:
        raise ValueError("no data")
    vector = _get(data[0], "embedding")
    bad = vector_problem(vector)
    if bad is not None:
        raise ValueError(bad)
    tokens = _get(_get(raw, "usage"), "prompt_tokens")
    return Response(text="", vector=tuple(float(v) for v in vector), input_tokens=tokens if is_count(tokens) else None,
                    output_tokens=0 if is_count(tokens) and tokens is not None else None, latency_ms=latency_ms,
                    finish_reason="stop")


def moderation(raw: Any, latency_ms: float) -> Response:
    results = _get(raw, "results")
    if not results:
        raise ValueError("no results")
    first = results[0]
    categories = _mapping(_get(first, "categories"))
    scores = {str(k): float(v) for k, v in _mapping(_get(first, "category_scores")).items()
              if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    flagged = sorted(str(k) for k, v in categories.items() if v is True)
    verdict = {"flagged": bool(_get(first, "flagged")) or bool(flagged), "categories": flagged, "scores": scores}
    # no usage comes back: 0 tokens, so the cost is the model's price per token times 0 (OpenAI's
    # moderation is free), or unknown when the model has no price
    return Response(text=json.dumps(verdict, ensure_ascii=False, sort_keys=True), input_tokens=0, output_tokens=0,
                    latency_ms=latency_ms, finish_reason="stop")


def _mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else dict(vars(value))


def verdict(resp: Response) -> dict[str, Any]:
    """A stored moderation answer's verdict (its text); raises ValueError when it is not one."""
    data = json.loads(resp.text or "")
    if not isinstance(data, dict) or not isinstance(data.get("flagged"), bool) or not isinstance(
            data.get("categories"), list) or not isinstance(data.get("scores"), dict):
        raise ValueError("not a moderation verdict")
    return data
