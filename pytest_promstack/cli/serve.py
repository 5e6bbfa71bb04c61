"""``promstack serve``: a small read-only HTTP API over the prompt registry, for applications
that do not ship the repository (the Python ``Client(url=...)``, the TypeScript SDK, curl).

    GET  /v1/prompts                                  every prompt: latest version, labels
    GET  /v1/prompts/{id}                             its versions and labels
    GET  /v1/prompts/{id}/versions/{n}                one version: messages, model, params, hash
    GET  /v1/prompts/{id}/labels/{label}              the version a label points to
    POST /v1/prompts/{id}/versions/{n}/render         {"variables": {...}} -> {"messages": [...]}
    POST /v1/prompts/{id}/labels/{label}/render
    GET  /v1/health

JSON in UTF-8; ids are path segments, percent-encoded (``/v1/prompts/%EC%9A%94%EC%95%BD``). A
version never changes, so its answer may be cached forever (``immutable``); lists and labels
move with deploys, so they carry an ETag to revalidate (``no-cache``; ``If-None-Match`` gets a
304). With the environment variable ``--token-env`` names set (``PROMSTACK_SERVE_TOKEN``), every
request but ``/v1/health`` needs ``Authorization: Bearer <token>``. The registry is read afresh
on each request (a deploy shows at once); nothing is ever written."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..model.errors import PromstackError, TemplateError
from ..util.text import safe

API = "/v1"
MAX_BODY = 1024 * 1024  # a render request's variables
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750's b64token: what a header can carry as it is
FOREVER = "max-age=31536000, immutable"
ROUTES = [(re.compile(p), name) for p, name in (
    (r"^/v1/health$", "health"),
    (r"^/v1/prompts$", "prompts"),
    (r"^/v1/prompts/([^/]+)$", "prompt"),
    (r"^/v1/prompts/([^/]+)/versions/([0-9]+)$", "version"),
    (r"^/v1/prompts/([^/]+)/labels/([^/]+)$", "label"),
    (r"^/v1/prompts/([^/]+)/versions/([0-9]+)/render$", "render-version"),
    (r"^/v1/prompts/([^/]+)/labels/([^/]+)/render$", "render-label"),
)]


def add_parser(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    p = sub.add_parser("serve", parents=[common], epilog=epilog, help="a read-only HTTP API over the prompt registry",
                       description="Serve the prompt registry (.promstack/prompts) read-only over HTTP: list prompts, "
                                   "versions and labels, get a version or a label, render it with variables.")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s, this machine "
                                                      "only)")
    p.add_argument("--port", default="8765", help="the port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--token-env", metavar="VAR", default="PROMSTACK_SERVE_TOKEN",
                   help="the environment variable holding the bearer token every request must carry; unset or empty: "
                        "no token (default: %(default)s)")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RegistryAPI:
    """The API without the HTTP server: ``answer(method, target, headers, body)``."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        from ..versions import PromptRegistry

        self.registry = PromptRegistry(root, readonly=True)
        self.token = token or None
        self._lock = threading.Lock()  # one reading of the registry at a time (it caches its index)
        self._versions: dict[tuple[str, int, str], dict[str, Any]] = {}  # immutable: kept once loaded

    def answer(self, method: str, target: str, headers: Any, body: bytes = b"") -> Answer:
        path = urlsplit(target).path
        route = next(((name, m.groups()) for pattern, name in ROUTES if (m := pattern.match(path))), None)
        if route is None:
            return _error(404, f"{safe(path)}: no such endpoint; see GET {API}/prompts")
        name, groups = route
        wanted = "POST" if name.startswith("render") else "GET"
        if method != wanted and not (method == "HEAD" and wanted == "GET"):
            return _error(405, f"{method} {safe(path)}: use {wanted}", {"Allow": wanted})
        if name == "health":
            return _json({"ok": True}, "no-store")
        if self.token is not None and not _authorized(headers.get("Authorization"), self.token):
            return _error(401, "a bearer token is required: Authorization: Bearer <token>",
                          {"WWW-Authenticate": 'Bearer realm="promstack"'})
        args = [unquote(g) for g in groups]
        with self._lock:
            try:
                self.registry.reload()
                self.registry.data  # noqa: B018 - an unreadable index is the server's trouble, not a 404
            except PromstackError as exc:
                return _error(503, str(exc))
            try:
                answer = self._route(name, args, body)
            except TemplateError as exc:
                return _error(422, str(exc))
            except PromstackError as exc:
                return _error(404, str(exc))
        return _revalidated(answer, headers.get("If-None-Match"), self.token is not None)

    def _route(self, name: str, args: list[str], body: bytes) -> Answer:
        if name == "prompts":
            return _json({"prompts": [self._summary(pid) for pid in self.registry.ids()]}, "no-cache")
        if name == "prompt":
            entry = self.registry.entry(args[0])
            return _json({"id": args[0], "labels": dict(entry.get("labels") or {}),
                          "versions": [_listed(v) for v in entry["versions"]]}, "no-cache")
        if name in ("version", "render-version"):
            doc, cache = self._version(args[0], int(args[1])), FOREVER
        else:
            number = int(self.registry.resolve(args[0], label=args[1])["number"])
            doc, cache = {**self._version(args[0], number), "label": args[1]}, "no-cache"
        if name.startswith("render"):
            return _json(self._render(doc, body), "no-store")
        return _json(doc, cache)

    def _summary(self, pid: str) -> dict[str, Any]:
        entry = self.registry.entry(pid)
        last = entry["versions"][-1]
        return {"id": pid, "latest": last["number"], "hash": last["hash"], "versions": len(entry["versions"]),
                "labels": dict(entry.get("labels") or {})}

    def _version(self, pid: str, number: int) -> dict[str, Any]:
        from ..versions import version_doc

        v = self.registry.resolve(pid, number)
        key = (pid, number, v["hash"])
        if key not in self._versions:  # a version never changes
            self._versions[key] = version_doc(self.registry, pid, number)
        return self._versions[key]

    def _render(self, doc: dict[str, Any], body: bytes) -> dict[str, Any]:
        from ..versions import prompt_of

        try:
            request = json.loads(body.decode("utf-8") or "{}")
        except RecursionError:
            raise TemplateError("the request body nests too deep; send {\"variables\": {...}} with plain "
                                "values") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise TemplateError(f"the request body is not JSON ({exc}); send {{\"variables\": {{...}}}}") from None
        variables = request.get("variables", {}) if isinstance(request, dict) else None
        if not isinstance(variables, dict):
            raise TemplateError('"variables" must be an object of names to values: {"variables": {"input": "..."}}')
        where = f"prompt {doc['id']!r} v{doc['number']}"
        try:
            messages = prompt_of(doc, where).render(variables)
        except TemplateError as exc:
            if exc.variable is None:
                raise
            raise TemplateError(f"template variable {exc.variable!r} is undefined in {where}; send it in the body: "
                                f'{{"variables": {{{json.dumps(exc.variable, ensure_ascii=False)}: ...}}}}') from None
        return {"id": doc["id"], "number": doc["number"], "hash": doc["hash"], "messages": messages}


