"""``promstack init``: a starter project in a folder, copied from the package's
``templates/init/``: a config, a prompt, a CSV of cases, the cassette of the offline
model's recorded answers (so the first ``pytest --promstack`` passes with no model and no
key) and a GitHub Actions workflow. It never overwrites: when any file exists, it writes
nothing and names them all."""

from __future__ import annotations

import shlex
from importlib.resources import files
from pathlib import Path, PurePosixPath

from ..model.errors import PromstackError

# Where each starter file goes, and its name under templates/init/ (hidden folders such as
# .github are kept under a plain name there, as package-data globs skip dot-folders).
STARTER = (
    ("promstack.yaml", "promstack.yaml"),
    ("prompts/facts.yaml", "prompts/facts.yaml"),
    ("prompt_tests/facts.csv", "prompt_tests/facts.csv"),
    ("cassettes/facts.jsonl", "cassettes/facts.jsonl"),
    (".github/workflows/promstack.yml", "github/workflows/promstack.yml"),
)
FIX = "remove them or run init in an empty folder"


class StarterExists(PromstackError):
    """Some starter files exist already; ``paths`` names them (relative to the folder)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        super().__init__("\n".join(["nothing was written, because these exist already:",
                                    *(f"  {p}" for p in paths), FIX]))


def existing(directory: Path) -> list[str]:
    """What in ``directory`` is in the starter's way: its target paths that exist (files,
    folders or links), and files where one of its folders goes."""
    taken: list[str] = _other_configs(directory)
    for target, _ in STARTER:
        blocking = [target, *(p.as_posix() for p in PurePosixPath(target).parents if p.name)]
        for rel in blocking:
            path = directory / rel
            if (path.is_symlink() or path.exists()) and (rel == target or not path.is_dir()) and rel not in taken:
                taken.append(rel)
    return taken


def _other_configs(directory: Path) -> list[str]:
    """A config the starter's promstack.yaml would silently shadow: promstack.yml, or a
    [tool.promstack] table in pyproject.toml."""
    import tomllib

    found = ["promstack.yml"] if (directory / "promstack.yml").exists() else []
    pyproject = directory / "pyproject.toml"
    try:
        if pyproject.is_file() and "promstack" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}):
            found.append("pyproject.toml [tool.promstack]")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    return found


def write_starter(directory: Path) -> list[str]:
    """Write the starter into ``directory`` (created if missing); returns the written paths.
    Raises StarterExists, writing nothing, when any target exists."""
    if directory.exists() and not directory.is_dir():
        raise PromstackError(f"{directory}: not a folder; pass --dir with a folder (it is created if missing)")
    taken = existing(directory)
    if taken:
        raise StarterExists(taken)
    source = files("pytest_promstack").joinpath("templates", "init")
    for target, name in STARTER:
        path = directory / target
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as out:  # "x": never replace a file that appeared meanwhile
                out.write(source.joinpath(*name.split("/")).read_bytes())
        except OSError as exc:
            raise PromstackError(f"{path}: cannot write it: {exc.strerror or exc}") from None
    return [target for target, _ in STARTER]


def next_steps(directory: Path) -> list[str]:
    """What to run after init, as lines to print."""
    here = directory.resolve() == Path.cwd().resolve()
    return ["next:", *([] if here else [f"  cd {shlex.quote(str(directory))}"]),
            "  pytest --promstack    # replays cassettes/facts.jsonl: 5 passed, no model, no key",
            "then commit these files (and .promstack/prompts, where that first run records the prompt's",
            "version); the comments in promstack.yaml say how to record new answers or test a hosted model."]
