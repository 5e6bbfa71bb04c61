"""Run another checkout of the package (``--source DIR``) in a subprocess, and prove it ran.

The shared environment has pytest-promstack installed (editable) with the entry points of
one layout; an older checkout may name other modules (657d7da: ``pytest_promstack.fixtures``,
now ``pytest_promstack.plugin.fixtures``). For each source this writes a
``pytest_promstack-*.dist-info`` declaring the entry points of *that* checkout's
pyproject.toml and puts it, then the checkout, first on ``PYTHONPATH``: the package is
imported from the checkout and pytest loads the first distribution's plugin of each name
(pluggy skips a name already registered), so the installed one is skipped; an installed
entry point the checkout does not declare is disabled with ``-p no:NAME``.

Every run goes through ``PROBE``, which prints where the package and each entry-point plugin
were loaded from; ``Source.check`` fails the benchmark if anything came from elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DIST = "pytest-promstack"

# pytest.main with a plugin that records which module each entry-point name resolved to.
# argv: json list of entry-point names, then pytest's arguments.
PROBE = textwrap.dedent("""
    import json, sys, pytest
    names = json.loads(sys.argv[1])
    class Probe:
        loaded = {}
        def pytest_configure(self, config):
            pm = config.pluginmanager
            Probe.loaded = {n: getattr(pm.get_plugin(n), "__file__", None) for n in names}
    rc = pytest.main(sys.argv[2:], plugins=[Probe()])
    import pytest_promstack
    mods = sorted({getattr(m, "__file__", None) or "" for k, m in list(sys.modules.items())
                   if k == "pytest_promstack" or k.startswith("pytest_promstack.")})
    print("PROMSTACK_PROBE " + json.dumps({"package": pytest_promstack.__file__, "plugins": Probe.loaded,
          "modules": mods, "litellm": "litellm" in sys.modules}))
    sys.exit(rc)
""")

IMPORT_PROBE = textwrap.dedent("""
    import json, sys
    import pytest_promstack.plugin
    print("PROMSTACK_PROBE " + json.dumps({"package": sys.modules["pytest_promstack"].__file__, "plugins": {},
          "modules": [sys.modules["pytest_promstack.plugin"].__file__], "litellm": "litellm" in sys.modules}))
""")


def installed_plugins() -> set[str]:
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return set()
    return {ep.name for ep in dist.entry_points if ep.group == "pytest11"}


@dataclass
class Source:
    path: Path
    meta: Path  # the folder holding the generated dist-info
    plugins: dict[str, str] = field(default_factory=dict)  # pytest11 name -> module
    label: str = ""
    shown: bool = False  # the first check prints what was loaded

    @classmethod
    def prepare(cls, path: Path, meta: Path) -> Source:
        """Write ``meta``/pytest_promstack-*.dist-info from ``path``/pyproject.toml."""
        pyproject = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        groups = pyproject.get("entry-points", {})
        if scripts := pyproject.get("scripts"):
            groups = {**groups, "console_scripts": scripts}
        init = (path / "pytest_promstack/__init__.py").read_text(encoding="utf-8")
        version = m.group(1) if (m := re.search(r"__version__\s*=\s*['\"]([^'\"]+)", init)) else "0"
        info = meta / f"pytest_promstack-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n", encoding="utf-8")
        (info / "top_level.txt").write_text("pytest_promstack\n", encoding="utf-8")
        (info / "entry_points.txt").write_text("".join(
            f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for g, eps in groups.items()),
            encoding="utf-8")
        return cls(path, meta, dict(groups.get("pytest11", {})), describe(path))

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": f"{self.meta}:{self.path}"}

    def blocked(self) -> list[str]:
        """``-p no:NAME`` for each installed entry point this checkout does not declare."""
        return [arg for name in sorted(installed_plugins() - self.plugins.keys()) for arg in ("-p", f"no:{name}")]

    def pytest(self, *args: str) -> list[str]:
        """``python -m pytest *args`` through PROBE, the installed-only entry points disabled."""
        names = sorted(installed_plugins() | self.plugins.keys())
        return [sys.executable, "-c", PROBE, json.dumps(names), *self.blocked(), *args]

    def importer(self) -> list[str]:
        return [sys.executable, "-c", IMPORT_PROBE]

    def holds(self, file: str) -> bool:
        return Path(file).resolve().is_relative_to(self.path)

    def check(self, out: str) -> dict:
        """The probe's report, after checking that everything came from this checkout."""
        line = next((x for x in out.splitlines() if x.startswith("PROMSTACK_PROBE ")), None)
        if line is None:
            raise SystemExit(f"{self.label}: the run printed no PROMSTACK_PROBE line:\n{out[-2000:]}")
        seen = json.loads(line.removeprefix("PROMSTACK_PROBE "))
        wrong = [f for f in [seen["package"], *seen["modules"]] if f and not self.holds(f)]
        for name, file in seen["plugins"].items():
            expected = self.plugins.get(name)
            if expected is None and file is not None:
                wrong.append(f"entry point {name} loaded ({file}) though {self.path} does not declare it")
            elif expected is not None and (file is None or not self.holds(file) or not module_matches(file, expected)):
                wrong.append(f"entry point {name} = {expected} resolved to {file}")
        if wrong:
            raise SystemExit(f"{self.label}: loaded from outside the checkout: {wrong[:5]}")
        if not self.shown:
            self.shown = True
            plugins = ", ".join(f"{k}={v}" for k, v in seen["plugins"].items()) or "(no pytest run)"
            print(f"  {self.label}: pytest_promstack from {seen['package']}; plugins {plugins}", flush=True)
        return seen


def module_matches(file: str, module: str) -> bool:
    """``file`` is the module ``module`` (``a/b.py`` or ``a/b/__init__.py`` for ``a.b``)."""
    parts = list(Path(file).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return parts[-len(module.split(".")):] == module.split(".")


def describe(path: Path) -> str:
    """``path`` (short git commit, +dirty when the package or pyproject.toml has uncommitted changes)."""
    rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = ["git", "-C", str(path), "status", "--porcelain", "--", "pytest_promstack", "pyproject.toml"]
    dirty = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    return f"{path} ({rev.stdout.strip() or 'no git'}{'+dirty' if dirty else ''})"


def stray_bytecode(path: Path) -> int:
    """How many .pyc files the package folder holds (read even under PYTHONDONTWRITEBYTECODE)."""
    return sum(1 for _ in (path / "pytest_promstack").rglob("*.pyc"))


def prepare(paths: list[Path], tmp: Path) -> list[Source]:
    sources = []
    for i, path in enumerate(paths):
        source = Source.prepare(path, tmp / f"meta{i}")
        if n := stray_bytecode(path):
            print(f"note: {source.label} holds {n} .pyc files: its imports skip compiling, the others' may not")
        sources.append(source)
    return sources


def order(sources: list, repeat: int) -> list:
    """A, B, ... on even repeats, reversed on odd ones, so that running first or second evens out."""
    return sources if repeat % 2 == 0 else sources[::-1]
