"""A webhook receiver on 127.0.0.1 for the alert tests: it keeps every JSON body posted to it
and answers ``status`` (200 by default; set it to fail deliveries, ``delay`` to time them out).

    with Webhook() as hook:
        ... environ={"HOOK": hook.url} ...
        assert len(hook.posts) == 1
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.posts: list[Any] = []
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/T000/B000/s3cr3t-token"

    def __enter__(self) -> Webhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(hook.delay)
                hook.paths.append(self.path)
                hook.auth.append(self.headers.get("Authorization"))
                hook.posts.append(json.loads(body.decode("utf-8")))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if hook.status < 300 else b"no")

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
