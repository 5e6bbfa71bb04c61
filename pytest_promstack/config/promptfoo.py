"""promptfoo's configs here: a ``promptfooconfig.yaml`` read as the promstack config it means
(its providers as models, its prompts and tests as one suite), and promptfoo's provider ids as
litellm model names (``openai:gpt-4o-mini`` -> ``openai/gpt-4o-mini``,
``anthropic:messages:claude-3-5-haiku-latest`` -> ``anthropic/claude-3-5-haiku-latest``,
``ollama:chat:llama3`` -> ``ollama_chat/llama3``)."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import Any

# promptfoo's provider prefix -> litellm's
PREFIXES = {
    "openai": "openai", "anthropic": "anthropic", "azure": "azure", "azureopenai": "azure", "bedrock": "bedrock",
    "vertex": "vertex_ai", "google": "gemini", "gemini": "gemini", "mistral": "mistral", "groq": "groq",
    "openrouter": "openrouter", "togetherai": "together_ai", "deepseek": "deepseek", "perplexity": "perplexity",
    "cohere": "cohere", "fireworks": "fireworks_ai", "xai": "xai", "huggingface": "huggingface",
    "ollama": "ollama_chat", "cerebras": "cerebras", "deepinfra": "deepinfra", "replicate": "replicate",
}
KINDS = ("chat", "completion", "messages", "text-generation", "responses")
MEASURE_KINDS = ("embedding", "embeddings", "moderation")  # openai:embedding:x is litellm's openai/x too
NOT_CHAT = {"assistant": "an OpenAI assistant (the Assistants API)", "realtime": "a realtime (audio) session",
            "image": "an image model", "agents": "an agents SDK run", "transcription": "a transcription model",
            "speech": "a speech model", "video": "a video model"}
NOT_MODELS = {  # promptfoo providers that are not a chat model: refused with the reason
    "echo": "promptfoo's echo returns the prompt", "http": "an HTTP endpoint of your own",
    "https": "an HTTP endpoint of your own", "browser": "a browser it drives", "sequence": "a series of providers",
    "websocket": "a websocket endpoint", "webhook": "a webhook", "exec": "a command it runs",
    "python": "a python file of promptfoo's kind", "file": "a provider file", "golang": "a Go program",
    "simulated-user": "a simulated user", "mcp": "an MCP server",
}


class ProviderProblem(ValueError):
    pass


def litellm_model(provider: str) -> str:
    """The litellm model name for a promptfoo provider id; raises ``ProviderProblem`` (one line
    with the fix) for one we cannot map."""
    kind = provider.split(":", 1)[0].lower()
    if kind in NOT_MODELS or provider.startswith(("http://", "https://", "file://", "python:", "exec:")):
        what = NOT_MODELS.get(kind, "code or a URL of your own")
        raise ProviderProblem(f"provider {provider!r} is not a model litellm can call ({what}); point a models: entry "
                              "at the service (api_base), or use a python: target (docs/models-and-transports.md)")
    if ":" not in provider:  # a litellm name already (openai/gpt-4o-mini)
        return provider
    prefix, _, rest = provider.partition(":")
    if prefix not in PREFIXES or not rest:
        raise ProviderProblem(
            f"provider {provider!r} has no litellm equivalent here; name a model configured in promstack.yaml "
            f"(models:) or a litellm model name, or use one of the promptfoo prefixes {', '.join(sorted(PREFIXES))}")
    kind, _, model = rest.partition(":")
    if kind in NOT_CHAT and model:
        raise ProviderProblem(f"provider {provider!r} is {NOT_CHAT[kind]}, not a chat model litellm calls here; list a "
                              f"chat model ({prefix}:chat:<model>), or put your assistant behind a python: target "
                              "(docs/models-and-transports.md)")
    if (kind in KINDS or kind in MEASURE_KINDS) and model:
        rest = model
    if prefix == "ollama" and kind == "completion":
        return f"ollama/{rest}"
    return f"{PREFIXES[prefix]}/{rest}"


# ---- a promptfoo config as a suite ---------------------------------------------------------

# promptfoo's provider config keys that are request parameters here
PARAMS = {"temperature", "max_tokens", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed",
          "response_format", "max_completion_tokens", "reasoning_effort",
          "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"}
API_BASE = ("apiBaseUrl", "apiHost", "baseUrl")
# about promptfoo's own output and sharing: nothing to run
IGNORED = {"description", "outputPath", "sharing", "writeLatestResults", "tags", "metadata"}
NOT_YET = {
    "env": "set the variables in the environment of the run (keys are never read from a file here)",
    "extensions": "hooks are pytest's here: write them in a conftest.py",
    "nunjucksFilters": "templates are Jinja2 here: a filter is registered in Python",
    "derivedMetrics": "the run's figures are in the results JSON (--promstack-json)",
    "redteam": "red-teaming is not part of promptfoo compatibility here",
    "commandLineOptions": "give them on the command line (pytest's and promstack's options, e.g. -n 4, "
                          "--promstack-cache off)",
}
KNOWN = {"prompts", "providers", "targets", "tests", "scenarios", "defaultTest", "evaluateOptions", *IGNORED}
DEFAULT_TEST = {"assert", "vars", "options", "threshold", "metadata"}  # the defaultTest keys run here
GENERATOR = re.compile(r"^(?:file://)?[^*?]*\.(?:py|js|ts|mjs|cjs)(?::\w+)?$", re.I)  # file://gen.py:make_tests
SEPARATOR = re.compile(r"^---[ \t]*$", re.M)


def translate(raw: dict[str, Any], path: Path, name: str = "promptfoo", base: Path | None = None
              ) -> tuple[dict[str, Any], list[str]]:
    """A promptfoo config -> the promstack config it means (models:, one suite ``name``),
    and its problems, each naming the key and what to write instead. Paths in promptfoo's
    config are relative to its folder; in the result, to ``base`` (the folder of the
    promstack.yaml that names it; the config's own folder by default)."""
    if base is not None and path.parent.resolve() != base.resolve():
        inner, problems = translate(raw, path, name)
        prefix = Path(os.path.relpath(path.parent.resolve(), base.resolve()))  # may start with ..
        suite = inner["suites"][name]
        suite["prompts"] = [(prefix / p).as_posix() if isinstance(p, str) else p for p in suite["prompts"]]
        suite["tests"] = [(prefix / t).as_posix() for t in suite["tests"]]
        for params in (m.get("params", {}) for m in inner["models"]):  # file://tools.json: beside the config
            params.update({k: f"file://{(prefix / v[7:]).as_posix()}" for k, v in params.items()
                           if k in ("tools", "functions") and isinstance(v, str) and v.startswith("file://")})
        return inner, problems
    problems: list[str] = []
    for key in sorted(set(raw) - KNOWN, key=str):
        hint = NOT_YET.get(key)
        problems.append(f"{key}: not supported here; {hint}" if hint else
                        f"{key}: not a promptfoo config key we know (known: {', '.join(sorted(KNOWN))})")
    base = path.parent
    models = _providers(raw.get("providers", raw.get("targets")), problems)
    suite: dict[str, Any] = {"prompts": _prompts(raw.get("prompts"), base, problems),
                             "tests": _tests(raw.get("tests"), path, "scenarios" in raw, problems),
                             "models": [m["name"] for m in models]}
    default, grader = _default_test(_default_mapping(raw.get("defaultTest"), base, problems), problems)
    suite.update(default)
    out: dict[str, Any] = {"models": models, "suites": {name: suite}}
    if grader is not None:
        out.update(_grader(grader, models, problems))
    options = raw.get("evaluateOptions") or {}
    for key, value in options.items():
        if key == "maxConcurrency":
            out["concurrency"] = value
        elif key == "repeat":
            out["repeat"] = value
        elif key == "cache":
            if value is False:
                out["cache"] = {"mode": "off"}
        elif key == "delay":
            if value:
                problems.append("evaluateOptions.delay: not supported here; calls are paced by concurrency "
                                "(maxConcurrency: 1 for one at a time) and retried on 429 with backoff")
        elif key != "showProgressBar":  # how promptfoo draws its progress: nothing to run
            problems.append(f"evaluateOptions.{key}: not supported here")
    return out, problems


def _default_mapping(raw: Any, base: Path, problems: list[str]) -> dict[str, Any]:
    """defaultTest as written, or read from ``file://default.yaml`` (relative to the config,
    inside the project; YAML or JSON holding the mapping)."""
    if raw is None:
        return {}
    if isinstance(raw, str) and raw.startswith("file://"):
        raw = _mapping_file(raw, base, "defaultTest", problems)
    if not isinstance(raw, dict):
        problems.append("defaultTest: must be a mapping (assert:, vars:, options:, threshold:, metadata:) or "
                        "file://default.yaml holding one")
        return {}
    return raw


def _mapping_file(ref: str, base: Path, where: str, problems: list[str]) -> Any:
    from ..util.paths import inside, outside, project_root
    from ..util.strict import load_yaml

    path, project = base / ref[len("file://"):], project_root(base)
    if not inside(path, project):
        problems.append(f"{where}: {outside(path, project)}")
        return {}
    if not path.is_file():
        problems.append(f"{where}: {ref!r}: no such file (the path is relative to the config's folder)")
        return {}
    try:
        return load_yaml(path.read_text(encoding="utf-8-sig"))  # JSON is YAML
    except Exception as exc:  # a file from a pull request: its problem is one line
        problems.append(f"{where}: {ref} cannot be read as YAML or JSON: {' '.join(str(exc).split())}")
        return {}


def _default_test(default: dict[str, Any], problems: list[str]) -> tuple[dict[str, Any], Any]:
    """defaultTest -> the suite's assert:, vars: and case_defaults: (options, threshold,
    metadata), and its grading provider (``options.provider``), if any."""
    out: dict[str, Any] = {}
    for key in sorted(set(default) - DEFAULT_TEST, key=str):
        problems.append(f"defaultTest.{key}: not supported here; put it on each test")
    if default.get("assert"):
        out["assert"] = default["assert"]
    if default.get("vars"):
        out["vars"] = default["vars"]
    options = default.get("options") or {}
    defaults = {k: default[k] for k in ("threshold", "metadata") if default.get(k) is not None}
    for key, value in (options.items() if isinstance(options, dict) else ()):
        if key in ("prefix", "suffix", "transform"):
            defaults[key] = value
        elif key != "provider":
            problems.append(f"defaultTest.options.{key}: not supported here (options here: prefix, suffix, "
                            "transform, provider)")
    if defaults:
        out["case_defaults"] = defaults
    return out, options.get("provider") if isinstance(options, dict) else None


def _grader(raw: Any, models: list[dict[str, Any]], problems: list[str]) -> dict[str, str]:
    """``defaultTest.options.provider``, promptfoo's grading provider, as the settings it means
    here: ``default_judge`` (llm-rubric, factuality, g-eval ...), ``embedding_model``
    (similar's) or ``moderation_model``, each a models: entry under its label or id, which a
    provider of the same name and settings is already. A provider per kind (``{text:,
    embedding:}``) gives each its own; an embedding or moderation provider alone
    (``openai:embedding:…``, ``openai:moderation:…``) is that model only."""
    where = "defaultTest.options.provider"
    out: dict[str, str | None] = {}
    if isinstance(raw, dict) and "id" not in raw and set(raw) & {"text", "embedding", "classification"}:
        for key in sorted(set(raw) - {"text", "embedding", "classification"}, key=str):
            problems.append(f"{where}.{key}: not supported here (a provider per kind takes text:, embedding: and "
                            "classification:)")
        # classification: (the classifier's model) is read and not run: the default judge classifies
        if raw.get("text") is not None:
            out["default_judge"] = _added(raw["text"], f"{where}.text", models, problems)
        if raw.get("embedding") is not None:
            out["embedding_model"] = _added(raw["embedding"], f"{where}.embedding", models, problems, chat=False)
    else:
        key = {"embedding": "embedding_model", "moderation": "moderation_model"}.get(_kind(raw), "default_judge")
        out[key] = _added(raw, where, models, problems, chat=key == "default_judge")
    return {k: v for k, v in out.items() if v is not None}


def _kind(raw: Any) -> str:
    """"embedding", "moderation" or "chat": what a provider id (or ``{id: ...}``) names."""
    ref = raw.get("id") if isinstance(raw, dict) else raw
    parts = ref.split(":") if isinstance(ref, str) else []
    kind = parts[1] if len(parts) > 2 else ""
    return "embedding" if kind in ("embedding", "embeddings") else "moderation" if kind == "moderation" else "chat"


def _added(raw: Any, where: str, models: list[dict[str, Any]], problems: list[str], chat: bool = True
           ) -> str | None:
    """The models: name of a grading provider, added to ``models`` unless it is there already."""
    entry = _provider(raw, where, problems, chat=chat)
    if entry is None:
        return None
    same = next((m for m in models if m["name"] == entry["name"]), None)
    if same == entry:  # the grader is one of the providers
        return str(entry["name"])
    if same is not None:
        entry["name"] = f"{entry['name']} (grader)"
    models.append(entry)  # a model to call, not a target: the suite's models are the providers
    return str(entry["name"])


def _providers(raw: Any, problems: list[str]) -> list[dict[str, Any]]:
    items = [raw] if isinstance(raw, str | dict) else list(raw or [])
    if not items:
        problems.append("providers: list at least one, e.g. openai:gpt-4o-mini")
    models = [_provider(item, f"providers[{i}]", problems) for i, item in enumerate(items)]
    return [m for m in models if m is not None]


def _provider(item: Any, where: str, problems: list[str], chat: bool = True) -> dict[str, Any] | None:
    """One promptfoo provider (``openai:gpt-4o-mini`` or ``{id, label, config}``) as a models:
    entry; ``chat=False``: an embedding provider (for ``similar``)."""
    spec = {"id": item} if isinstance(item, str) else item
    if not isinstance(spec, dict) or not isinstance(spec.get("id"), str):
        problems.append(f"{where}: write a provider id (openai:gpt-4o-mini) or {{id: ..., config: ...}}")
        return None
    try:
        model = litellm_model(spec["id"])
        if chat and _kind(spec) != "chat":  # an embedding or moderation model answers no prompt
            raise ProviderProblem(f"provider {spec['id']!r} is an {_kind(spec)} model, which answers no prompt; "
                                  "list a chat model")
    except ProviderProblem as exc:
        problems.append(f"{where}: {exc}")
        return None
    entry: dict[str, Any] = {"name": str(spec.get("label") or spec["id"]), "model": model}
    for key, value in (spec.get("config") or {}).items():
        if key in PARAMS:
            entry.setdefault("params", {})[key] = value
        elif key in API_BASE:
            entry["api_base"] = value
        elif key == "apiKeyEnvar":
            entry["api_key_env"] = value
        else:
            problems.append(f"{where}.config.{key}: not supported here (request parameters: "
                            f"{', '.join(sorted(PARAMS))}; apiBaseUrl; apiKeyEnvar)")
    extra = sorted(set(spec) - {"id", "label", "config"})
    if extra:
        problems.append(f"{where}.{extra[0]}: not supported here; a provider has id, label and config")
    return entry


def _prompts(raw: Any, base: Path, problems: list[str]) -> list[Any]:
    items = [raw] if isinstance(raw, str | dict) else list(raw or [])
    if not items:
        problems.append("prompts: list at least one prompt (text with {{ var }}, or file://prompt.txt)")
    out: list[Any] = []
    for i, item in enumerate(items):
        where = f"prompts[{i}]"
        label = None
        if isinstance(item, dict):
            label = item.get("label") or (item.get("id") if "raw" in item else None)
            item = item.get("raw", item.get("id"))
        if not isinstance(item, str):
            problems.append(f"{where}: write the prompt's text, file://prompt.txt, or {{raw: ..., label: ...}}")
            continue
        if item.startswith("file://"):
            found = _prompt_files(item[len("file://"):], base, where, problems)
            out += [_labelled(f, str(label), base, n) for n, f in enumerate(found)] if label else found
            continue
        messages = _chat(item)
        ident = str(label or f"prompt{i + 1}")
        out.append({"id": ident, "messages": messages} if messages else {"id": ident, "template": item})
    return out


def _labelled(prompt: Any, label: str, base: Path, index: int) -> Any:
    """A file prompt under its promptfoo label: the label is its id (with -2, -3 ... for more files)."""
    ident = label if index == 0 else f"{label}-{index + 1}"
    if isinstance(prompt, dict):
        return {**prompt, "id": ident}
    path = base / prompt
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        return prompt  # a prompt file of ours names itself (id:)
    return {"id": ident, "template": path.read_text(encoding="utf-8-sig")}


def _chat(text: str) -> list[dict[str, Any]] | None:
    """A prompt written as promptfoo's chat format, a JSON list of {role, content}."""
    if not text.lstrip().startswith("["):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m for m in data):
        return data
    return None


