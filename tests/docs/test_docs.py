"""The documentation site builds with no warning, and the code samples of README.md and docs/*.md
are what they claim: configs load, test files load, commands run and print what the page shows.
Which block is checked how is the convention written in docs/development.md ("How these pages
are tested"); the loaders used are the package's own, imported in `load_*` below."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
EXAMPLE = ROOT / "example_project"
FENCE = re.compile(r"^```(\S*)(.*)$")
MARKER = re.compile(r"^<!-- test: (.+?) -->$")
TITLE = re.compile(r'title="([^"]+)"')
CONFIG, EXCERPT = "promstack.yaml", "promstack.yaml (excerpt)"
MUST_HAVE_TITLE = ("csv", "jsonl", "jinja")  # checked only as a file: untitled, they must be skipped on purpose


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int  # the opening fence, 1-based
    lang: str
    title: str | None
    marker: str | None  # "run", "run, exit 6", "output", "skip: why"
    text: str

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT).as_posix() if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"

    @property
    def skipped(self) -> bool:
        return (self.marker or "").startswith("skip")


def samples(page: Path) -> list[Sample]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = lines.index("```", i + 1)
        before = [text for text in lines[:i] if text.strip()]
        marker = MARKER.match(before[-1]) if before else None
        title = TITLE.search(opening.group(2))
        found.append(Sample(page, i + 1, opening.group(1), title and title.group(1), marker and marker.group(1),
                            "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return found


ALL = [s for page in PAGES for s in samples(page)]


def output_of(sample: Sample) -> Sample | None:
    """The `output` block right after a `run` block, if any."""
    after = [s for s in ALL if s.page == sample.page and s.line > sample.line]
    return after[0] if after and after[0].marker == "output" else None


def checked(s: Sample) -> bool:
    return not s.skipped and s.marker != "output" and (s.lang != "bash" or (s.marker or "").startswith("run")) \
        and (s.lang, s.title) != ("text", None)


def ids(samples_: list[Sample]) -> list[str]:
    return [s.where for s in samples_]


# -- the package's loaders (update here if they move) -------------------------------------

def load_config(project: Path) -> Any:
    from pytest_promstack.config.settings import load_settings

    return load_settings(project, {})


def load_prompt(path: Path, project: Path) -> Any:
    from pytest_promstack.plan.prompts import load_prompt as load

    return load(path, project)


def load_cases(path: Path, project: Path) -> list[Any]:
    from pytest_promstack.plan.cases import Loader
    from pytest_promstack.score.registry import builtin_registry

    registry = builtin_registry()
    return Loader(project, registry.assertions.__contains__, registry.suggest).load(path)


def strict_yaml(text: str) -> Any:
    from pytest_promstack.util.strict import load_yaml

    return load_yaml(text)


# -- a copy of the example project, with the page's files -----------------------------------

def project_for(sample: Sample, tmp_path: Path) -> Path:
    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(
        "cache", "calls.jsonl", "__pycache__", ".pytest_cache", "results.json", "report.html"))
    for s in samples(sample.page):
        if s.title and not s.skipped and not s.title.startswith(CONFIG):
            path = project / s.title
            assert not Path(s.title).is_absolute(), f"{s.where}: title {s.title!r} must be relative"
            assert ".." not in Path(s.title).parts, f"{s.where}: title {s.title!r} must stay inside the project"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(s.text, encoding="utf-8")
    return project


def merged(base: Any, extra: Any) -> Any:
    """Mappings key by key, lists extended by the items they lack, other values replaced."""
    if isinstance(base, dict) and isinstance(extra, dict):
        return {**base, **{k: merged(base[k], v) if k in base else v for k, v in extra.items()}}
    if isinstance(base, list) and isinstance(extra, list):
        return base + [item for item in extra if item not in base]
    return extra


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_") and not k.endswith("_API_KEY") and k != "PROMSTACK_TEST_KEY"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "80"  # the width the pages' outputs were printed at
    env["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's end-of-life banner
    return env


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=120, check=False)


def shell(sample: Sample, project: Path) -> subprocess.CompletedProcess[str]:
    lines = sample.text.splitlines()
    if lines and lines[0].strip() == "cd example_project":
        lines = lines[1:]
    promstack = Path(sys.executable).with_name("promstack")
    script = "\n".join([f'pytest() {{ "{sys.executable}" -m pytest "$@"; }}',
                        f'promstack() {{ "{promstack}" "$@"; }}', *lines])
    return run(["bash", "-e", "-c", script], project)


def normal(line: str) -> str:
    """A line as compared: durations and the width of pytest's rules and padding left out."""
    line = re.sub(r"\b\d+(\.\d+)? ?s\b", "<time>", line)
    return " ".join(line.replace("=", " ").split())


