"""The ``promstack`` command: a starter project (``init``), run suites (``test``), score a
prompt version (``evaluate``), move labels behind the gates (``deploy``), the prompt registry
(``prompt …``), A/B of two versions (``ab``), the HTML report from a results JSON
(``report``), a promstack.yaml from a promptfoo config (``import promptfoo``), the audit
trail's check (``audit verify``), the figures of live traffic from call logs (``monitor``),
the prompt-injection probes against a prompt (``probe``), a read-only HTTP API over the
registry (``serve``) and the project as an MCP server (``mcp``)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from ..model.errors import PromstackError
from ..util.text import safe

EXIT_CODES = (
    "Exit codes: those of pytest (0 all passed, 1 some failed, 2 interrupted, 4 usage error, 5 nothing "
    "collected; `probe`: 0 no probe broke the prompt, 1 one did), 6 when the tests passed but a gate failed, 7 "
    "when they passed but --promstack-fail-on-regression "
    "found a regression. `evaluate`: 0 passed, 1 a case failed (unless a passing min_pass_rate gate allows it), 6 a "
    "gate failed. `deploy`: "
    "0 label moved, 1 refused. `audit verify`: 0 chain intact, 1 broken, 4 no log there. `prompt`, `ab`, `report`: "
    "0 (`report` of a --promstack-shard split: 0 passed, 1 a case failed, 6 a gate failed, 7 a regression with "
    "--fail-on-regression, 4 a shard missing); `monitor --check`: 0 no "
    "rule at alert level (warnings included), 1 an alert. "
    "`serve`, `mcp`: 0 when stopped (Ctrl-C or SIGTERM; stdio: when the client closes it). "
    "`init`, `import`, `monitor`, `serve`, `mcp`: 0 done, 4 bad input (an unknown prompt, "
    "version or label; an unreadable file; for init and import, files that exist already; for monitor, no log, a "
    "bad time, window, grouping or format)."
)


def said(exc: Exception) -> str:
    """An error's line after the command's own name (a config error names promstack already)."""
    return str(exc).removeprefix("promstack: ")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promstack", epilog=EXIT_CODES,
                                     description="Prompt regression tests for LLM applications (pytest-promstack).")
    parser.add_argument("--version", action="version", version=f"promstack {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=None,
                        help="promstack.yaml or pyproject.toml (default: found from the current directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    init = sub.add_parser("init", help="write a starter project into a folder", epilog=EXIT_CODES,
                          description="Write a starter project: promstack.yaml, a prompt, a CSV of cases, the "
                                      "cassette of their recorded answers (the first `pytest --promstack` passes "
                                      "offline, with no key) and a GitHub Actions workflow. Writes nothing when any "
                                      "of these files exists.")
    init.add_argument("--dir", default=".", metavar="PATH",
                      help="the project folder, created if missing (default: %(default)s)")

    imp = sub.add_parser("import", help="write a promstack.yaml from another tool's config", epilog=EXIT_CODES,
                         description="Write the promstack.yaml a promptfooconfig.yaml means (its inline tests to "
                                     "promptfoo_tests.yaml beside it). Writes nothing when a target exists, or when "
                                     "the config has something promstack does not run (each named).")
    imp.add_argument("tool", choices=["promptfoo"], help="the tool the config is from")
    imp.add_argument("source", nargs="?", default="promptfooconfig.yaml", metavar="PATH",
                     help="its config (default: %(default)s)")
    imp.add_argument("--dir", default=".", metavar="PATH", help="where to write (default: %(default)s)")

    # allow_abbrev=False: pytest's own options pass through, and `--co` must not read as `--config`
    test = sub.add_parser("test", parents=[common], help="run the prompt suites (pytest --promstack)",
                          allow_abbrev=False, epilog=EXIT_CODES,
                          description="Run `pytest --promstack`; extra arguments go to pytest. --config PATH is "
                                      "--promstack-config PATH (relative to the current directory).")
    test.add_argument("--suite", action="append", default=[], metavar="NAME", help="run only this suite; repeatable")

    probe = sub.add_parser("probe", parents=[common], allow_abbrev=False, epilog=EXIT_CODES,
                           help="run the prompt-injection probes against a prompt",
                           description="Run the built-in prompt-injection probes against a prompt (pytest --promstack "
                                       "--promstack-probe): one case per probe x model, cached and replayable like any "
                                       "suite; the summary lists the probes that broke the prompt, per model. Extra "
                                       "arguments go to pytest.")
    probe.add_argument("--prompt", required=True, metavar="ID", help="the id of a suite's prompt, or a prompt file")
    probe.add_argument("--model", action="append", default=[], metavar="M",
                       help="probe this model (a configured name or a litellm name); repeatable (default: every "
                            "configured model)")
    probe.add_argument("--var", default="input", metavar="V",
                       help="the prompt variable each attack goes into (default: %(default)s)")
    probe.add_argument("--family", action="append", default=[], metavar="F",
                       help="only this family of probes; repeatable (default: every family)")

    ev = sub.add_parser("evaluate", parents=[common], epilog=EXIT_CODES, help="print a prompt version's 0-100 score",
                        description="Run the suites that use a prompt and print its quality score (0-100, an "
                                    "integer) alone on stdout; pytest's output goes to stderr. The score and run id "
                                    "are kept in the registry against the version.")
    ev.add_argument("--prompt", required=True, metavar="ID")
    ev.add_argument("--version", dest="prompt_version", metavar="N", default=None,
                    help="a recorded version number or label (default: the prompt file as it is)")

    dep = sub.add_parser("deploy", parents=[common], epilog=EXIT_CODES, help="move a label after the gates pass",
                         description="Point a label (default production) at a version when its last evaluation "
                                     "passed the gates; with no evaluation yet, evaluate it now. --force moves it "
                                     "anyway and records who and why.")
    dep.add_argument("--prompt", required=True, metavar="ID")
    dep.add_argument("--to", default="production", metavar="LABEL", help="default: %(default)s")
    dep.add_argument("--version", dest="prompt_version", metavar="N", default=None,
                     help="version number or label (default: the prompt file as it is)")
    dep.add_argument("--force", action="store_true", help="move the label even without a passing evaluation")
    dep.add_argument("--reason", default="", help="why (recorded with --force)")

    ab = sub.add_parser("ab", parents=[common], epilog=EXIT_CODES, help="A/B two versions of a prompt",
                        description="Run the prompt's suites on version A and on version B (numbers, labels, or "
                                    "branch names) and report paired differences with significance tests.")
    ab.add_argument("prompt", metavar="ID")
    ab.add_argument("a", metavar="A")
    ab.add_argument("b", metavar="B")

    rep = sub.add_parser("report", help="write the HTML report from a results JSON (or merge shards')",
                         epilog=EXIT_CODES,
                         description="Render the self-contained HTML report from a results JSON "
                                     "(--promstack-json), optionally compared with a baseline results JSON. Several "
                                     "files are the shards of one run (--promstack-shard I/N): merged into the run's "
                                     "one document, the gates judged on the whole.")
    rep.add_argument("results", metavar="RESULTS_JSON", nargs="+",
                     help="a results JSON written by --promstack-json; several: the shards of one run")
    rep.add_argument("--json", metavar="PATH", default=None, dest="merged_json",
                     help="also write the (merged) results JSON here")
    rep.add_argument("-o", "--output", metavar="PATH", default="report.html",
                     help="where to write the HTML (default: %(default)s)")
    rep.add_argument("--baseline", metavar="PATH", default=None,
                     help="compare with this earlier results JSON (as --promstack-baseline does)")
    rep.add_argument("--regression-margin", metavar="POINTS", type=float, default=5.0,
                     help="quality drop that counts as a regression (default: %(default)s)")
    rep.add_argument("--fail-on-regression", action="store_true",
                     help="with --baseline, exit 7 when a case regressed and the cases and gates passed (as "
                          "--promstack-fail-on-regression)")

    pr = sub.add_parser("prompt", help="prompt versions and labels", epilog=EXIT_CODES,
                        description="The prompt registry in .promstack/prompts: numbered versions, labels, diffs.")
    psub = pr.add_subparsers(dest="action", metavar="ACTION", required=True)
    psub.add_parser("list", parents=[common], help="prompts, latest version, labels, last score")
    p = psub.add_parser("log", parents=[common], help="versions with date, author, labels, score; label moves")
    p.add_argument("id", metavar="ID")
    p = psub.add_parser("show", parents=[common], help="print a version's file")
    p.add_argument("id", metavar="ID")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--version", dest="prompt_version", metavar="N")
    group.add_argument("--label", metavar="L")
    p = psub.add_parser("diff", parents=[common], help="unified diff of two versions (numbers or labels)")
    p.add_argument("id", metavar="ID")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p = psub.add_parser("rollback", parents=[common], help="restore the prompt file to version N's content")
    p.add_argument("id", metavar="ID")
    p.add_argument("--to", required=True, metavar="N", help="version number or label")
    p = psub.add_parser("label", parents=[common], help="point a label at a version (no gate; see deploy)")
    p.add_argument("id", metavar="ID")
    p.add_argument("label", metavar="LABEL")
    p.add_argument("--version", dest="prompt_version", required=True, metavar="N")
    p = psub.add_parser("merge", parents=[common], help="promote a branch's content to the main file")
    p.add_argument("id", metavar="ID")
    p.add_argument("branch", metavar="BRANCH")
    from .prompt_cost import add_parser as add_cost

    add_cost(psub, common)

    au = sub.add_parser("audit", help="the audit trail", epilog=EXIT_CODES,
                        description="The append-only, hash-chained audit log (audit: in promstack.yaml).")
    asub = au.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = asub.add_parser("verify", parents=[common], help="check the hash chain across the rotated files",
                        description="Walk the audit log's chain (its rotated files, then the live file). Exit 0 with "
                                    "one line when it holds; 1 naming file:line of each edited, removed or reordered "
                                    "line and each missing file.")
    p.add_argument("--path", metavar="P", default=None, help="the live log file (default: audit.path of the config)")
    p.add_argument("--head", metavar="HASH", default=None,
                   help="a last hash noted earlier (12+ hex digits): fail when no line has it (the newest lines "
                        "were removed)")

    from .monitor import add_parser as add_monitor

    add_monitor(sub, common, EXIT_CODES)
    from .serve import add_parser as add_serve

    add_serve(sub, common, EXIT_CODES)
    from .mcp_command import add_parser as add_mcp

    add_mcp(sub, common, EXIT_CODES)
    return parser


def _spans_attached(argv: list[str]) -> list[str]:
    """``--since -7d`` as ``--since=-7d``: argparse would take the span for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--since", "--until") and re.fullmatch(r"-\d+\s*[mhdw]", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(_spans_attached(sys.argv[1:] if argv is None else argv))
    if args.command == "test":
        return run_tests(args, rest)
    if args.command == "probe":
        return run_probe(args, rest)
    if rest and args.command != "evaluate":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "report":
            return report(args)
        if args.command == "init":
            return init_project(args)
        if args.command == "import":
            return import_config(args)
        if args.command == "audit":
            from .audit import verify

            return verify(args)
        if args.command == "monitor":
            from .monitor import run as monitor

            return monitor(args)
        if args.command == "serve":
            from .serve import run as serve

            return serve(args)
        if args.command == "mcp":
            from .mcp_command import run as mcp_server

            return mcp_server(args)
        settings, registry = _project(args)
        if args.command == "evaluate":
            return evaluate(args, settings, registry, rest)
        if args.command == "deploy":
            return deploy(args, settings, registry)
        if args.command == "ab":
            return ab(args, settings, registry)
        return PROMPT_ACTIONS[args.action](args, settings, registry)
    except PromstackError as exc:
        print(safe(f"promstack {args.command}: {said(exc)}", newlines=True), file=sys.stderr)
        return 4


