"""Paths stay inside the project: test files, prompt files, judge templates and the prompt
registry's entries may come from someone else's pull request, and a symlink or a ``..`` must
not make the run read (and send to a model) or write a file outside the repository."""

from __future__ import annotations

import os
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