def _listed(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get(k) for k in ("number", "hash", "time", "author", "message")}


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":  # the scheme's name is case-insensitive (RFC 9110)
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def _json(doc: Any, cache: str) -> Answer:
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Answer(200, body, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": cache})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    return Answer(status, body, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
                                 **(headers or {})})


def _revalidated(answer: Answer, if_none_match: str | None, private: bool) -> Answer:
    """A GET answer with its ETag (a digest of the body), and 304 when the client has it."""
    if answer.status != 200 or answer.headers.get("Cache-Control") == "no-store":
        return answer
    etag = '"' + hashlib.sha256(answer.body).hexdigest()[:32] + '"'
    cache = ("private, " if private else "public, ") + answer.headers["Cache-Control"]
    headers = {**answer.headers, "ETag": etag, "Cache-Control": cache}
    seen = {t.strip().removeprefix("W/") for t in (if_none_match or "").split(",")}
    if etag in seen or "*" in seen:
        return Answer(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
    return Answer(200, answer.body, headers)


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the standard library's 5 refuses a burst of clients

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a reset, a broken pipe) is no news; anything else is one line."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            print(safe(f"promstack serve: error answering {client_address[0]}: {type(exc).__name__}: {exc}"),
                  file=sys.stderr)


class _Listener6(_Listener):
    address_family = socket.AF_INET6


