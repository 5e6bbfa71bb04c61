"""Files written whole or not at all: a temp file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str) -> None:
    """Write through a temp file beside ``path`` (``.NAME.PID.RANDOM.tmp``), then rename. The
    temp file of a writer killed hard (SIGKILL, power loss) is removed by the next write of the
    same file: once its process is gone, or after 10 minutes where that cannot be known."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; reports are read by CI viewers too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sweep(path: Path) -> None:
    import time

    prefix = f".{path.name}."
    try:
        leftovers = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in leftovers:
        pid = p.name[len(prefix):].split(".", 1)[0]
        try:
            stale = time.time() - p.stat().st_mtime > 600 or (pid.isdigit() and not _alive(int(pid)))
            if stale and p.is_file():
                p.unlink()
        except OSError:
            continue  # gone already, or not ours to remove: the write itself goes on


def _alive(pid: int) -> bool:
    if os.name == "nt" or pid == os.getpid():  # os.kill(pid, 0) is Ctrl-C on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before any thread runs
    os.umask(mask)
    return mask


UMASK = _umask()
