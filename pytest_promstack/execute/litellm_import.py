"""The one place that imports litellm: offline settings first, then the import."""

from __future__ import annotations

import gc
import os
import warnings
from typing import Any

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # bundled price map, no fetch at import
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_MODE": "PRODUCTION",  # keeps litellm from loading a .env file
    "LITELLM_TELEMETRY": "False",
}


def _warm_up(litellm: Any) -> None:
    """litellm imports modules and builds pydantic schemas lazily inside its first call, and
    some of that warns. Our calls run in a background thread while pytest applies a project's
    `filterwarnings = error` process-wide, which would turn those warnings into failed calls.
    One offline mock call here, in the main thread with warnings silenced, does that work first.
    """
    if getattr(litellm, "_promstack_warm", False):
        return
    resp = litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                              mock_response="ok")
    litellm.completion_cost(completion_response=resp)
    litellm._promstack_warm = True


def import_litellm() -> Any:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        _warm_up(litellm)
    # litellm's import leaves a very large graph of long-lived objects; pytest runs gc.collect()
    # several times at session end (unraisableexception), about 0.3 s each over that graph.
    # Moving what exists now into the permanent generation makes those collections cheap.
    gc.freeze()
    return litellm