class Server:
    """The API on a ThreadingHTTPServer in a background thread; ``url`` once it listens."""

    def __init__(self, api: RegistryAPI, host: str, port: int) -> None:
        api_ = api

        class Handler(BaseHTTPRequestHandler):
            server_version = "promstack"
            sys_version = ""

            def _reply(self) -> None:
                length = self.headers.get("Content-Length") or "0"
                if not length.isascii() or not length.isdigit():
                    answer = _error(400, f"Content-Length {safe(length)!r} is not a number of bytes")
                elif int(length) > MAX_BODY:
                    answer = _error(413, f"the request body is over {MAX_BODY} bytes")
                else:
                    body = self.rfile.read(int(length)) if int(length) else b""
                    try:
                        answer = api_.answer(self.command, self.path, self.headers, body)
                    except Exception as exc:  # our bug: the client gets a JSON 500, the console one line
                        print(safe(f"promstack serve: {self.command} {self.path}: {type(exc).__name__}: {exc}"),
                              file=sys.stderr)
                        answer = _error(500, "the server failed on this request; see its console")
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = _reply

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """The server's own refusals (a method it has no handler for, a request line too
                long, a malformed request) in JSON like every other answer."""
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client went away
                    self._send(_error(code, message or explain or "bad request"))

            def log_message(self, *args: Any) -> None:  # quiet: an access log is the proxy's job
                pass

        try:
            self._http = (_Listener6 if ":" in host else _Listener)((host, port), Handler)
        except (OSError, OverflowError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise PromstackError(f"cannot listen on {host}:{port} ({why}); pick another --port or --host") from None
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.2,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{'[' + str(host) + ']' if ':' in str(host) else host}:{port}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def run(args: argparse.Namespace) -> int:
    """``promstack serve``: listen until Ctrl-C or SIGTERM (exit 0)."""
    from ..config.settings import load_or_default
    from ..pipeline.runner import default_root
    from .monitor import _wait

    if not re.fullmatch(r"[0-9]{1,5}", str(args.port)) or int(args.port) > 65535:
        raise PromstackError(f"--port {args.port}: give a port number from 0 to 65535")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.token_env):
        raise PromstackError(f"--token-env {args.token_env!r}: name an environment variable (PROMSTACK_SERVE_TOKEN)")
    root = Path.cwd() if args.config else default_root(Path.cwd())
    settings = load_or_default(root, {"config": args.config})
    token = os.environ.get(args.token_env) or None
    if token is not None and not TOKEN.fullmatch(token):
        raise PromstackError(f"${args.token_env}: a bearer token is ASCII letters, digits and -._~+/ (then = "
                             "padding); this one cannot be sent in a header. Make one with: python -c "
                             "'import secrets; print(secrets.token_urlsafe(32))'")
    api = RegistryAPI(settings.root, token)
    if not api.registry.index_path.is_file():
        raise PromstackError(f"{api.registry.rel(api.registry.index_path)}: no prompt registry here; a run or "
                             "`promstack prompt list` records the prompts of the configured suites")
    server = Server(api, args.host, int(args.port))
    guard = f"bearer token of ${args.token_env} required" if token else f"no token (${args.token_env} unset)"
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(safe(f"promstack serve: warning: listening on {args.host} without a token: anyone who reaches the "
                   f"port reads the prompts; set ${args.token_env}"), file=sys.stderr)
    print(safe(f"promstack serve: the registry of {settings.root} at {server.url}{API}/prompts ({guard}; read-only; "
               "Ctrl-C stops)"), flush=True)
    return _wait(server)