def assert_printed(expected: Sample, printed: str) -> None:
    lines = [normal(x) for x in printed.splitlines()]
    at = 0
    for want in expected.text.splitlines():
        if not want.strip() or "…" in want:
            continue
        try:
            at = lines.index(normal(want), at) + 1
        except ValueError:
            raise AssertionError(f"{expected.where}: not printed (in this order): {want!r}\n{printed[-3000:]}") from None


# -- one check per kind of sample -----------------------------------------------------------

def check(sample: Sample, tmp_path: Path) -> None:
    project = project_for(sample, tmp_path)
    title = sample.title or ""
    if title in (CONFIG, EXCERPT):
        text = sample.text
        if title == EXCERPT:
            base = yaml.safe_load((EXAMPLE / CONFIG).read_text(encoding="utf-8"))
            text = yaml.safe_dump(merged(base, strict_yaml(sample.text)), allow_unicode=True, sort_keys=False)
        (project / CONFIG).write_text(text, encoding="utf-8")
        load_config(project)
    elif title.startswith("prompts/"):
        prompt = load_prompt(project / title, project)
        parse_templates([m["content"] for m in prompt.messages])
    elif title.startswith("prompt_tests/"):
        cases = load_cases(project / title, project)
        assert cases, f"{sample.where}: no case"
        assert not [c.error for c in cases if c.error], [f"{c.where}: {c.error}" for c in cases if c.error]
    elif title.endswith(".j2"):
        parse_templates([sample.text])
    elif sample.lang == "python":
        check_python(sample, project)
    elif sample.lang == "bash":
        check_shell(sample, project)
    elif sample.lang == "yaml":
        yaml.safe_load(sample.text)
    elif sample.lang == "json":
        json.loads(sample.text)
    else:
        raise AssertionError(f"{sample.where}: no check for a {sample.lang!r} block titled {title!r}; "
                             "skip it with <!-- test: skip: why --> or see docs/development.md")


def parse_templates(texts: list[str]) -> None:
    from jinja2.sandbox import SandboxedEnvironment

    for text in texts:
        SandboxedEnvironment().parse(text)


def check_python(sample: Sample, project: Path) -> None:
    name = Path(sample.title or "").name
    if name == "conftest.py":
        done = run([sys.executable, "-m", "pytest", "--promstack", "--collect-only", "-q", "-p", "no:cacheprovider"],
                   project)
    elif name.startswith("test_"):
        done = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", sample.title or ""], project)
    else:
        done = run([sys.executable, "-c", sample.text], project)
    assert done.returncode == 0, f"{sample.where}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def check_shell(sample: Sample, project: Path) -> None:
    exit_status = re.fullmatch(r"run(?:, exit (\d+))?", sample.marker or "")
    assert exit_status, f"{sample.where}: unknown marker {sample.marker!r}"
    done = shell(sample, project)
    printed = done.stdout + done.stderr
    want = int(exit_status.group(1) or 0)
    assert done.returncode == want, f"{sample.where}: exit {done.returncode}, not {want}\n{printed[-4000:]}"
    expected = output_of(sample)
    if expected is not None:
        assert_printed(expected, printed)


# -- the tests ------------------------------------------------------------------------------