# -- init, test -------------------------------------------------------------------------------


def init_project(args: argparse.Namespace) -> int:
    from .init import next_steps, write_starter

    directory = Path(args.dir)
    for path in write_starter(directory):
        print(f"promstack: wrote {directory / path if args.dir != '.' else path}")
    print("\n".join(next_steps(directory)))
    return 0


def import_config(args: argparse.Namespace) -> int:
    from .importer import import_promptfoo

    directory = Path(args.dir)
    for path in import_promptfoo(Path(args.source), directory):
        print(f"promstack: wrote {directory / path if args.dir != '.' else path}")
    print("next: pytest --promstack (the suite is named promptfoo)")
    return 0


def run_tests(args: argparse.Namespace, rest: list[str]) -> int:
    import pytest

    config = []
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            print(f"promstack test: --config {args.config}: file not found; pass a promstack.yaml or pyproject.toml",
                  file=sys.stderr)
            return 4
        config = [f"--promstack-config={path.resolve()}"]  # relative to here, as for the other commands
        if not any(Path(a.split("::", 1)[0]).exists() for a in rest if not a.startswith("-")):  # a path or node id
            config += _tests_folder(path.resolve())  # collect that project's tests, not everything under here
    return int(pytest.main(["--promstack", *config, *(f"--promstack-suite={s}" for s in args.suite), *rest]))


