"""``promstack mcp``: the project as an MCP server, on the official ``mcp`` Python SDK.

Prompts: the registry's prompts, each rendered with its template's variables as arguments and
an optional ``version`` argument (a number or a label; default the ``production`` label, else
the latest version). MCP prompt messages have only the roles user and assistant, so a system
message comes back as a user message (first, as it was), and the prompt's description says so.

Tools: list_prompts, show_prompt, diff_versions (read the registry in this process);
run_suite, run_case, evaluate_prompt, estimate_cost and deploy (``promstack test``,
``evaluate`` and ``deploy`` in a child process: mcp_runs.py), last_results. Resources: the
last run's results JSON and HTML report, and every version of every prompt's file.

What an agent sends is data: a model it names must be configured (or a litellm name, never a
``python:`` target), an assertion it sends may not run code (python, transforms), a path stays
inside the project, and ``deploy`` passes the gates exactly as the CLI's, ``force`` only when
the server was started with ``--allow-force``. Importing this module imports ``mcp`` (about
half a second), so only ``promstack mcp`` does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, GetPromptResult, PromptArgument, PromptMessage, TextContent, ToolAnnotations
from mcp.types import Prompt as MCPPrompt
from mcp.types import Resource as MCPResource
from mcp.types import ResourceTemplate as MCPResourceTemplate
from pydantic import Field, StrictInt

from .. import __version__
from ..model.errors import PromstackError, TemplateError
from . import mcp_runs

CacheMode = Literal["use", "replay", "refresh", "off", "record"]
Ref = str | StrictInt  # a version number (as a JSON number or text) or a label; never true or 1.5
PROMPT_URI = "promstack://prompts/{prompt_id}/{version}"
RESULTS_URI = "promstack://results/latest.json"
REPORT_URI = "promstack://results/latest.html"
INSTRUCTIONS = (
    "pytest-promstack: this project's prompt regression tests. The registry's prompts are MCP prompts and "
    "resources. run_suite runs `promstack test` (cached, replayable, with the project's gates) and answers the "
    "summary, the failing cases and the gates; last_results reads the last run's results again. deploy moves a "
    "label only when the version's evaluation passed its gates.")
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# a run calls the configured models (hosted ones too) and writes the cache, call log and results
RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
DEPLOYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)


class Project:
    """The project the server was started on; its config and registry are read afresh for
    every request, so an edit or a deploy shows at once."""

    def __init__(self, start: Path, config: str | None) -> None:
        self.start, self.config = start, config
        self._loaded: tuple[tuple[int, int] | None, Any] | None = None
        self.settings()  # a missing or broken config stops the command before it serves

    def settings(self) -> Any:
        """The settings, read again when the config file changed (reading it is most of a
        prompt request's time)."""
        from ..config.settings import load_settings

        if self._loaded is not None and self._loaded[0] is not None \
                and self._loaded[0] == _stamp(self._loaded[1].config_file):
            return self._loaded[1]
        settings = load_settings(self.start, {"config": self.config})
        self._loaded = (_stamp(settings.config_file), settings)
        return settings

    def registry(self) -> Any:
        from ..versions import PromptRegistry

        return PromptRegistry(self.settings().root, readonly=True)

    def inside(self, given: str, what: str) -> Path:
        """A path an agent gave, relative to the project's folder; never outside it."""
        root = self.settings().root.resolve()
        path = (root / given).resolve()
        if not path.is_relative_to(root):
            raise PromstackError(f"{what} {given!r}: outside the project ({root}); give a path inside it")
        return path


def _stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat is not None else None


class PromstackMCP(MCPServer):
    """The registry's prompts are listed and rendered on every request (no restart after a
    new version or a deploy); versions are loaded once (they never change)."""

    def __init__(self, project: Project, allow_force: bool = False) -> None:
        super().__init__("promstack", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
        self.project = project
        self.allow_force = allow_force
        self.running = anyio.Lock()  # one run at a time: runs share the cache, the call log and the results files
        self._prompts: dict[tuple[str, int, str], Any] = {}
        _tools(self)
        _resources(self)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """Arguments of the wrong shape are one line naming each argument and what it takes
        (pydantic's own report spans lines and links to its docs)."""
        from pydantic import ValidationError

        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {_arguments_problem(exc.__cause__)}") from exc.__cause__

    # -- the registry -------------------------------------------------------------------------

    def version(self, registry: Any, prompt_id: str, ref: str | None = None) -> tuple[dict[str, Any], Any]:
        """(version entry, Prompt) by number or label; default production, else the latest."""
        from ..versions import prompt_of, version_doc

        if ref is None or not str(ref).strip():
            labels = registry.entry(prompt_id).get("labels") or {}
            ref = "production" if "production" in labels else None
        v = registry.resolve(prompt_id, ref)
        key = (prompt_id, int(v["number"]), v["hash"])
        if key not in self._prompts:
            doc = version_doc(registry, prompt_id, int(v["number"]))
            self._prompts[key] = prompt_of(doc, f"prompt {prompt_id!r} v{v['number']}")
        return v, self._prompts[key]

    async def list_prompts(self) -> list[MCPPrompt]:
        try:
            registry = self.project.registry()
            listed = []
            for pid in registry.ids():
                try:
                    v, prompt = self.version(registry, pid)
                except PromstackError as exc:  # one unreadable version: listed as such, the others as they are
                    listed.append(MCPPrompt(name=pid, description=f"unreadable: {exc}", arguments=[]))
                    continue
                labels = registry.labels_of(pid, int(v["number"]))
                needed = template_variables(prompt)
                listed.append(MCPPrompt(
                    name=pid, description=_described(pid, v, labels, prompt),
                    arguments=[*(PromptArgument(name=name, required=required) for name, required in needed.items()),
                               PromptArgument(name="prompt_version" if "version" in needed else "version",
                                              required=False,
                                              description="a version number or a label (default: production, "
                                                          "else the latest version)")]))
        except PromstackError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return listed

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None,
                         context: Context[Any, Any] | None = None) -> GetPromptResult:
        values = dict(arguments or {})
        ref = values.pop("prompt_version", None)  # the version's argument when the template has a `version`
        try:
            registry = self.project.registry()
            if name not in registry.ids():
                raise PromstackError(f"no prompt {name!r} in the registry; its prompts: "
                                     f"{', '.join(registry.ids()) or 'none'}")
            if ref is None and "version" in values and "version" not in template_variables(
                    self.version(registry, name)[1]):
                ref = values.pop("version")
            v, prompt = self.version(registry, name, ref)
            try:
                messages = prompt.render(values)
            except TemplateError as exc:
                if exc.variable is None:
                    raise
                raise PromstackError(f"prompt {name!r} v{v['number']} needs the argument {exc.variable!r}") from None
        except PromstackError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        labels = registry.labels_of(name, int(v["number"]))
        return GetPromptResult(description=_described(name, v, labels, prompt), messages=[
            PromptMessage(role="assistant" if m.get("role") == "assistant" else "user",
                          content=TextContent(type="text", text=_text(m.get("content")))) for m in messages])

    # -- prompt files as resources ------------------------------------------------------------

    async def list_resources(self) -> list[MCPResource]:
        listed = await super().list_resources()
        try:
            registry = self.project.registry()
            for pid in registry.ids():
                entry = registry.entry(pid)
                refs = [*sorted(entry.get("labels") or {}), str(entry["versions"][-1]["number"])]
                for ref in refs:
                    listed.append(MCPResource(uri=prompt_uri(pid, ref), name=f"{pid}@{ref}",
                                              description=f"prompt {pid}, {_ref_words(ref)}: its file",
                                              mime_type=_mime(entry.get("source") or "")))
        except PromstackError:
            pass  # an unreadable registry lists no prompt files; reading one says why
        return listed

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        return [*await super().list_resource_templates(),
                MCPResourceTemplate(uri_template=PROMPT_URI, name="prompt file",
                                    description="a version of a prompt's file: a number or a label; the id "
                                                "percent-encoded")]

    async def read_resource(self, uri: Any, context: Context[Any, Any] | None = None) -> Any:
        parts = urlsplit(str(uri))
        if (parts.scheme, parts.netloc) != ("promstack", "prompts"):
            return await super().read_resource(uri, context)
        from mcp.server.lowlevel.helper_types import ReadResourceContents

        segments = parts.path.strip("/").split("/")
        try:
            if len(segments) != 2:
                raise PromstackError(f"{uri}: not a prompt file's address; use {PROMPT_URI}")
            pid, ref = (unquote(s) for s in segments)
            registry = self.project.registry()
            number = int(registry.resolve(pid, ref)["number"])
            text = registry.text(pid, number)
        except PromstackError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return [ReadResourceContents(content=text, mime_type=_mime(registry.entry(pid).get("source") or ""))]


def prompt_uri(prompt_id: str, ref: str) -> str:
    return f"promstack://prompts/{quote(prompt_id, safe='')}/{quote(ref, safe='')}"


def template_variables(prompt: Any) -> dict[str, bool]:
    """The template's variables, each with whether a render needs it: one left out fails
    the render (a ``default`` or an ``is defined`` test makes it optional; undefined is an error)."""
    from ..plan.probes import prompt_variables

    names = sorted(prompt_variables(prompt))
    needed = {}
    for name in names:
        try:
            prompt.render({other: "x" for other in names if other != name})
            needed[name] = False
        except TemplateError as exc:
            needed[name] = exc.variable in (None, name)
        except Exception:
            needed[name] = True
    return needed


def _described(pid: str, v: dict[str, Any], labels: list[str], prompt: Any) -> str:
    tags = f" [{', '.join(labels)}]" if labels else ""
    words = f"{pid} v{v['number']}{tags}, hash {v['hash']}"
    if any(m.get("role") == "system" for m in prompt.messages):
        words += "; its system message comes as the first user message (MCP prompts have only user and assistant)"
    return words


def _rendered(prompt: Any, variables: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The messages, or one line naming a missing variable in the tool's terms."""
    try:
        return prompt.render(variables)
    except TemplateError as exc:
        if exc.variable is None:
            raise
        name = json.dumps(exc.variable, ensure_ascii=False)
        raise PromstackError(f"{where} needs the variable {exc.variable!r}; give it in variables: {{{name}: ...}}") \
            from None


def _arguments_problem(error: Any) -> str:
    """``cache: Input should be 'use', 'replay', … (got 'nope'); version: …`` for each argument."""
    said: dict[str, str] = {}
    for e in error.errors():
        field = str(e["loc"][0]) if e["loc"] else "arguments"
        said.setdefault(field, f"{field}: {e['msg']} (got {json.dumps(e.get('input'), ensure_ascii=False)[:60]})")
    return "; ".join(said.values())


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _mime(source: str) -> str:
    suffix = Path(source).suffix.lower()
    return {".yaml": "application/yaml", ".yml": "application/yaml", ".json": "application/json"}.get(
        suffix, "text/plain")


def _ref_words(ref: str) -> str:
    return f"version {ref}" if ref.isdigit() else f"label {ref}"


# -- tools ------------------------------------------------------------------------------------


def _tools(server: PromstackMCP) -> None:
    project = server.project

    def refused(exc: Exception) -> ToolError:
        return ToolError(str(exc))

    @server.tool(annotations=READ_ONLY)
    def list_prompts() -> dict[str, Any]:
        """The registry's prompts: latest version, labels, number of versions, file, last evaluation score and
        the template's variables (of the version the production label points to, else the latest)."""
        try:
            registry = project.registry()
            out = []
            for pid in registry.ids():
                entry = registry.entry(pid)
                last = entry["versions"][-1]
                evaluations = last.get("evaluations") or []
                shown = {"id": pid, "latest": last["number"], "hash": last["hash"],
                         "versions": len(entry["versions"]), "labels": dict(entry.get("labels") or {}),
                         "file": entry.get("source"), "last_score": evaluations[-1]["score"] if evaluations else None}
                try:
                    shown["variables"] = sorted(template_variables(server.version(registry, pid)[1]))
                except PromstackError as exc:  # one unreadable version: said, the other prompts listed
                    shown["problem"] = str(exc)
                out.append(shown)
            return {"prompts": out}
        except PromstackError as exc:
            raise refused(exc) from None

    @server.tool(annotations=READ_ONLY)
    def show_prompt(prompt: Annotated[str, Field(description="the prompt's id")],
                    version: Annotated[Ref | None, Field(description="a version number or a label (default: "
                                                                     "production, else the latest)")] = None,
                    variables: Annotated[dict[str, Any] | None, Field(
                        description="render it with these values (any JSON: lists, numbers)")] = None
                    ) -> dict[str, Any]:
        """One version of a prompt: its file as recorded, its messages (templates), model and params, labels,
        evaluations; rendered with `variables` when given."""
        try:
            registry = project.registry()
            v, p = server.version(registry, prompt, _ref(version))
            number = int(v["number"])
            shown: dict[str, Any] = {
                "id": prompt, "number": number, "hash": v["hash"], "labels": registry.labels_of(prompt, number),
                "time": v.get("time"), "author": v.get("author"), "message": v.get("message"),
                "file": registry.entry(prompt).get("source"), "text": registry.text(prompt, number),
                "messages": list(p.messages), "model": p.model, "params": p.params,
                "variables": template_variables(p), "evaluations": v.get("evaluations") or []}
            if variables is not None:
                shown["rendered"] = _rendered(p, variables, f"prompt {prompt!r} v{number}")
            return shown
        except PromstackError as exc:
            raise refused(exc) from None

    @server.tool(annotations=READ_ONLY)
    def diff_versions(prompt: str, a: Annotated[Ref, Field(description="a version number or a label")],
                      b: Annotated[Ref, Field(description="a version number or a label")]) -> dict[str, Any]:
        """The unified diff of two versions of a prompt's file."""
        from . import diff_lines

        try:
            return {"diff": "\n".join(diff_lines(project.registry(), prompt, str(a), str(b)))}
        except PromstackError as exc:
            raise refused(exc) from None

    @server.tool(annotations=RUNS)
    async def run_suite(ctx: Context,
                        suites: Annotated[list[str] | str | None,
                                          Field(description="suite names (default: every suite)")] = None,
                        models: Annotated[list[str] | str | None, Field(description="configured model names (default: "
                                                                              "each suite's)")] = None,
                        k: Annotated[str | None, Field(description="pytest's -k expression over case ids")] = None,
                        cache: Annotated[CacheMode | None, Field(description="default: the config's cache.mode")]
                        = None) -> dict[str, Any]:
        """Run the suites (`promstack test`): the summary per suite and model, the failing cases with their
        failed assertions, the gates, and where the results JSON and HTML report are. Progress comes as the model
        calls finish, then as each case is scored."""
        try:
            settings = project.settings()
            args = [*_suites(settings, suites), *_models(settings, models), *([f"-k{k}"] if k else []),
                    *([f"--promstack-cache={cache}"] if cache else [])]
        except PromstackError as exc:
            raise refused(exc) from None
        return await _run(server, ctx, settings, args)

    @server.tool(annotations=RUNS)
    async def run_case(ctx: Context,
                       case: Annotated[str | None, Field(description="a case id as the reports show it "
                                                                     "(prompt_tests/app.csv::환불 절차[app]); "
                                                                     "without [model]: on each of its models")]
                       = None,
                       prompt: Annotated[str | None, Field(description="or: a prompt id, to call with variables")]
                       = None,
                       variables: Annotated[dict[str, Any] | None, Field(description="the prompt's variables")]
                       = None,
                       model: Annotated[str | None, Field(description="a configured model (default: the "
                                                                      "prompt's, else the first configured)")]
                       = None,
                       version: Annotated[Ref | None, Field(description="the prompt's version number or label")]
                       = None,
                       asserts: Annotated[list[str | dict[str, Any]] | None, Field(
                           description='assertions as the test files write them: "icontains:환불", '
                                       '{"type": "is-json"}')] = None,
                       cache: CacheMode | None = None) -> dict[str, Any]:
        """Run one case of a suite (`case`), or call a prompt once with ad-hoc variables (`prompt`, `variables`,
        `model`, `asserts`) through the same engine: cache, call log, guards and assertions."""
        try:
            settings = project.settings()
            if (case is None) == (prompt is None):
                raise PromstackError("give case (a case id) or prompt (with variables), not both and not neither")
            if case is not None:
                file = case.split("::", 1)[0]
                if "::" not in case:
                    raise PromstackError(f"case {case!r}: not a case id; give FILE::NAME as the reports show it, "
                                         "the file relative to the project (prompt_tests/app.csv::환불 절차[app])")
                if not project.inside(file, "case").is_file():
                    raise PromstackError(f"case {case!r}: no test file {file} in the project; give the file as the "
                                         "reports show it, relative to the project")
                return await _run(server, ctx, settings, [case, *([f"--promstack-cache={cache}"] if cache else [])])
            if model is not None:
                _models(settings, [model])
            ref = _ref(version)
            request = {"root": str(settings.root), "config": str(settings.config_file), "prompt": prompt,
                       "version": int(ref) if ref and ref.isascii() and ref.isdigit() else None,
                       "label": ref if ref and not (ref.isascii() and ref.isdigit()) else None,
                       "variables": variables or {}, "model": model, "asserts": asserts or [], "cache": cache}
        except PromstackError as exc:
            raise refused(exc) from None
        launcher = ["-c", "from pytest_promstack.cli.mcp_runs import adhoc_child; adhoc_child()"]
        async with server.running:
            done = await mcp_runs.run_child(launcher, settings.root,
                                            stdin=json.dumps(request, ensure_ascii=False).encode("utf-8"),
                                            python=True)
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            raise ToolError(f"the call did not finish (exit {done.status}):\n{done.tail()}") from None
        if "problem" in answer:
            raise ToolError(answer["problem"])
        return answer

    @server.tool(annotations=RUNS)
    async def evaluate_prompt(ctx: Context, prompt: str,
                              version: Annotated[Ref | None, Field(
                                  description="a version number or label (default: the prompt file as it is)")] = None
                              ) -> dict[str, Any]:
        """Score a prompt version 0-100 (`promstack evaluate`): run the suites that use it, keep the score and
        the gates' verdicts in the registry against the version (what deploy checks)."""
        version = _ref(version)
        try:
            settings = project.settings()
        except PromstackError as exc:
            raise refused(exc) from None
        args = ["evaluate", "--config", str(settings.config_file), "--prompt", prompt,
                *(["--version", version] if version else [])]
        async with server.running:
            done = await mcp_runs.run_child(args, settings.root, ctx.report_progress)
        if done.status not in (0, 1, 6):
            raise ToolError(f"no evaluation of {prompt} (exit {done.status}):\n{done.tail()}")
        try:
            registry = project.registry()
            number = _evaluated(settings, registry, prompt, version)
            record = registry.last_evaluation(prompt, number)
        except PromstackError as exc:
            raise refused(exc) from None
        return {"prompt": prompt, "number": number, **(record or {})}

    @server.tool(annotations=READ_ONLY)
    async def estimate_cost(ctx: Context, suites: list[str] | str | None = None,
                            models: list[str] | str | None = None,
                            cache: CacheMode | None = None) -> dict[str, Any]:
        """An upper bound of what running the suites would cost (`--promstack-estimate`): calls per model,
        those the cache answers for free, tokens in, at most max_tokens out, at most this many USD. Calls nothing."""
        try:
            settings = project.settings()
            args = ["test", "--config", str(settings.config_file), *_suites(settings, suites),
                    *_models(settings, models), *([f"--promstack-cache={cache}"] if cache else []),
                    "--promstack-estimate", "--color=no"]
        except PromstackError as exc:
            raise refused(exc) from None
        async with server.running:
            done = await mcp_runs.run_child(args, settings.root)
        lines = done.stdout.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("promstack estimate:")), None)
        total = next((m for line in lines if (m := re.match(r"promstack estimate: at most ([0-9.]+) USD", line))),
                     None)
        if start is None or total is None:
            raise ToolError(f"no estimate (exit {done.status}):\n{done.tail()}")
        end = next(i for i, line in enumerate(lines) if line.startswith("promstack estimate: at most"))
        return {"max_usd": float(total.group(1)), "table": "\n".join(lines[start + 1:end]).strip()}

    @server.tool(annotations=READ_ONLY)
    def last_results(path: Annotated[str | None, Field(description="a results JSON inside the project (default: "
                                                                   "the last run over MCP)")] = None
                     ) -> dict[str, Any]:
        """The last run's results again: totals, the summary, the failing cases, the gates."""
        try:
            settings = project.settings()
            file = project.inside(path, "path") if path else settings.root / mcp_runs.RESULTS / "results.json"
            answer = mcp_runs.summarize(mcp_runs.read_results(file))
        except PromstackError as exc:
            raise refused(exc) from None
        return {**answer, "results": str(file)}

    @server.tool(annotations=DEPLOYS)
    async def deploy(ctx: Context, prompt: str,
                     to: Annotated[str, Field(description="the label to move")] = "production",
                     version: Annotated[Ref | None, Field(description="a version number or label (default: the "
                                                                      "prompt file as it is)")] = None,
                     force: Annotated[bool, Field(description="move it without a passing evaluation (only when "
                                                              "the server was started with --allow-force)")] = False,
                     reason: Annotated[str | None, Field(description="why, recorded with force")] = None
                     ) -> dict[str, Any]:
        """Point a label (production) at a version when its last evaluation passed the gates, evaluating it first
        when it has none (`promstack deploy`). Refused otherwise, naming the failed gates."""
        if force and not server.allow_force:
            raise ToolError("force is refused: this server was started without --allow-force (a forced deploy "
                            "skips the gates); evaluate the version until it passes, or run `promstack deploy "
                            "--force --reason WHY` yourself")
        if force and not (reason or "").strip():
            raise ToolError("force needs a reason: it is recorded with the label move")
        version = _ref(version)
        try:
            settings = project.settings()
        except PromstackError as exc:
            raise refused(exc) from None
        args = ["deploy", "--config", str(settings.config_file), "--prompt", prompt, "--to", to,
                *(["--version", version] if version else []),
                *(["--force", "--reason", reason or ""] if force else [])]
        async with server.running:
            done = await mcp_runs.run_child(args, settings.root, ctx.report_progress)
        if done.status != 0:
            said = [x for x in done.stderr.splitlines() if x.startswith("promstack deploy")]  # its refusal
            raise ToolError(mcp_runs.in_tool_terms(said[-1]) if said
                            else f"deploy failed (exit {done.status}): {done.tail()}")
        return {"deployed": True, "said": done.stdout.strip()}


