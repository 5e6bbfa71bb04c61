"""The run-time client: applications fetch a prompt by version or label from the registry
in their repository and call a model through the same engine as the tests (cache, retries,
call log with prompt id, version and user id). No pytest, no server.

    from pytest_promstack import Client
    client = Client()                                   # finds promstack.yaml / the registry from the cwd
    p = client.get_prompt("support", version=3)         # or label="production" (the default), or latest
    messages = p.render(input="환불하고 싶어요")
    reply = client.complete(p, input="환불하고 싶어요", model="openai/gpt-4o-mini")
    client.check(reply, "icontains:환불")             # or "tool-called:lookup_order" for a prompt with tools:

Versions are immutable, so they are cached for the life of the client; a label is re-read
from the registry after ``label_ttl`` seconds (a deploy moves it). Without a registry, or
when the prompt is not in it, ``get_prompt`` falls back to the prompt file with a warning.
Importing this module imports neither pytest nor litellm; ``complete`` loads litellm on
its first call to a model that needs it.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model.errors import PromstackError
from .plan.prompts import Prompt, load_prompt
from .versions import PromptRegistry, RegistryError


@dataclass(frozen=True)
class PromptVersion:
    """One version of a prompt: ``number`` is the registry's (None for an unrecorded file)."""

    id: str
    number: int | None
    hash: str
    labels: tuple[str, ...]
    prompt: Prompt

    def render(self, **variables: Any) -> list[dict[str, Any]]:
        return self.prompt.render(variables)

    @property
    def messages(self) -> tuple[dict[str, Any], ...]:
        return self.prompt.messages