def run_probe(args: argparse.Namespace, rest: list[str]) -> int:
    """``pytest --promstack --promstack-probe FILE`` on the config file, where probe cases hang."""
    import pytest

    from ..config.settings import load_settings
    from ..safety.probes import ProbeProblem, select

    try:
        settings = load_settings(Path.cwd(), {"config": args.config})
        select(args.family or None)
        path = _probe_prompt(settings, args.prompt)
    except (PromstackError, ProbeProblem) as exc:
        print(safe(f"promstack probe: {said(exc)}", newlines=True), file=sys.stderr)
        return 4
    config = settings.config_file
    options = [f"--promstack-config={config}", f"--promstack-probe={path}", f"--promstack-probe-var={args.var}",
               *(f"--promstack-model={m}" for m in args.model), *(f"--promstack-probe-family={f}" for f in args.family)]
    return int(pytest.main(["--promstack", *options, str(config), *rest]))


def _probe_prompt(settings: Any, ref: str) -> str:
    """The prompt file ``ref`` names (a path, else the id of a suite's prompt), relative to the
    config's folder."""
    import os

    from ..versions import project_prompts

    given = Path(ref)
    if given.is_file():
        return os.path.relpath(given.resolve(), settings.root.resolve())
    found = sorted({str(f) for _, p, f in project_prompts(settings) if p.id == ref})
    if not found:
        known = ", ".join(sorted({p.id for _, p, _ in project_prompts(settings)})) or "none"
        raise PromstackError(f"--prompt {ref}: no prompt file and no suite's prompt has this id (the suites' "
                             f"prompts: {known}); give a prompt id or the path of a prompt file")
    return os.path.relpath(Path(found[0]).resolve(), settings.root.resolve())