async def _run(server: PromstackMCP, ctx: Context, settings: Any, args: list[str]) -> dict[str, Any]:
    """``promstack test ARGS`` writing the results JSON and report under .promstack/mcp/; the
    previous ones stay until this run has written its own."""
    folder = settings.root / mcp_runs.RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".gitignore").exists():  # a run's outputs, not the project's files (as the cache's)
        (folder / ".gitignore").write_text("*\n", encoding="utf-8")
    results, report = folder / "results.json", folder / "report.html"
    fresh = {results: folder / "results.next.json", report: folder / "report.next.html"}
    argv = ["test", "--config", str(settings.config_file), "--color=no", f"--promstack-json={fresh[results]}",
            f"--promstack-report={fresh[report]}", *args]
    async with server.running:
        for path in fresh.values():
            path.unlink(missing_ok=True)
        done = await mcp_runs.run_child(argv, settings.root, ctx.report_progress)
        if done.status in (3, 4, 5) or not fresh[results].is_file():  # no run: the last one's results stay
            for path in fresh.values():
                path.unlink(missing_ok=True)
            why = ("no case matched the suites, k or case given" if done.status == 5 else done.tail())
            raise ToolError(f"nothing ran ({mcp_runs.STATUS.get(done.status, done.status)}; the last run's results "
                            f"stay): {why}")
        for final, path in fresh.items():
            if path.is_file():
                path.replace(final)
    answer = mcp_runs.summarize(mcp_runs.read_results(results), done.status)
    return {**answer, "results": str(results), "report": str(report) if report.is_file() else None}