def test_the_site_builds_with_no_warning(tmp_path):
    """Strict: a broken link or anchor, a page missing from the nav or a nav entry without a
    page is a warning, and a warning fails the build."""
    done = run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")], ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stdout + done.stderr
    assert {p.stem for p in (ROOT / "docs").glob("*.md")} - {"index"} <= {p.name for p in (tmp_path / "site").iterdir()}


def test_the_readme_links_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if f"](docs/{p.name}" not in readme]
    assert not missing, f"README.md links no docs page {missing}; add each to its Documentation list"


def test_every_sample_is_checked_or_skipped_on_purpose():
    problems = []
    for s in ALL:
        if s.marker and not re.fullmatch(r"run(, exit \d+)?|output|skip: .+", s.marker):
            problems.append(f"{s.where}: unknown marker {s.marker!r}")
        if s.lang == "bash" and not s.marker:
            problems.append(f"{s.where}: a bash block needs <!-- test: run --> or <!-- test: skip: why -->")
        if s.lang in MUST_HAVE_TITLE and not s.title and not s.skipped:
            problems.append(f"{s.where}: a {s.lang} block needs title=\"PATH\" (or a skip marker)")
        if s.marker == "output":
            before = [x for x in ALL if x.page == s.page and x.line < s.line]
            if not before or not (before[-1].marker or "").startswith("run"):
                problems.append(f"{s.where}: an output block must follow a run block")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("sample", [s for s in ALL if checked(s)], ids=ids([s for s in ALL if checked(s)]))
def test_sample(sample, tmp_path):
    check(sample, tmp_path)


BROKEN = [  # (language, title, marker, text, what the failure says)
    ("yaml", CONFIG, None, "suites:\n  s: {tests: ['prompt_tests/*.csv'], modles: [gemma]}\n", "modles"),
    ("yaml", EXCERPT, None, "judges:\n  support_quality: {prompt: judges/missing.j2}\n", "judges.support_quality.prompt"),
    ("csv", "prompt_tests/bad.csv", None, "input,__expected\n환불하고 싶어요,contians:환불\n", "contians"),
    ("yaml", "prompts/bad.yaml", None, "id: bad\ntemplate: '{{ input '\n", "end of print statement"),
    ("python", None, None, "from pytest_promstack import Client\nClient().get_prompt('support', version=9)\n", "exit 1"),
    ("bash", None, "run", "promstack prompt show nosuchprompt\n", "exit 4, not 0"),
    ("bash", None, "run, exit 6", "pytest --promstack --promstack-suite regression\n", "exit 0, not 6"),
]


@pytest.mark.parametrize(("lang", "title", "marker", "text", "says"), BROKEN, ids=[b[4] for b in BROKEN])
def test_a_broken_sample_fails_its_check(tmp_path, lang, title, marker, text, says):
    """Each broken sample, written on a page as the docs write it, fails with its own reason."""
    page = tmp_path / "page.md"
    info = f' title="{title}"' if title else ""
    page.write_text(f"# A page\n\n<!-- test: {marker} -->\n\n```{lang}{info}\n{text}```\n" if marker else
                    f"# A page\n\n```{lang}{info}\n{text}```\n", encoding="utf-8")
    [sample] = samples(page)
    assert (sample.lang, sample.title, sample.marker, sample.text) == (lang, title, marker, text)
    with pytest.raises(Exception, match=re.escape(says)):  # each loader raises its own error type
        check(sample, tmp_path)


def test_printed_output_is_compared_line_by_line_in_order():
    shown = Sample(ROOT / "README.md", 1, "text", None, "output", "a\n…\n== 2 passed in 0.08s ==\n")
    assert_printed(shown, "a\nb\n========= 2 passed in 12.31s =========\n")
    with pytest.raises(AssertionError):
        assert_printed(shown, "========= 2 passed in 12.31s =========\na\n")
    with pytest.raises(AssertionError):
        assert_printed(shown, "a\n== 3 passed in 0.08s ==\n")