def _tests_folder(config: Path) -> list[str]:
    """The folder of the suites' test files of ``config`` (nothing when the config is broken:
    pytest then reports it)."""
    from ..config.settings import load_settings

    try:
        return [str(load_settings(config.parent, {"config": str(config)}).tests_folder())]
    except PromstackError:
        return []


# -- the project ------------------------------------------------------------------------------


def _project(args: argparse.Namespace) -> tuple[Any, Any]:
    """Settings and registry; every prompt file the suites name is observed (recorded when new)."""
    from ..config.settings import load_settings
    from ..versions import PromptRegistry, in_ci, project_prompts

    settings = load_settings(Path.cwd(), {"config": getattr(args, "config", None)})
    registry = PromptRegistry(settings.root, readonly=in_ci(), audit=_audit_log(settings))
    for _, prompt, path in project_prompts(settings):
        seen = registry.observe(prompt.id, prompt.version, path)
        if seen.new:
            print(f"promstack: recorded prompt {prompt.id} version {seen.number} ({prompt.version})", file=sys.stderr)
    return settings, registry


def _audit_log(settings: Any) -> Any:
    """The audit log of this command's label moves, deploys and rollbacks (None when off)."""
    import uuid

    from ..execute.calllog import user_id
    from ..safety.audit import open_log

    return open_log(settings, uuid.uuid4().hex[:12], settings.user_id or user_id())


def _current(settings: Any, registry: Any, prompt_id: str, record: bool = False) -> int | None:
    """The version number of the prompt file as it is now; ``record``: record it if new (also
    in CI: the commands that pass it change the registry on purpose)."""
    from ..versions import project_prompts

    for _, prompt, path in project_prompts(settings):
        if prompt.id == str(prompt_id):
            if record:
                return registry.observe(prompt.id, prompt.version, path, force_write=True).number
            return registry.number_of(prompt.id, prompt.version)
    return None