def _listed(names: list[str] | str | None) -> list[str]:
    """A list of names, or one name alone (what an agent often sends)."""
    return [names] if isinstance(names, str) else list(names or [])


def _ref(value: str | int | None) -> str | None:
    """A version as the CLI reads it: a number (sent as a JSON number or text) or a label."""
    return None if value is None else str(value)


def _suites(settings: Any, suites: list[str] | str | None) -> list[str]:
    suites = _listed(suites)
    for name in suites:
        if name not in settings.suites:
            raise PromstackError(f"no suite {name!r} in {settings.source}; its suites: "
                                 f"{', '.join(settings.suites) or 'none'}")
    return [f"--suite={name}" for name in suites]


def _models(settings: Any, models: list[str] | str | None) -> list[str]:
    """``--promstack-model`` for each model: a configured name, or a provider's model
    (``openai/gpt-4o-mini``), never a python: target an agent made up."""
    models = _listed(models)
    known = set(settings.models)
    for name in models:
        if name not in known and (name.startswith("python:") or "/" not in name):
            raise PromstackError(f"model {name!r}: not configured in {settings.source} (its models: "
                                 f"{', '.join(sorted(known)) or 'none'}); name one of them, or a provider's model "
                                 "such as openai/gpt-4o-mini")
    return [f"--promstack-model={name}" for name in models]


def _evaluated(settings: Any, registry: Any, prompt: str, version: str | None) -> int:
    """The version number an evaluation just scored: ``version``'s, else the prompt file's."""
    from . import _current

    if version:
        return int(registry.resolve(prompt, version)["number"])
    number = _current(settings, registry, prompt)
    if number is None:
        raise PromstackError(f"no suite's prompt file has id {prompt!r}")
    return int(number)


def _resources(server: PromstackMCP) -> None:
    def results_file(name: str) -> str:
        path = server.project.settings().root / mcp_runs.RESULTS / name
        if not path.is_file():
            raise ResourceNotFoundError(f"no run yet ({path}); call run_suite")
        return path.read_text(encoding="utf-8")

    @server.resource(RESULTS_URI, name="last results", mime_type="application/json",
                     description="the results JSON of the last run over MCP (run_suite, run_case)")
    def latest_results() -> str:
        return results_file("results.json")

    @server.resource(REPORT_URI, name="last report", mime_type="text/html",
                     description="the HTML report of the last run over MCP")
    def latest_report() -> str:
        return results_file("report.html")
