"""OpenTelemetry spans of model calls (``telemetry: {otel: true}``), named and attributed per
the OpenTelemetry GenAI semantic conventions, through the application's global tracer
provider: the span is a child of whatever span the caller is in (a web request), and goes
where the application's OpenTelemetry setup exports. Without a provider set up, the API's
no-op tracer makes it free.

No prompt or answer text is put on a span; an error's text (the span's status description)
is masked. This module imports ``opentelemetry`` only when a span is made.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..model.types import Request, Response

TRACER = "pytest_promstack"
# litellm's provider prefix -> gen_ai.provider.name's well-known value (others pass as written)
PROVIDERS = {"openai": "openai", "text-completion-openai": "openai", "azure": "azure.ai.openai",
             "azure_ai": "azure.ai.inference", "anthropic": "anthropic", "bedrock": "aws.bedrock",
             "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai", "cohere": "cohere", "cohere_chat": "cohere",
             "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek", "perplexity": "perplexity",
             "xai": "x_ai", "watsonx": "ibm.watsonx.ai", "local": "llama_cpp", "python": "python"}
OPERATIONS = {"chat": "chat", "embedding": "embeddings", "moderation": "moderation", "tool": "execute_tool"}
REQUEST_PARAMS = ("temperature", "top_p", "top_k", "max_tokens", "frequency_penalty", "presence_penalty", "seed")


def provider_and_model(litellm_model: str) -> tuple[str, str]:
    """``openai/gpt-4o-mini`` -> ("openai", "gpt-4o-mini"); a name without a prefix is OpenAI's
    as litellm reads it (``gpt-4o``); ``python:app.fn`` -> ("python", "app.fn")."""
    if litellm_model.startswith("python:"):
        return "python", litellm_model.removeprefix("python:")
    prefix, _, name = litellm_model.partition("/")
    if not name:
        return "openai", prefix
    return PROVIDERS.get(prefix, prefix), name


def attributes(req: Request, resp: Response, session_id: str | None) -> dict[str, Any]:
    """The span's attributes for ``req`` answered by ``resp`` (no prompt or answer text)."""
    provider, model = provider_and_model(req.litellm_model)
    attrs: dict[str, Any] = {"gen_ai.operation.name": OPERATIONS.get(req.call, req.call),
                             "gen_ai.provider.name": provider, "gen_ai.system": provider,  # the older name
                             "gen_ai.request.model": model, "promstack.model": req.model,
                             "promstack.cached": resp.cached, "promstack.attempts": resp.attempts}
    attrs.update({f"gen_ai.request.{k}": req.params[k] for k in REQUEST_PARAMS
                  if isinstance(req.params.get(k), int | float) and not isinstance(req.params.get(k), bool)})
    billed = not resp.cached  # a cache hit used no tokens and cost nothing (as monitor counts it)
    optional = {"gen_ai.usage.input_tokens": resp.input_tokens if billed else None,
                "gen_ai.usage.output_tokens": resp.output_tokens if billed else None,
                "gen_ai.conversation.id": session_id, "promstack.prompt.id": req.meta.get("prompt_id"),
                "promstack.prompt.version": req.meta.get("prompt_version"),
                "promstack.cost_usd": resp.cost_usd if billed else None, "promstack.case_id": req.meta.get("case_id")}
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if resp.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [resp.finish_reason]
    if req.api_base:
        url = urlsplit(req.api_base)
        attrs.update({"server.address": url.hostname or "", **({"server.port": url.port} if url.port else {})})
    if resp.error is not None:
        attrs["error.type"] = error_type(resp)
    return attrs


def error_type(resp: Response) -> str:
    """``error.type``: the HTTP status when there is one, else what kind of failure it was."""
    if resp.status_code is not None:
        return str(resp.status_code)
    text = (resp.error or "").lower()
    for kind in ("timeout", "cancelled", "interrupted", "cache miss"):
        if kind in text or (kind == "timeout" and "timed out" in text):
            return kind.replace(" ", "_")
    return "_OTHER"


class Tracer:
    """Makes the spans of one runner's calls. ``masking``: the run's masking settings (their
    types), masking error texts; every type when masking is off, as an error may quote the
    request."""

    def __init__(self, masking: Any = None) -> None:
        self.masking = masking if masking is not None and masking.types else None
        self._tracer: Any = None

    def span(self, req: Request, resp: Response, start_ns: int, end_ns: int, session_id: str | None) -> None:
        """One CLIENT span from ``start_ns`` to ``end_ns``, a child of the caller's current span."""
        from opentelemetry import trace

        if self._tracer is None:
            from .. import __version__

            self._tracer = trace.get_tracer(TRACER, __version__)
        attrs = attributes(req, resp, session_id)
        name = f"{attrs['gen_ai.operation.name']} {attrs['gen_ai.request.model']}"
        span = self._tracer.start_span(name, kind=trace.SpanKind.CLIENT, start_time=start_ns, attributes=attrs)
        if resp.error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, self._masked(resp.error)))
        span.end(end_time=end_ns)

    def _masked(self, text: str) -> str:
        from ..safety.mask import Masker

        return (Masker.of(self.masking) if self.masking is not None else Masker()).mask(text)