def _bold(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


# -- prompt actions ---------------------------------------------------------------------------


def prompt_list(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    from tabulate import tabulate

    rows = []
    for pid in registry.ids():
        entry = registry.entry(pid)
        last = entry["versions"][-1]
        ev = last.get("evaluations") or []
        labels = ", ".join(f"{k}=v{v}" for k, v in sorted((entry.get("labels") or {}).items()))
        # the registry is data from the repository: escaped before tabulate measures it
        rows.append([safe(x) for x in (pid, f"v{last['number']}", last["hash"], labels, entry["source"],
                                       ev[-1]["score"] if ev else "-")])
    print(tabulate(rows, headers=["prompt", "latest", "hash", "labels", "file", "last score"], tablefmt="simple",
                   disable_numparse=True) if rows else "no prompts recorded yet")
    return 0


def prompt_log(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    current = _current(settings, registry, args.id)
    entry = registry.entry(args.id)
    for v in reversed(entry["versions"]):
        labels = registry.labels_of(args.id, v["number"])
        last = (v.get("evaluations") or [None])[-1]
        score = "not evaluated" if last is None else (
            f"score {last['score']} ({'passed' if last['passed'] else 'failed'}, run {last['run_id']})")
        tags = "".join(f" [{name}]" for name in labels) + (" (file)" if v["number"] == current else "")
        line = safe(f" {v['hash']}{tags}  {v['time']}  {v['author']}  {score}")
        print(_bold("v" + str(v["number"]), "33") + line)
        print(safe(f"    {v['message']}"))
    moves = entry.get("audit") or []
    if moves:
        print("label moves:")
        for m in moves:
            was = f"v{m['from']}" if m.get("from") is not None else "none"
            forced = f" FORCED: {m.get('reason') or 'no reason given'}" if m.get("forced") else ""
            print(safe(f"  {m['time']}  {m['who']}  {m['action']} {m['label']}: {was} -> v{m['to']}{forced}"))
    return 0


def prompt_show(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    v = registry.resolve(args.id, args.prompt_version, args.label)
    sys.stdout.write(safe(registry.text(args.id, v["number"]).replace("\r\n", "\n"), newlines=True))
    return 0


def diff_lines(registry: Any, prompt_id: str, a: str, b: str) -> list[str]:
    """The unified diff of two versions (numbers or labels) of a prompt's file, line by line."""
    import difflib

    va, vb = registry.resolve(prompt_id, a), registry.resolve(prompt_id, b)
    return [line.rstrip("\r\n") for line in difflib.unified_diff(
        registry.text(prompt_id, va["number"]).splitlines(keepends=True),
        registry.text(prompt_id, vb["number"]).splitlines(keepends=True),
        f"{prompt_id} v{va['number']}", f"{prompt_id} v{vb['number']}")]


def prompt_diff(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    for line in diff_lines(registry, args.id, args.a, args.b):
        line = safe(line) + "\n"
        if line.startswith("+") and not line.startswith("+++"):
            line = _bold(line.rstrip("\n"), "32") + "\n"
        elif line.startswith("-") and not line.startswith("---"):
            line = _bold(line.rstrip("\n"), "31") + "\n"
        sys.stdout.write(line)
    return 0


def prompt_rollback(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    v = registry.resolve(args.id, args.to)
    target = registry.source(args.id)
    target.write_bytes(registry.snapshot(args.id, v["number"]).read_bytes())
    now = _current(settings, registry, args.id, record=True)
    print(f"promstack: {registry.rel(target)} restored to {args.id} v{v['number']} (the file is v{now})")
    registry.note("rollback", args.id, v["number"], to=v["number"], file=registry.rel(target), file_version=now)
    return 0


def prompt_label(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    v = registry.resolve(args.id, args.prompt_version)
    before = registry.set_label(args.id, args.label, v["number"])
    was = f"v{before}" if before is not None else "none"
    print(f"promstack: {args.id} {args.label}: {was} -> v{v['number']}")
    return 0


def prompt_merge(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    if not args.branch or any(part in args.branch for part in ("/", "\\", "..")):
        raise PromstackError(f"branch {args.branch!r}: a branch is a name, not a path (no '/', '\\' or '..'); "
                             "pass the BRANCH of a file named NAME@BRANCH.yaml beside the prompt file")
    main_file = registry.source(args.id)
    branch = main_file.with_name(f"{main_file.stem}@{args.branch}{main_file.suffix}")
    if not branch.is_file():
        raise PromstackError(f"{registry.rel(branch)}: no branch {args.branch!r} of prompt {args.id!r}; a branch is "
                             f"a file named {main_file.stem}@BRANCH{main_file.suffix} beside {main_file.name}")
    from ..plan.prompts import load_prompt

    content = branch.read_bytes()
    main_file.write_bytes(content)
    prompt = load_prompt(main_file, settings.root)
    seen = registry.observe(prompt.id, prompt.version, main_file, message=f"merged branch {args.branch}",
                            force_write=True)
    what = f"new version v{seen.number}" if seen.new else f"known content, v{seen.number}"
    print(f"promstack: merged {registry.rel(branch)} into {registry.rel(main_file)}: {args.id} {what}")
    return 0


def prompt_cost(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    from .prompt_cost import run

    return run(args, settings, registry)


PROMPT_ACTIONS = {"list": prompt_list, "log": prompt_log, "show": prompt_show, "diff": prompt_diff,
                  "rollback": prompt_rollback, "label": prompt_label, "merge": prompt_merge, "cost": prompt_cost}


# -- evaluate, deploy, ab, report ---------------------------------------------------------------


def evaluate(args: argparse.Namespace, settings: Any, registry: Any, extra: list[str]) -> int:
    from .evaluation import evaluate as run

    result = run(settings, registry, args.prompt, args.prompt_version, extra)
    if result.score is None:
        print(f"promstack evaluate: no score: the run of {args.prompt} v{result.number} had no case "
              f"(status {result.status})", file=sys.stderr)
        return result.status or 5
    print(result.score)
    basis = "quality score" if result.record["quality"] is not None else "pass rate (no judged case)"
    print(f"promstack: {args.prompt} v{result.number}: {basis} {result.score}, "
          f"{'passed' if result.passed else 'FAILED'} (run {result.record['run_id']})", file=sys.stderr)
    return result.status


def deploy(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    from ..safety.mask import Masker
    from ..versions import author, check_label
    from .evaluation import evaluate as run

    check_label(args.to)  # before an evaluation that may call models
    number = (_current(settings, registry, args.prompt, record=True) if args.prompt_version is None
              else registry.resolve(args.prompt, args.prompt_version)["number"])
    if number is None:
        raise PromstackError(f"no suite's prompt file has id {args.prompt!r}, so there is no current version; "
                             "pass --version N (see `promstack prompt log`)")
    last = registry.last_evaluation(args.prompt, number)
    if args.force:
        # the registry is committed and the line printed: a reason's personal data and secrets masked
        reason = Masker().mask(args.reason) if args.reason else "no reason given"
        before = registry.set_label(args.prompt, args.to, number, action="deploy", forced=True, reason=reason,
                                    evaluation=last)
        print(f"promstack: {args.prompt} {args.to}: {_v(before)} -> v{number} (FORCED by {author()}: {reason})")
        return 0
    if last is None:
        print(f"promstack: {args.prompt} v{number} has no evaluation; running its suites", file=sys.stderr)
        last = run(settings, registry, args.prompt, str(number)).record
    if not last["passed"]:
        failed = [g for g in last.get("gates") or [] if g.endswith("FAILED")]
        why = "; ".join(failed) or f"status {last['status']} (a case failed)"
        print(f"promstack deploy: refused: {args.prompt} v{number}'s last evaluation (run {last['run_id']}, score "
              f"{last['score']}) did not pass: {why}. Fix the prompt and evaluate again, or --force --reason WHY",
              file=sys.stderr)
        return 1
    before = registry.set_label(args.prompt, args.to, number, action="deploy", evaluation=last)
    print(f"promstack: {args.prompt} {args.to}: {_v(before)} -> v{number} (evaluation run {last['run_id']}, "
          f"score {last['score']})")
    return 0


def _v(number: int | None) -> str:
    return "none" if number is None else f"v{number}"


def ab(args: argparse.Namespace, settings: Any, registry: Any) -> int:
    from tabulate import tabulate

    from .abtest import compare
    from .evaluation import run_suites, suites_using

    suites = suites_using(settings, args.prompt)
    if not suites:
        raise PromstackError(f"no suite uses prompt {args.prompt!r}")
    sides = []
    resolved = [(ref, *_side(args.prompt, ref, settings, registry)) for ref in (args.a, args.b)]  # both, before a run
    for ref, pid, extra in resolved:
        print(f"promstack ab: running {pid} {ref} on suites {', '.join(suites)}", file=sys.stderr)
        status, doc = run_suites(settings, suites, extra)
        if doc is None:
            raise PromstackError(f"the run of {ref} wrote no results (pytest status {status})")
        sides.append([c for c in doc["cases"] if c.get("prompt_id") == pid])
    r = compare(*sides)

    def fmt(v: Any, pattern: str) -> str:
        return "n/a" if v is None else pattern.format(v)

    rows = [["pass rate %", fmt(r["pass_rate_a"], "{:.1f}"), fmt(r["pass_rate_b"], "{:.1f}"),
             f"McNemar exact p = {r['p_pass']:.3g} (A only {r['only_a']}, B only {r['only_b']})"],
            ["quality", fmt(r["quality_a"], "{:.1f}"), fmt(r["quality_b"], "{:.1f}"),
             f"paired permutation p = {fmt(r['p_quality'], '{:.3g}')} (n = {r['scored']})"],
            ["mean latency ms", fmt(r["latency_a"], "{:.0f}"), fmt(r["latency_b"], "{:.0f}"), ""],
            ["cost USD", fmt(r["cost_a"], "{:.6f}"), fmt(r["cost_b"], "{:.6f}"), ""]]
    print(f"promstack ab: {args.prompt}: A = {args.a}, B = {args.b}, {r['n']} paired cases")
    print(tabulate(rows, headers=["metric", "A", "B", "test"], tablefmt="simple", disable_numparse=True))
    print(r["verdict"])
    return 0


def _side(prompt_id: str, ref: str, settings: Any, registry: Any) -> tuple[str, list[str]]:
    """(prompt id whose cases count, extra pytest args) for one side: "file" (the prompt file
    as it is), a branch name (prompts/ID@BRANCH.ext), or a version number or label."""
    from ..versions import project_prompts

    if ref == "file":
        return prompt_id, []
    branches = {p.id for _, p, _ in project_prompts(settings) if p.id.startswith(f"{prompt_id}@")}
    if f"{prompt_id}@{ref}" in branches:
        return f"{prompt_id}@{ref}", ["--promstack-prompt-branches"]
    number = registry.resolve(prompt_id, ref)["number"]
    return prompt_id, [f"--promstack-prompt-version={prompt_id}={number}"]


def report(args: argparse.Namespace) -> int:
    """The HTML report of a results JSON; of a shard split's files, merged into the run's: the
    gates' verdicts printed, and the status a single run would have had (_merged)."""
    from ..report import html
    from ..results.baseline import compare, load

    docs = [(Path(p), load(Path(p), "results JSON")) for p in args.results]
    baseline = None
    if args.baseline:
        cases = [c for _, d in docs for c in d["cases"]]
        baseline = compare(cases, load(Path(args.baseline)), args.regression_margin, args.baseline)
    status = 0
    if len(docs) == 1 and not docs[0][1]["run"].get("shard"):
        doc = docs[0][1]
        if baseline is not None:
            doc["baseline"] = baseline
    else:
        doc, status = _merged(docs, baseline, args.fail_on_regression)
    if args.merged_json:
        from ..results.document import write as write_json

        write_json(Path(args.merged_json), doc)
        print(f"promstack: wrote {args.merged_json} ({len(doc['cases'])} cases)")
    size = html.write(Path(args.output), doc)
    print(f"promstack: wrote {args.output} ({html.human_size(size)}, {len(doc['cases'])} cases)")
    return status


def _merged(docs: list[tuple[Path, dict[str, Any]]], baseline: dict[str, Any] | None,
            fail_on_regression: bool) -> tuple[dict[str, Any], int]:
    """The shards' one document, its gates' verdicts and the status a single run has: 1 a case
    failed, else 6 a gate failed, else 7 a regression (when asked), else 0."""
    from ..results.baseline import REGRESSION
    from ..results.baseline import lines as baseline_lines
    from ..results.gates import GATE_FAILED, Verdict
    from ..results.merge import check_shards, merge

    said = check_shards(docs)
    doc = merge(docs, baseline)
    for line in said:
        print(f"promstack report: {line}", file=sys.stderr)
    for verdict in doc["gates"]:
        print(Verdict(**verdict).line())
    for warning in doc["gate_warnings"]:
        print(warning)
    if baseline is not None:
        print("\n".join(baseline_lines(baseline, doc["cases"])))
    failed = sum(c.get("outcome") in ("failed", "error") for c in doc["cases"])
    print(f"promstack: merged {len(docs)} file{'s' if len(docs) > 1 else ''}: {len(doc['cases'])} cases, "
          f"{failed} failed")
    if failed:
        return doc, 1
    if any(not v["passed"] for v in doc["gates"]):
        return doc, GATE_FAILED
    return doc, REGRESSION if fail_on_regression and baseline and baseline["regressed"] else 0


if __name__ == "__main__":
    sys.exit(main())
