"""Priced hosted models (OpenAI, Anthropic, ...) go through the direct transport: called
without importing litellm, shown in the header, priced as litellm prices them, with the key
litellm would use (execute/providers/routes.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from pytest_promstack.execute.providers.routes import model_route, route, summary
from pytest_promstack.model.types import Request
from tests.support.fake_openai import Reply
from tests.support.project import KEY_ENV
from tests.support.run import run_pytest

CASES = "input,__expected\n주문 상태,contains:주문\nrefund please,contains:refund\n"
HOOK = "import sys\n\ndef pytest_unconfigure(config):\n    print('LITELLM', 'litellm' in sys.modules)\n"


def _config(models, **extra):
    return yaml.safe_dump({"models": models, "defaults": {"temperature": 0, "max_tokens": 64},
                           "suites": {"s": {"tests": ["prompt_tests/*"]}}, **extra}, allow_unicode=True)


def _costs(path):
    doc = json.loads((path / "results.json").read_text(encoding="utf-8"))
    return {(c["model"], c["vars"]["input"]): (c["input_tokens"], c["output_tokens"], c["cost_usd"]) for c in doc["cases"]}


def test_priced_openai_and_anthropic_models_are_called_directly_and_priced_as_litellm(project):
    root = project.server.url.removesuffix("/v1")
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": project.server.url, "api_key_env": KEY_ENV},
              {"name": "claude", "model": "anthropic/claude-haiku-4-5", "api_base": root, "api_key_env": KEY_ENV}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES, "conftest.py": HOOK})
    out = run_pytest("-s", "--promstack-json", "results.json", cwd=project.path, env={KEY_ENV: "sk-test"})
    assert out.returncode == 0, out.stdout
    assert "promstack: transport: direct gpt, claude" in out.stdout
    assert "LITELLM False" in out.stdout
    assert project.server.count == 4
    assert [h.get("x-api-key") for h in project.server.headers if "anthropic-version" in h] == ["sk-test"] * 2

    from pytest_promstack.execute.litellm_import import import_litellm

    litellm = import_litellm()
    for (model, _), (tokens_in, tokens_out, cost) in _costs(project.path).items():
        name = {"gpt": "openai/gpt-4o-mini", "claude": "anthropic/claude-haiku-4-5"}[model]
        expected = sum(litellm.cost_per_token(model=name, prompt_tokens=tokens_in, completion_tokens=tokens_out))
        assert tokens_in > 0
        assert tokens_out > 0
        assert cost == expected, (model, cost, expected)


def test_a_hosted_model_takes_the_key_and_base_url_litellm_would_take_from_the_environment(project):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini"}, {"name": "claude", "model": "anthropic/claude-haiku-4-5"}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES})
    env = {"OPENAI_BASE_URL": project.server.url, "OPENAI_API_KEY": "sk-openai",
           "ANTHROPIC_API_BASE": project.server.url.removesuffix("/v1"), "ANTHROPIC_API_KEY": "sk-ant"}
    out = run_pytest(cwd=project.path, env=env)
    assert out.returncode == 0, out.stdout
    keys = sorted(h.get("Authorization") or h.get("x-api-key") for h in project.server.headers)
    assert keys == ["Bearer sk-openai", "Bearer sk-openai", "sk-ant", "sk-ant"]


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_a_key_from_the_environment_never_goes_to_an_api_base_of_the_config(project, transport):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": project.server.url},
              {"name": "claude", "model": "anthropic/claude-haiku-4-5",
               "api_base": project.server.url.removesuffix("/v1")}]
    project.write({"promstack.yaml": _config(models, transport=transport), "prompt_tests/a.csv": CASES})
    out = run_pytest(cwd=project.path, env={"OPENAI_API_KEY": "sk-openai-secret", "ANTHROPIC_API_KEY": "sk-ant-secret"})
    assert out.returncode == 0, out.stdout
    assert project.server.count == 4
    sent = json.dumps(project.server.headers)
    assert "secret" not in sent


def test_null_params_are_left_out_as_litellm_leaves_them_out(project):
    models = [{"name": "gpt", "model": "openai/gpt-4o-mini", "api_base": project.server.url, "api_key_env": KEY_ENV,
               "params": {"temperature": None, "max_tokens": None}},
              {"name": "claude", "model": "anthropic/claude-haiku-4-5", "api_key_env": KEY_ENV,
               "api_base": project.server.url.removesuffix("/v1"), "params": {"temperature": None, "max_tokens": None}}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES})
    out = run_pytest(cwd=project.path, env={KEY_ENV: "sk-test"})
    assert out.returncode == 0, out.stdout
    assert all(None not in body.values() for body in project.server.requests)
    assert sorted(body.get("max_tokens") for body in project.server.requests if "system" in body or
                  body["model"].startswith("claude")) == [64000, 64000]  # the model's max_output_tokens


def test_a_hosted_model_without_a_key_errors_naming_the_variable_to_set(project, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    project.write({"promstack.yaml": _config([{"name": "gpt", "model": "openai/gpt-4o-mini"}]),
                   "prompt_tests/a.csv": CASES})
    out = run_pytest(cwd=project.path)
    assert out.returncode == 1
    assert "AuthenticationError: no API key for gpt: set OPENAI_API_KEY (or name the variable holding it in " \
           "api_key_env)" in out.stdout
    assert project.server.count == 0


def test_the_header_says_which_models_stay_with_litellm_and_why():
    def req(model, **params):
        return Request(model=model.split("/")[0], litellm_model=model, messages=({"role": "user", "content": "x"},),
                       params=params, key=model)

    line = summary([req("openai/gpt-4o-mini", temperature=0), req("gemini/gemini-2.5-flash"),
                    req("anthropic/claude-haiku-4-5", reasoning_effort="low"), req("local/gemma-3-270m")], "auto")
    assert line == ("transport: direct openai; litellm gemini (gemini: not a provider promstack calls directly), "
                    "anthropic (param reasoning_effort is mapped by litellm for anthropic)")
    assert summary([req("openai/gpt-4o-mini")], "litellm") == "transport: litellm openai (transport: litellm)"
    assert not model_route("openai/gpt-5-mini", False, frozenset(), False).direct
    assert not model_route("openai/my-llama", False, frozenset(), False).direct  # no api_base, not priced
    assert model_route("openai/my-llama", True, frozenset({"repeat_penalty"}), False).direct  # self-hosted


def test_messages_litellm_reshapes_keep_the_request_with_litellm():
    def way(model, *messages):
        return route(Request(model="m", litellm_model=model, messages=messages, params={}, key="k"))

    user, assistant = {"role": "user", "content": "질문"}, {"role": "assistant", "content": "답"}
    system = {"role": "system", "content": "간결하게"}
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
    assert way("anthropic/claude-haiku-4-5", system, user, assistant, user).wire == "anthropic"
    assert not way("anthropic/claude-haiku-4-5", user, assistant).direct  # a prefilled answer
    assert not way("anthropic/claude-haiku-4-5", user, system, user).direct  # a system turn mid-way
    assert not way("anthropic/claude-haiku-4-5", image).direct
    assert not way("openai/gpt-4o-mini", image).direct
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert way("openai/gpt-4o-mini", user, call, result).wire == "openai"
    assert not way("groq/openai/gpt-oss-20b", user).direct  # a reasoning model


def test_an_anthropic_error_or_malformed_answer_is_one_line_as_litellm_names_it(project):
    answers = iter([Reply(status=429, text="Number of request tokens has exceeded your per-minute rate limit"),
                    Reply(body={"type": "message", "content": [{"type": "text", "text": 5}], "usage": {}})])
    project.server.respond = lambda body: next(answers)
    models = [{"name": "claude", "model": "anthropic/claude-haiku-4-5", "api_base": project.server.url.removesuffix("/v1"),
               "api_key_env": KEY_ENV}]
    project.write({"promstack.yaml": _config(models, max_retries=0), "prompt_tests/a.csv": CASES})
    result = project.run("-p", "no:xdist")
    result.assert_outcomes(errors=2)
    text = result.stdout.str()
    assert "RateLimitError (HTTP 429): Number of request tokens has exceeded your per-minute rate limit" in text
    assert "APIError: the provider's answer is not a message: a text block's text is 5, not a text" in text


def test_an_openai_answer_without_a_message_is_an_error_not_an_empty_reply():
    from pytest_promstack.execute.providers.openai_compat import _response

    req = Request(model="gpt", litellm_model="openai/gpt-4o-mini", messages=(), params={}, key="k")
    resp = _response({"choices": [{"message": None, "finish_reason": "stop"}], "usage": {}}, req, 1.0)
    assert resp.error == "APIError: the provider's answer is not a chat completion: choices[0].message is NoneType, " \
                         "not an object"


def test_the_proxy_the_environment_names_carries_the_calls_and_a_netrc_login_does_not_clash_with_the_key(
        project, tmp_path):
    # HTTP_PROXY names the loopback server as the proxy (it answers the absolute-form request), so
    # a server that does not exist is reached through it; ~/.netrc holds a login for that server,
    # which aiohttp's trust_env added as Basic auth beside the key's header (a ValueError per call)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine models.invalid login someone password secret\n", encoding="utf-8")
    (home / ".netrc").chmod(0o600)
    models = [{"name": "m", "model": "openai/own-model", "api_base": "http://models.invalid/v1",
               "api_key_env": KEY_ENV}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES})
    proxy = project.server.url.removesuffix("/v1").replace("http://", "http://proxy-user:proxy-pw@")
    # -W error: aiohttp 3.14 deprecates proxy_auth and BasicAuth, and a project with
    # filterwarnings = error had every proxied call fail on that warning
    out = run_pytest("--promstack-cache", "off", "-W", "error", cwd=project.path,
                     env={KEY_ENV: "sk-test", "HOME": str(home), "HTTP_PROXY": proxy, "NO_PROXY": ""})
    assert out.returncode == 0, out.stdout
    assert project.server.count == 2
    import base64

    login = "Basic " + base64.b64encode(b"proxy-user:proxy-pw").decode()
    assert [(h.get("Authorization"), h.get("Proxy-Authorization"), h.get("Host")) for h in project.server.headers] \
        == [("Bearer sk-test", login, "models.invalid")] * 2


def test_a_proxy_without_a_scheme_is_an_http_proxy_and_an_https_proxy_is_not_bypassed(project):
    # as litellm's client (httpx) reads them: "host:port" is http://host:port; an https:// proxy
    # is used, not dropped (aiohttp's own lookup drops it, and the calls went around the proxy)
    models = [{"name": "m", "model": "openai/own-model", "api_base": "http://models.invalid/v1",
               "api_key_env": KEY_ENV}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES})
    bare = project.server.url.removesuffix("/v1").removeprefix("http://")
    out = run_pytest("--promstack-cache", "off", cwd=project.path,
                     env={KEY_ENV: "sk-test", "HTTP_PROXY": bare, "NO_PROXY": ""})
    assert out.returncode == 0, out.stdout
    assert [h.get("Host") for h in project.server.headers] == ["models.invalid"] * 2

    models[0]["api_base"] = project.server.url  # reachable directly: a dropped proxy would pass
    project.write({"promstack.yaml": _config(models, max_retries=0)})
    out = run_pytest("--promstack-cache", "off", cwd=project.path,
                     env={KEY_ENV: "sk-test", "HTTP_PROXY": "https://proxy-user:pw@127.0.0.1:9", "NO_PROXY": ""})
    assert out.returncode == 1, out.stdout
    assert project.server.count == 2  # the first run's only
    assert out.stdout.count("model call failed: APIConnectionError: through the proxy https://127.0.0.1:9 "
                            "(NO_PROXY keeps a host direct): Cannot connect to host 127.0.0.1:9") == 2, out.stdout
    assert "proxy-user" not in out.stdout


def test_no_proxy_keeps_the_calls_to_its_hosts_direct(project):
    models = [{"name": "m", "model": "openai/own-model", "api_base": project.server.url, "api_key_env": KEY_ENV}]
    project.write({"promstack.yaml": _config(models), "prompt_tests/a.csv": CASES})
    out = run_pytest("--promstack-cache", "off", cwd=project.path,
                     env={KEY_ENV: "sk-test", "HTTP_PROXY": "http://127.0.0.1:9",
                          "NO_PROXY": "example.com, 127.0.0.1 ,.corp.local"})
    assert out.returncode == 0, out.stdout
    assert project.server.count == 2
