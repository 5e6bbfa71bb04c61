"""``promstack mcp``'s options and start: over stdio (what an editor starts), or over
streamable HTTP on 127.0.0.1 (``--http``). The server itself is mcp_server.py, imported only
here, when the command runs: the ``mcp`` SDK is an optional extra and takes half a second to
import."""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError
from ..util.text import safe

EXTRA = "pip install 'pytest-promstack[mcp]' (from a clone: pip install -e '.[mcp]')"


def add_parser(sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    p = sub.add_parser("mcp", parents=[common], epilog=epilog, help="the project as an MCP server (editors, agents)",
                       description="Serve the project over the Model Context Protocol: the registry's prompts as MCP "
                                   "prompts and resources; tools to list, show and diff prompts, run suites and cases, "
                                   "evaluate, estimate cost, read the last results and deploy behind the gates. Over "
                                   "stdio by default (what Claude Desktop, Claude Code and VS Code start); --http "
                                   f"serves streamable HTTP on 127.0.0.1. Needs the mcp extra: {EXTRA}.")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP at http://127.0.0.1:PORT/mcp instead "
                                                       "of stdio")
    p.add_argument("--port", default="8766", help="the HTTP port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--allow-force", action="store_true",
                   help="let the deploy tool force a label move past failed gates (with a reason, recorded); off: "
                        "forced deploys stay with the CLI")


def run(args: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401 - the extra is installed
    except ImportError:
        print(f"promstack mcp: the MCP server needs the mcp extra: {EXTRA}", file=sys.stderr)
        return 4
    if not re.fullmatch(r"[0-9]{1,5}", args.port) or int(args.port) > 65535:
        print(f"promstack mcp: --port {safe(args.port)}: not a port; give a number from 0 to 65535", file=sys.stderr)
        return 4
    if args.config is not None and not Path(args.config).is_file():
        print(f"promstack mcp: --config {safe(args.config)}: file not found; pass a promstack.yaml or pyproject.toml",
              file=sys.stderr)
        return 4
    from .mcp_server import Project, PromstackMCP

    try:
        server = PromstackMCP(Project(Path.cwd(), args.config), allow_force=args.allow_force)
    except PromstackError as exc:
        from . import said

        print(safe(f"promstack mcp: {said(exc)}", newlines=True), file=sys.stderr)
        return 4
    if args.http:
        return _http(server, int(args.port))
    import anyio

    anyio.run(_stdio, server)
    return 0


async def _stdio(server: Any) -> None:
    """Until the client closes stdin. SIGTERM or Ctrl-C stop it too, with exit 0, after the runs in
    progress are stopped (their child processes get SIGTERM in turn: nothing is left running).
    The transport reads stdin in a thread that no cancel interrupts, so the process ends there."""
    import os
    import signal

    import anyio

    from . import mcp_runs

    async with anyio.create_task_group() as tg:

        async def stop_on_sigterm() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    await mcp_runs.stop_all()
                    sys.stderr.flush()
                    os._exit(0)

        tg.start_soon(stop_on_sigterm)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


def _http(server: Any, port: int) -> int:
    """Streamable HTTP at /mcp on 127.0.0.1 (the SDK refuses other Host and Origin headers);
    Ctrl-C or SIGTERM stop it and exit 0."""
    import anyio
    import uvicorn

    class Stoppable(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:  # stop; do not re-raise the signal at the end
            self.should_exit = True

    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(("127.0.0.1", port))
    except OSError as exc:
        listening.close()
        print(f"promstack mcp: cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port",
              file=sys.stderr)
        return 4
    listening.listen(128)
    app = server.streamable_http_app(host="127.0.0.1")
    http = Stoppable(uvicorn.Config(app, log_level="warning", lifespan="on"))

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(http.serve, [listening])
            while not http.started and not http.should_exit:
                await anyio.sleep(0.02)
            if http.started:
                print(f"promstack mcp: serving http://127.0.0.1:{listening.getsockname()[1]}/mcp (Ctrl-C to stop)",
                      file=sys.stderr, flush=True)

    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        pass
    finally:
        listening.close()
    return 0
