"""Cost follows the price, not the moment of the call: every answer, fresh, cached, replayed
or recorded, is priced the same way, from its token counts and today's price.

The price of a model is, in order: the model's own ``input_cost_per_token`` and
``output_cost_per_token`` params; 0 for the bundled offline model (``local/…``); litellm's
bundled price map (read as a JSON file: importing litellm costs about 3 s). A Python target
(``python:…``) has no price of ours: the cost it reports about itself is kept. Without a
price, or without token counts, the cost is unknown (``None``), never 0. A price or a product
that is not a finite number (a price of ``inf``, 10**400 tokens) is unknown too, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..model.types import Request, Response

PRICE_PARAMS = ("input_cost_per_token", "output_cost_per_token")


@cache
def price_map() -> dict[str, Any] | None:
    """litellm's bundled price map (``None`` when litellm or the file is missing)."""
    spec = find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@cache
def _from_map(model: str) -> tuple[float, float] | None:
    prices = price_map() or {}
    short = model.split("/", 1)[1] if "/" in model else model
    for name in (model, short):
        entry = prices.get(name)
        if isinstance(entry, dict):
            cin, cout = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if isinstance(cin, int | float) and isinstance(cout, int | float):
                return _per_token(cin, cout)
    return None


def _per_token(cin: Any, cout: Any) -> tuple[float, float] | None:
    """Both prices as floats, or None unless both are finite and not negative."""
    try:
        pair = float(cin), float(cout)
    except (TypeError, ValueError, OverflowError):
        return None
    return pair if all(math.isfinite(p) and p >= 0 for p in pair) else None


def price(litellm_model: str, params: dict[str, Any]) -> tuple[float, float] | None:
    """(USD per input token, USD per output token), or None when nobody prices the model."""
    if all(k in params for k in PRICE_PARAMS):
        return _per_token(params[PRICE_PARAMS[0]], params[PRICE_PARAMS[1]])
    if litellm_model.startswith("local/"):
        return 0.0, 0.0
    return _from_map(litellm_model)


def priced(req: Request, resp: Response) -> Response:
    """``resp`` with ``cost_usd`` from its tokens and the model's current price."""
    if resp.error is not None or req.litellm_model.startswith("python:"):
        return resp
    per_token = price(req.litellm_model, req.params)
    cost = None if per_token is None or resp.input_tokens is None else _cost(per_token, resp)
    return resp if cost == resp.cost_usd else replace(resp, cost_usd=cost)


def _cost(per_token: tuple[float, float], resp: Response) -> float | None:
    try:
        cost = per_token[0] * resp.input_tokens + per_token[1] * (resp.output_tokens or 0)  # type: ignore[operator]
    except (TypeError, OverflowError):  # 10**400 tokens cannot become a float
        return None
    return cost if math.isfinite(cost) else None
