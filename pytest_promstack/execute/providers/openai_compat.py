"""The direct transport: one JSON POST per call, made with aiohttp (which litellm itself
depends on), to an OpenAI-compatible server (``<base>/chat/completions``) or to Anthropic's
Messages API (``<base>/v1/messages``, see ``anthropic``). Which requests take it, with which
URL and key, is decided in ``routes``.

Every param of a self-hosted server's request goes into the JSON body as it is, so a
server's own sampling params (llama.cpp's ``repeat_penalty``, ``top_k``, ``min_p``,
``mirostat_mode``; vLLM's ``min_tokens``) reach it, as litellm passes them on too;
``extra_body`` is merged into the body and ``extra_headers`` into the headers, as the OpenAI
client does. Our own keys (``drop_params``, the ``*_cost_per_token`` prices) never leave.

A proxy named by the environment (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``) is used as
litellm's client uses it, looked up once per server rather than on every call (aiohttp's
``trust_env`` would ask twice per call, in a thread each time, and would add a ``~/.netrc``
login that clashes with the key's ``Authorization`` header; litellm reads no netrc either).

Errors are named as litellm names them (``RateLimitError (HTTP 429): …``), and statuses and
``Retry-After`` reach the engine's retry loop unchanged. The answer is priced by the engine
(``pricing.priced``) from its tokens and their details, as litellm prices it.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from ...model.types import Request, Response, is_count
from ..pricing import usage_details
from ..stored import function_call_of, token_logprobs, tool_calls_of
from .routes import HOSTS, OURS, route

NAMES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
         408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError", 502: "BadGatewayError",
         503: "ServiceUnavailableError"}


class Transport:
    """One aiohttp session per event loop (the engine runs one loop per batch)."""

    def __init__(self) -> None:
        self.session: Any = None
        # by scheme, host, port: the proxy URL (no credentials) and its Proxy-Authorization header
        self.proxies: dict[tuple[str, str, int | None], tuple[Any, dict[str, str] | None]] = {}

    def _proxy(self, url: str) -> tuple[Any, dict[str, str] | None]:
        """(proxy URL, its headers) the environment names for ``url``'s server, or (None, None)."""
        parts = urlsplit(url)
        try:
            origin = (parts.scheme, parts.hostname or "", parts.port)
        except ValueError:  # a port that is no number: aiohttp's error names the URL
            return None, None
        if origin not in self.proxies:
            from urllib.request import getproxies, proxy_bypass

            found = None if parts.hostname and proxy_bypass(parts.hostname) else getproxies().get(parts.scheme)
            self.proxies[origin] = _proxy_info(found) if found else (None, None)
        return self.proxies[origin]

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _session(self) -> Any:
        if self.session is None:
            import aiohttp

            # no connection cap of its own: the engine's semaphore and limiter bound what is in flight
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self.session

    async def call(self, req: Request, api_key: str | None, timeout: float) -> Response:
        import aiohttp

        way = route(req)
        variable = None
        if api_key is None and way.hosted:
            found = way.key(req.api_base)
            if found is None and not req.api_base:
                names = " or ".join(HOSTS[way.provider][2])
                return Response(error=f"AuthenticationError: no API key for {req.model}: set {names} (or name the "
                                      "variable holding it in api_key_env)", retry=False)
            variable, api_key = found or (None, None)
        if way.wire == "anthropic":
            from .anthropic import request_body as anthropic_body

            body, headers = anthropic_body(req, way, api_key, bearer=variable == "ANTHROPIC_AUTH_TOKEN")
        else:
            body, headers = request_body(req, way.name)
            if api_key:
                headers["Authorization"] = f"Bearer {api_key}"
        url = way.url(req.api_base)
        start = time.perf_counter()
        try:
            proxy, proxy_headers = self._proxy(url)
            if proxy_headers and not url.startswith("https:"):  # aiohttp sends proxy_headers with a CONNECT
                headers, proxy_headers = {**headers, **proxy_headers}, None  # only: a plain request carries them
            async with self._session().post(url, json=body, headers=headers, proxy=proxy, proxy_headers=proxy_headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                raw = await r.read()
                status, got = r.status, r.headers
        except TimeoutError:
            return Response(error=f"Timeout: no answer from {url} within {timeout:.3g} s",
                            latency_ms=round((time.perf_counter() - start) * 1000, 3))
        except aiohttp.ClientError as exc:
            through = f"through the proxy {proxy} (NO_PROXY keeps a host direct): " \
                if isinstance(exc, aiohttp.ClientProxyConnectionError) else ""
            return Response(error=f"APIConnectionError: {through}{' '.join(str(exc).split()) or type(exc).__name__}",
                            latency_ms=round((time.perf_counter() - start) * 1000, 3))
        latency = round((time.perf_counter() - start) * 1000, 3)
        if status != 200:
            return _http_error(status, raw, got, latency)
        try:
            data = json.loads(raw)
        except ValueError:
            return Response(error=f"APIError: the answer of {url} is not JSON: {_snippet(raw)}", latency_ms=latency,
                            status_code=500)  # litellm retries it as a server error (a proxy's page)
        if way.wire == "anthropic":
            from .anthropic import response as anthropic_response

            return anthropic_response(data, latency)
        return _response(data, req, latency)


def _proxy_info(value: str) -> tuple[Any, dict[str, str] | None]:
    """A proxy variable's value read as litellm's client (httpx) reads it: with no scheme it is
    an http:// proxy, an https:// one is used too (aiohttp's own lookup drops it with a log
    line, and the calls then bypassed the proxy), and ``user:password@`` becomes the
    Proxy-Authorization header (aiohttp 3.14 deprecates ``proxy_auth`` and ``BasicAuth``: its
    warning failed every call under ``filterwarnings = error``). No netrc login is added for
    the proxy (httpx adds none)."""
    import base64
    from urllib.parse import unquote

    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.username is None and parts.password is None:
        return parts.geturl(), None
    login = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()  # UTF-8, as httpx
    plain = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return plain, {"Proxy-Authorization": "Basic " + base64.b64encode(login).decode("ascii")}


def request_body(req: Request, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body for model ``name`` (every param but ours, ``extra_body`` merged in) and the
    extra headers."""
    params = {k: v for k, v in req.params.items() if k not in OURS and v is not None}  # null: unset, as litellm
    extra_body = params.pop("extra_body", None) or {}
    headers = {str(k): str(v) for k, v in (params.pop("extra_headers", None) or {}).items()}
    body = {"model": name, "messages": list(req.messages), **params, **extra_body}
    return body, headers


def _http_error(status: int, raw: bytes, headers: Any, latency: float) -> Response:
    from ..retry_after import parse_retry_after

    message = _snippet(raw)
    try:
        err = json.loads(raw).get("error")
        message = (err.get("message") if isinstance(err, dict) else str(err)) or message
    except (ValueError, AttributeError):
        pass
    name = NAMES.get(status, "InternalServerError" if status >= 500 else "APIError")
    return Response(error=f"{name} (HTTP {status}): {' '.join(str(message).split())[:400]}", status_code=status,
                    latency_ms=latency, retry_after=parse_retry_after(headers))


def _snippet(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text[:200] + ("…" if len(text) > 200 else "") if text else "(empty body)"


def _response(data: Any, req: Request, latency: float) -> Response:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return Response(error="the provider returned no choices", latency_ms=latency, retry=False)
    message = choices[0].get("message")
    usage = data.get("usage") or {}
    wrong = _shape(message, usage, choices[0].get("finish_reason"))
    if wrong is not None:
        return Response(error=f"APIError: the provider's answer is not a chat completion: {wrong}", latency_ms=latency,
                        retry=False)
    tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not tokens_in and not tokens_out:
        tokens_in = tokens_out = None
    try:  # a reply that only calls tools has no content (null): its calls are the answer
        calls, function_call = tool_calls_of(message.get("tool_calls")), function_call_of(message.get("function_call"))
    except ValueError as exc:
        return Response(error=f"APIError: the provider's answer is not a chat completion: {exc}", latency_ms=latency,
                        retry=False)
    content = message.get("content")
    return Response(text=content if isinstance(content, str) else "", input_tokens=tokens_in,
                    output_tokens=tokens_out, latency_ms=latency,  # priced by the engine, from these
                    usage=usage_details(usage, data.get("service_tier")),
                    finish_reason=choices[0].get("finish_reason"), logprobs=token_logprobs(choices[0].get("logprobs")),
                    tool_calls=calls, function_call=function_call)


def _shape(message: Any, usage: Any, finish_reason: Any) -> str | None:
    """What in an answer is of the wrong type, or None."""
    if not isinstance(message, dict):
        return f"choices[0].message is {type(message).__name__}, not an object"
    if not isinstance(usage, dict):
        return f"usage is {type(usage).__name__}, not an object"
    for key in ("prompt_tokens", "completion_tokens"):
        v = usage.get(key)
        if not is_count(v):
            return f"usage.{key} is {v!r}, not a whole number"
    if finish_reason is not None and not isinstance(finish_reason, str):
        return f"finish_reason is {finish_reason!r}, not a string"
    return None
