"""`promstack serve` and `Client(url=...)`: the shared render fixtures give the same messages
from the registry's files, from the API and from its render endpoint; tokens, ETags and cache
headers; a deploy seen at once; every refusal one JSON error; the command itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pytest_promstack import Client
from pytest_promstack.cli.serve import RegistryAPI, Server
from pytest_promstack.model.errors import PromstackError, TemplateError
from pytest_promstack.versions import PromptRegistry, RegistryError, prompt_of
from tests.support.project import record_prompt

FIXTURES = json.loads((Path(__file__).parents[1] / "data/render/fixtures.json").read_text(encoding="utf-8"))["cases"]


@pytest.fixture
def registry(tmp_path) -> Path:
    for case in FIXTURES:
        record_prompt(tmp_path, case["prompt"])
    return tmp_path


@pytest.fixture
def served(registry, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = Server(RegistryAPI(registry), "127.0.0.1", 0)
    yield server
    server.close()


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, dict(answer.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def path_of(prompt_id) -> str:
    return urllib.request.quote(str(prompt_id), safe="")


@pytest.mark.parametrize("case", FIXTURES, ids=[c["name"] for c in FIXTURES])
def test_every_shared_fixture_renders_alike_from_files_from_the_api_and_from_its_render_endpoint(registry, served,
                                                                                                  case):
    pid = str(case["prompt"]["id"])
    endpoint = f"{served.url}/v1/prompts/{path_of(pid)}/versions/1/render"
    status, _, said = call(endpoint, "POST", {"variables": case["variables"]})
    clients = [Client(registry), Client(registry, url=served.url)]
    if "error" in case:
        assert status == 422
        assert case["error"] in said["error"]
        assert said["error"].endswith(f'send it in the body: {{"variables": {{"{case["error"]}": ...}}}}')
        for client in clients:
            with pytest.raises(TemplateError, match=case["error"]):
                client.get_prompt(pid).render(**case["variables"])
        return
    assert (status, said["messages"]) == (200, case["messages"])
    for client in clients:
        assert client.get_prompt(pid).render(**case["variables"]) == case["messages"]


def test_lists_versions_and_labels_as_the_registry_has_them(registry, served):
    record_prompt(registry, {"id": "support", "template": "둘째 {{ input }}"})
    PromptRegistry(registry).set_label("support", "production", 1)
    status, _, listed = call(f"{served.url}/v1/prompts")
    assert status == 200
    support = next(p for p in listed["prompts"] if p["id"] == "support")
    assert (support["latest"], support["versions"], support["labels"]) == (2, 2, {"production": 1})
    assert [p["id"] for p in listed["prompts"]] == PromptRegistry(registry).ids()
    _, _, entry = call(f"{served.url}/v1/prompts/support")
    assert [v["number"] for v in entry["versions"]] == [1, 2]
    _, _, by_label = call(f"{served.url}/v1/prompts/support/labels/production")
    assert (by_label["number"], by_label["label"]) == (1, "production")
    client = Client(registry, url=served.url)
    assert client.get_prompt("support").number == 1  # production by default, as from files
    assert client.get_prompt("support", version=2).render(input="x") == [{"role": "user", "content": "둘째 x"}]


def test_a_version_is_cached_forever_and_a_label_revalidates_with_its_etag(registry, served):
    status, headers, _ = call(f"{served.url}/v1/prompts/support/versions/1")
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again, repeat_headers, body = call(f"{served.url}/v1/prompts/support/versions/1",
                                       headers={"If-None-Match": headers["ETag"]})
    assert (again, body) == (304, None)
    assert repeat_headers["ETag"] == headers["ETag"]
    PromptRegistry(registry).set_label("support", "production", 1)
    _, label_headers, _ = call(f"{served.url}/v1/prompts/support/labels/production")
    assert label_headers["Cache-Control"] == "public, no-cache"
    record_prompt(registry, {"id": "support", "template": "셋째 {{ input }}"})
    PromptRegistry(registry).set_label("support", "production", 2)  # a deploy: seen on the next request
    status, _, moved = call(f"{served.url}/v1/prompts/support/labels/production",
                            headers={"If-None-Match": label_headers["ETag"]})
    assert (status, moved["number"]) == (200, 2)


def test_the_client_rereads_a_label_after_its_ttl_and_a_version_never(registry, served):
    PromptRegistry(registry).set_label("support", "production", 1)
    client = Client(registry, url=served.url, label_ttl=30)
    now = [1000.0]
    client.clock = lambda: now[0]
    assert client.get_prompt("support", label="production").number == 1
    record_prompt(registry, {"id": "support", "template": "새 {{ input }}"})
    PromptRegistry(registry).set_label("support", "production", 2)
    now[0] += 29
    assert client.get_prompt("support", label="production").number == 1
    now[0] += 2
    assert client.get_prompt("support", label="production").number == 2
    assert client.get_prompt("support", version=1) is client.get_prompt("support", version=1)


def test_with_a_token_every_request_but_health_needs_it(registry, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = Server(RegistryAPI(registry, token="s3cr3t"), "127.0.0.1", 0)
    try:
        status, headers, said = call(f"{server.url}/v1/prompts")
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer realm="promstack"'
        assert "s3cr3t" not in json.dumps(said)
        assert call(f"{server.url}/v1/prompts", headers={"Authorization": "Bearer wrong"})[0] == 401
        status, headers, _ = call(f"{server.url}/v1/prompts/support/versions/1",
                                  headers={"Authorization": "Bearer s3cr3t"})
        assert status == 200
        assert headers["Cache-Control"].startswith("private, ")  # not kept by shared caches
        assert call(f"{server.url}/v1/health")[0] == 200
        with pytest.raises(PromstackError, match="wants a bearer token"):
            Client(registry, url=server.url).get_prompt("support", version=1)
        assert Client(registry, url=server.url, token="s3cr3t").get_prompt("support", version=1).number == 1
        monkeypatch.setenv("PROMSTACK_SERVE_TOKEN", "s3cr3t")
        assert Client(registry, url=server.url).get_prompt("support", version=1).number == 1
    finally:
        server.close()


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("GET", "/v1/prompts/nope", None, 404, "prompt 'nope' is not in the registry"),
    ("GET", "/v1/prompts/support/versions/9", None, 404, "has no version 9"),
    ("GET", "/v1/prompts/support/labels/staging", None, 404, "has no label 'staging'"),
    ("POST", "/v1/prompts/support/versions/1", {}, 405, "POST /v1/prompts/support/versions/1: use GET"),
    ("GET", "/v1/prompts/support/versions/1/render", None, 405, "use POST"),
    ("POST", "/v1/prompts/support/versions/1/render", {"variables": [1]}, 422, '"variables" must be an object'),
    ("GET", "/admin", None, 404, "/admin: no such endpoint"),
])
def test_each_refusal_is_one_json_error_with_its_reason(served, method, path, body, status, says):
    got, headers, said = call(served.url + path, method, body)
    assert got == status
    assert says in said["error"]
    assert headers["Cache-Control"] == "no-store"


def test_a_korean_id_is_a_percent_encoded_segment(registry, served):
    record_prompt(registry, {"id": "요약", "template": "요약: {{ text }}"})
    status, _, doc = call(f"{served.url}/v1/prompts/{path_of('요약')}/versions/1")
    assert (status, doc["id"]) == (200, "요약")
    assert Client(registry, url=served.url).get_prompt("요약").render(text="가") == [
        {"role": "user", "content": "요약: 가"}]


def test_a_served_text_that_does_not_hash_to_its_version_is_refused():
    doc = {"id": "support", "number": 1, "hash": "b48d6902", "messages": [{"role": "user", "content": "바뀜"}],
           "model": None, "params": {}}
    with pytest.raises(RegistryError, match=r"hashes to .*, not to its version's b48d6902: changed on the way"):
        prompt_of(doc, "http://x prompt 'support' v1")


def test_an_unreachable_server_is_one_line(registry):
    with pytest.raises(PromstackError, match=r"^http://127\.0\.0\.1:9: cannot read the prompt registry there"):
        Client(registry, url="http://127.0.0.1:9").get_prompt("support")


def test_the_command_serves_until_sigterm_and_says_where(registry):
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "PROMSTACK_SERVE_TOKEN": ""}
    command = "import sys; from pytest_promstack.cli import main; sys.exit(main())"
    with subprocess.Popen([sys.executable, "-c", command, "serve", "--port", "0"], cwd=registry,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            first = proc.stdout.readline()
            assert first.startswith(f"promstack serve: the registry of {registry} at http://127.0.0.1:")
            assert "no token ($PROMSTACK_SERVE_TOKEN unset); read-only; Ctrl-C stops" in first
            url = first.split(" at ")[1].split("/v1/prompts")[0]
            assert call(f"{url}/v1/prompts/support/versions/1")[0] == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize(("args", "says"), [
    (["--port", "http"], "--port http: give a port number from 0 to 65535"),
    (["--port", "²"], "--port ²: give a port number from 0 to 65535"),
    (["--port", "99999"], "--port 99999: give a port number from 0 to 65535"),
    (["--token-env", ""], "--token-env '': name an environment variable (PROMSTACK_SERVE_TOKEN)"),
])
def test_bad_serve_options_are_one_line(registry, capsys, monkeypatch, args, says):
    from pytest_promstack.cli import main

    monkeypatch.chdir(registry)
    assert main(["serve", *args]) == 4
    assert capsys.readouterr().err.strip() == f"promstack serve: {says}"


def test_serve_without_a_registry_is_one_line(tmp_path, capsys, monkeypatch):
    from pytest_promstack.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", "0"]) == 4
    assert "no prompt registry here" in capsys.readouterr().err


def test_a_token_that_no_header_can_carry_is_refused_at_start(registry, capsys, monkeypatch):
    from pytest_promstack.cli import main

    monkeypatch.chdir(registry)
    monkeypatch.setenv("PROMSTACK_SERVE_TOKEN", "토큰")
    assert main(["serve", "--port", "0"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("promstack serve: $PROMSTACK_SERVE_TOKEN: a bearer token is ASCII")
    assert "토큰" not in err


def test_a_version_answer_never_changes_when_labels_move(registry, served):
    status, headers, doc = call(f"{served.url}/v1/prompts/support/versions/1")
    assert status == 200
    assert "labels" not in doc
    PromptRegistry(registry).set_label("support", "staging", 1)
    again, _, _ = call(f"{served.url}/v1/prompts/support/versions/1", headers={"If-None-Match": headers["ETag"]})
    assert again == 304
    client = Client(registry, url=served.url)
    assert client.get_prompt("support", label="staging").labels == ("staging",)  # from the entry, as from files


def test_the_scheme_name_is_case_insensitive(registry, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = Server(RegistryAPI(registry, token="t0k"), "127.0.0.1", 0)
    try:
        for scheme in ("Bearer", "bearer", "BEARER"):
            assert call(f"{server.url}/v1/prompts", headers={"Authorization": f"{scheme} t0k"})[0] == 200
    finally:
        server.close()


@pytest.mark.parametrize(("method", "headers", "body", "status", "says"), [
    ("POST", {}, b'{"variables": {"input": ' + b"[" * 100000 + b"]" * 100000 + b"}}", 422, "nests too deep"),
    ("POST", {"Content-Length": "abc"}, None, 400, "Content-Length 'abc' is not a number of bytes"),
    ("OPTIONS", {}, None, 405, "OPTIONS /v1/prompts/support/versions/1/render: use POST"),
    ("FOO", {}, None, 501, "Unsupported method"),
])
def test_malformed_requests_get_a_json_error_and_the_server_goes_on(served, method, headers, body, status, says):
    import http.client

    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, "/v1/prompts/support/versions/1/render")
        for key, value in {"Content-Length": str(len(body or b"")), **headers}.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        assert answer.status == status
        assert says in json.loads(answer.read())["error"]
    finally:
        connection.close()
    assert call(f"{served.url}/v1/health")[0] == 200


def test_a_burst_of_clients_is_answered(served):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(lambda _: call(f"{served.url}/v1/prompts/support/versions/1")[0], range(256)))
    assert statuses == [200] * 256


class Fake:
    """A server on 127.0.0.1 answering every GET with ``status``, ``body`` and ``headers``, and
    keeping the Authorization header of each request."""

    def __init__(self, status=200, body=b"", headers=None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self
        self.auth: list = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.auth.append(self.headers.get("Authorization"))
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def test_a_redirect_is_not_followed_and_the_token_stays_home(registry, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    elsewhere = Fake(body=b"{}")
    hop = Fake(302, headers={"Location": elsewhere.url + "/v1/prompts/support"})
    try:
        with pytest.raises(PromstackError, match=r"answered with a redirect \(HTTP 302 to http://127\.0\.0\.1:"):
            Client(registry, url=hop.url, token="s3cr3t-tok").get_prompt("support")
        assert elsewhere.auth == []
    finally:
        hop.close()
        elsewhere.close()


@pytest.mark.parametrize("body", [b"[1,2,3]", b"{}", b'{"labels": [], "versions": "x"}', b"<html>hi</html>"])
def test_an_answer_of_another_shape_is_one_line(registry, monkeypatch, body):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fake = Fake(body=body)
    try:
        with pytest.raises(PromstackError, match=r"^http://127\.0\.0\.1:\d+(/v1/prompts/support: not an answer of "
                                                 r"promstack's registry API|: cannot read the prompt registry there)"):
            Client(registry, url=fake.url).get_prompt("support")
    finally:
        fake.close()


@pytest.mark.parametrize(("url", "token", "says"), [
    ("not-a-url", None, "give the http(s) address of `promstack serve`"),
    ("http://127.0.0.1:8765", "토큰", "the registry API's token is ASCII"),
])
def test_a_bad_address_or_token_is_one_line(registry, url, token, says):
    with pytest.raises(PromstackError, match=re.escape(says)):
        Client(registry, url=url, token=token)