def _prompt_files(pattern: str, base: Path, where: str, problems: list[str]) -> list[Any]:
    from ..util.paths import inside, outside, project_root, rel

    project = project_root(base)
    paths = sorted(Path(p) for p in glob.glob(str(base / pattern)))
    if not paths:
        problems.append(f"{where}: no file matches {pattern!r} (relative to the config's folder)")
    out: list[Any] = []
    for path in paths:
        if not inside(path, project):
            problems.append(f"{where}: {outside(path, project)}")
        elif path.suffix.lower() in (".json", ".yaml", ".yml"):
            out.append(_chat_file(path, base, where, problems))
        elif path.suffix.lower() in (".py", ".js", ".ts", ".mjs", ".cjs"):
            problems.append(f"{where}: a prompt function ({rel(path, base)}) is code; write its text in a .txt file, "
                            "or build the prompt with a python: target")
        else:
            out += _text_prompts(path, base, where, problems)
    return out


def _text_prompts(path: Path, base: Path, where: str, problems: list[str]) -> list[Any]:
    """A text prompt file; one holding several prompts between lines of ``---`` (promptfoo's
    separator) is each of them, named ``<stem>-1``, ``<stem>-2``, ..."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{where}: {path.name} cannot be read as UTF-8 text ({exc})")
        return []
    parts = [p.strip("\n") for p in SEPARATOR.split(text)]
    if len(parts) == 1:
        return [path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)]
    return [{"id": f"{path.stem}-{i}", "template": part} for i, part in enumerate(parts, 1) if part.strip()]


def _chat_file(path: Path, base: Path, where: str, problems: list[str]) -> Any:
    from ..util.strict import load_yaml

    try:
        data = load_yaml(path.read_text(encoding="utf-8-sig"))  # JSON is YAML
    except Exception as exc:  # a file from a pull request: its problem is one line
        problems.append(f"{where}: {path.name} cannot be read as a chat prompt: {' '.join(str(exc).split())}")
        return None
    if isinstance(data, list):
        return {"id": path.stem, "messages": data}
    return path.relative_to(base).as_posix()  # a prompt file of ours (id:, template:)


def _tests(raw: Any, path: Path, scenarios: bool, problems: list[str]) -> list[str]:
    """Test files as globs relative to the config's folder; inline tests and scenarios are read
    from the config file itself (a ``tests:`` list in a YAML file is a test file here too)."""
    items = [raw] if isinstance(raw, str) else list(raw or [])
    if not items and not scenarios:
        problems.append("tests: list the tests inline, or name test files (file://tests.csv)")
    globs: list[str] = []
    inline = scenarios
    for i, item in enumerate(items):
        where = "tests" if isinstance(raw, str) else f"tests[{i}]"
        if isinstance(item, str) and (GENERATOR.match(item) or item.startswith(("http://", "https://"))):
            problems.append(f"{where}: {item!r}: test generators (python or javascript) and Google Sheets are not "
                            "read here; write the tests to a CSV, YAML, JSON or JSONL file and name it")
        elif isinstance(item, str):
            globs.append(item.removeprefix("file://"))
        elif isinstance(item, dict):
            inline = True
        else:
            problems.append(f"tests[{i}]: write a test ({{vars: ..., assert: ...}}) or file://tests.csv")
    return ([path.name] if inline else []) + globs