class Client:
    def __init__(self, root: str | Path | None = None, config: str | None = None, label_ttl: float = 60.0,
                 user_id: str | None = None, mask_inputs: bool | None = None, session_id: str | None = None,
                 log: str | Path | None = None, url: str | None = None, token: str | None = None,
                 timeout: float = 10.0, cache: str | None = None) -> None:
        """``log``: the call log's path (relative to the project), where the application's code
        wants it, inside the project or not (``/var/log/app/calls.jsonl``); promstack.yaml's
        ``log:`` rotation still applies. Default: promstack.yaml's ``log:``, which a pull
        request can edit and so must stay inside the project. ``url``: read prompts from
        ``promstack serve`` instead of the registry's files (``token``, else
        ``$PROMSTACK_SERVE_TOKEN``: its bearer token; ``timeout``: seconds per request).
        ``cache``: the cache mode of ``complete`` (use, replay, refresh, off, record; default:
        promstack.yaml's)."""
        from .config.modes import CacheMode
        from .config.settings import load_or_default
        from .pipeline.runner import default_root

        if cache is not None and cache not in set(CacheMode):
            raise PromstackError(f"cache={cache!r}: not a cache mode; use one of {', '.join(CacheMode)}")
        start = Path(root) if root is not None else Path.cwd()
        options = {"config": config, "cache": cache, **({"log": str(log)} if log is not None else {})}
        self.settings = load_or_default(start if root is not None else default_root(start), options)
        self.root = self.settings.root
        self.registry = PromptRegistry(self.root, readonly=True)
        self.remote = Remote(url, token, timeout) if url is not None else None
        self.label_ttl = label_ttl
        self.user_id = user_id
        self.mask_inputs = mask_inputs  # None: promstack.yaml's mask_inputs
        self.session_id = session_id  # the application's session, on every call's log line (None: none)
        self._versions: dict[tuple[str, int], PromptVersion] = {}
        self._labels: dict[tuple[str, str], tuple[int, float]] = {}
        self._runner: Any = None
        self.clock = time.monotonic

    def get_prompt(self, prompt_id: str | int, version: int | None = None, label: str | None = None) -> PromptVersion:
        """By ``version`` number, by ``label``, or (neither) the ``production`` label, else the
        latest version."""
        pid = str(prompt_id)
        if version is not None and label is not None:
            raise PromstackError("get_prompt: pass version= or label=, not both")
        try:
            if version is not None:
                return self._version(pid, int(version))
            if label is not None:
                return self._version(pid, self._label(pid, label))
            entry = self._fresh_entry(pid)
            if "production" in (entry.get("labels") or {}):
                return self._version(pid, self._label(pid, "production"))
            return self._version(pid, int(entry["versions"][-1]["number"]))
        except RegistryError as exc:
            if version is not None or label is not None:
                raise
            return self._fallback(pid, exc)

    def _fresh_entry(self, pid: str) -> dict[str, Any]:
        if self.remote is not None:
            return self.remote.entry(pid)
        self.registry.reload()
        return self.registry.entry(pid)

    def _label(self, pid: str, label: str) -> int:
        cached = self._labels.get((pid, label))
        if cached is not None and self.clock() < cached[1]:
            return cached[0]
        if self.remote is not None:
            number = self.remote.label(pid, label)
        else:
            self.registry.reload()
            number = int(self.registry.resolve(pid, label=label)["number"])
        self._labels[(pid, label)] = (number, self.clock() + self.label_ttl)
        return number

    def _version(self, pid: str, number: int) -> PromptVersion:
        key = (pid, number)
        if key not in self._versions:
            if self.remote is not None:
                self._versions[key] = self.remote.version(pid, number)
                return self._versions[key]
            v = self.registry.resolve(pid, number)
            prompt = load_prompt(self.registry.snapshot(pid, number), self.root, default_id=pid)
            self._versions[key] = PromptVersion(pid, number, v["hash"], tuple(self.registry.labels_of(pid, number)),
                                                prompt)
        return self._versions[key]

    def _fallback(self, pid: str, why: Exception) -> PromptVersion:
        if self.remote is not None:  # an application reading a server has no prompt files to fall back to
            raise why
        from .pipeline.runner import Runner

        prompt = Runner(self.settings).prompt(pid)
        warnings.warn(f"promstack: {why}; using the prompt file {prompt.source} as it is", stacklevel=3)
        return PromptVersion(pid, None, prompt.version, (), prompt)

    def complete(self, prompt: PromptVersion | Prompt | str, model: str | None = None,
                 params: dict[str, Any] | None = None, mask_inputs: bool | None = None, guards: bool = True,
                 session_id: str | None = None, **variables: Any) -> Any:
        """Render and call a model (``Reply``: text, tokens, cost, latency, cached, error, and
        the ``tool_calls`` of a prompt with ``tools:``, with the request's ``params``).
        ``mask_inputs=True`` sends the messages with their PII and secrets masked
        (``<PHONE_1>``) and puts the values back into the reply's text (None: the client's
        setting, else promstack.yaml's ``mask_inputs``); ``reply.messages`` is what was sent.
        With ``guards:`` in promstack.yaml the call goes through them (``guards=False`` skips
        them for this call): an injection above the threshold is flagged or blocked
        (``reply.blocked``, the notice as its text, no call made), an answer holding a secret
        or sensitive data or a banned word is replaced by its notice; ``reply.guards`` lists
        the decisions, which the call log keeps too. ``session_id``: the application's session
        (a conversation, a user's visit) on the call's log line and span, over the client's own.
        Logging never fails a call: a log that cannot be written is one warning per client."""
        runner = self._get_runner()
        p = prompt.prompt if isinstance(prompt, PromptVersion) else prompt
        masks = mask_inputs if mask_inputs is not None else self.mask_inputs
        reply = runner.run_many([{"prompt": p, "vars": variables, "model": model, "params": params,
                                  "meta": {"mask_inputs": masks, "session_id": session_id or self.session_id},
                                  "guards": guards}])[0]
        for problem in runner.take_fresh():  # the call log or telemetry: once per client
            warnings.warn(f"promstack: {problem}", stacklevel=2)
        if runner.audit_failed:  # the reply still reaches the caller
            warnings.warn(f"promstack: audit log not written: {runner.audit_failed}", stacklevel=2)
            runner.audit_failed = None
        return reply

    def check(self, reply: Any, *specs: str | dict[str, Any], threshold: float | None = None) -> Any:
        """Score a reply with assertions in the test files' language (``"tool-called:get_weather"``,
        ``{"type": "tool-args-match", "value": {...}}``); raises ``AssertionError`` naming
        every assertion when it does not pass, and returns the scores when it does."""
        return self._get_runner().check(reply, *specs, threshold=threshold)

    def _get_runner(self) -> Any:
        if self._runner is None:
            import dataclasses

            from .pipeline.runner import Runner

            settings = self.settings
            if self.user_id:
                settings = dataclasses.replace(settings, user_id=self.user_id)
            self._runner = Runner(settings)
        return self._runner

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Remote:
    """The registry read from ``promstack serve``: versions once (they never change), entries
    and labels revalidated with their ETag (a 304 costs no body). Redirects are not followed
    (the token would go wherever they point); every answer is checked for its shape."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        import os
        from urllib.parse import urlsplit

        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PromstackError(f"Client(url={url!r}): give the http(s) address of `promstack serve`, such as "
                                 "http://127.0.0.1:8765")
        self.token = token or os.environ.get("PROMSTACK_SERVE_TOKEN") or None
        if self.token is not None and not self.token.isascii():
            raise PromstackError("the registry API's token is ASCII (letters, digits, -._~+/); this one cannot be "
                                 "sent in a header")
        self.timeout = timeout
        self._etags: dict[str, tuple[str, Any]] = {}

    def entry(self, pid: str) -> dict[str, Any]:
        path = f"/v1/prompts/{_segment(pid)}"
        doc = self._get(path)
        versions = doc.get("versions") if isinstance(doc, dict) else None
        labels = doc.get("labels") if isinstance(doc, dict) else None
        if not (isinstance(versions, list) and versions and isinstance(labels, dict)
                and all(isinstance(v, dict) and isinstance(v.get("number"), int) for v in versions)
                and all(isinstance(n, int) for n in labels.values())):
            raise self._odd(path)
        return doc

    def label(self, pid: str, label: str) -> int:
        labels = self.entry(pid)["labels"]
        if label not in labels:
            names = ", ".join(sorted(labels)) or "none"
            raise RegistryError(f"prompt {pid!r} has no label {label!r} (labels: {names}) at {self.url}")
        return int(labels[label])

    def version(self, pid: str, number: int) -> PromptVersion:
        from .versions import prompt_of

        path = f"/v1/prompts/{_segment(pid)}/versions/{int(number)}"
        doc = self._get(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("number"), int) or not isinstance(doc.get("hash"), str):
            raise self._odd(path)
        prompt = prompt_of(doc, f"{self.url} prompt {pid!r} v{number}")
        labels = sorted(name for name, n in self.entry(pid)["labels"].items() if n == doc["number"])
        return PromptVersion(pid, doc["number"], doc["hash"], tuple(labels), prompt)

    def _odd(self, path: str) -> PromstackError:
        return PromstackError(f"{self.url}{path}: not an answer of promstack's registry API (another server at that "
                              "address?)")

    def _get(self, path: str) -> Any:
        import http.client
        import json
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        known = self._etags.get(path)
        if known is not None:
            headers["If-None-Match"] = known[0]
        try:
            request = urllib.request.Request(self.url + path, headers=headers)
            with _no_redirects().open(request, timeout=self.timeout) as answer:
                doc = json.loads(answer.read().decode("utf-8"))
                if answer.headers.get("ETag"):
                    self._etags[path] = (answer.headers["ETag"], doc)
                return doc
        except urllib.error.HTTPError as exc:
            if exc.code == 304 and known is not None:
                return known[1]
            raise self._refused(exc) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, ValueError) and not isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
                reason = f"{type(exc).__name__}: {exc}"
            raise PromstackError(f"{self.url}: cannot read the prompt registry there ({reason}); is `promstack "
                                 "serve` running?") from None

    def _refused(self, exc: Any) -> PromstackError:
        import json

        if 300 <= exc.code < 400:
            return PromstackError(f"{self.url}: the registry API answered with a redirect (HTTP {exc.code} to "
                                  f"{exc.headers.get('Location') or '?'}), which is not followed (the token would go "
                                  "along); give Client(url=...) the final address")
        try:
            said = json.loads(exc.read().decode("utf-8")).get("error")
        except (OSError, ValueError, AttributeError):
            said = None
        if exc.code == 401:
            return PromstackError(f"{self.url}: the registry API wants a bearer token: Client(url=..., token=...) or "
                                  "$PROMSTACK_SERVE_TOKEN" + (" (the one given was refused)" if self.token else ""))
        if exc.code == 404:
            return RegistryError(str(said) if said else f"{self.url}: not found")
        return PromstackError(f"{self.url}: the registry API answered HTTP {exc.code}" + (f": {said}" if said else ""))


@functools.cache
def _no_redirects() -> Any:
    """urllib's opener, without following redirects: a 3xx reaches the caller as an HTTPError."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _segment(text: str) -> str:
    from urllib.parse import quote

    return quote(str(text), safe="")
