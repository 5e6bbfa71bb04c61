"""Paths stay inside the project: test files, prompt files, judge templates and the prompt
registry's entries may come from someone else's pull request, and a symlink or a ``..`` must
not make the run read (and send to a model) or write a file outside the repository."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path


def project_root(folder: Path) -> Path:
    """The project a config folder belongs to: the git work tree holding it, else the common
    folder of it and the current directory (a config in ``configs/`` may name ``../prompt_tests``)."""
    folder = folder.resolve()
    for d in (folder, *folder.parents):
        if (d / ".git").exists():
            return d
    try:
        return Path(os.path.commonpath([folder, Path.cwd().resolve()]))
    except ValueError:  # another drive
        return folder


def inside(path: Path, root: Path) -> bool:
    """True when ``path``, symlinks resolved, is ``root`` or below it (``root`` is usually
    ``project_root(...)``)."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    return True


def outside(path: Path, root: Path) -> str:
    """The one-line reason a path is refused."""
    return (f"{path} resolves to {path.resolve()}, outside the project ({root}); keep it inside the repository "
            "(a symlink or a '..' may not lead out)")


_KEPT = re.compile(r"[\w.@-]")  # letters and digits of any script, _ . @ -  (never %)


def safe_name(name: str) -> str:
    """A prompt id (or snapshot name) as one folder name, injectively: ``x/y`` -> ``x%2Fy``,
    ``x_y`` -> ``x_y``, ``..`` -> ``%2E.``. Letters and digits of any script, ``_``, ``-``, ``@``
    and inner dots are kept (so existing folders keep their names); every other character,
    ``%`` included, and a leading dot become ``%XX`` per UTF-8 byte. Two ids never share a
    folder, and a name is never a separator, ``.`` or ``..``."""
    if not name:
        return "%"  # no encoded name is a lone %
    out = [c if _KEPT.fullmatch(c) and not (i == 0 and c == ".") else _percent(c) for i, c in enumerate(name)]
    return "".join(out)


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


def rel(path: Path, root: Path) -> str:
    """``path`` as the reports show it: relative to ``root`` with ``/``, else as it is."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def importable(root: Path) -> Callable[[], None]:
    """``python:module:function`` targets and assertions import from the project root: it goes
    first on ``sys.path`` (unless there already); returns what takes it off again."""
    entry = str(root)
    if entry in sys.path:
        return lambda: None
    sys.path.insert(0, entry)

    def undo() -> None:
        if entry in sys.path:
            sys.path.remove(entry)
    return undo
