"""``promstack import promptfoo``: a promptfooconfig.yaml written as the promstack.yaml it means,
for teams that switch. Its inline tests (and scenarios) go to a test file of their own beside it
(``promptfoo_tests.yaml``, so their file:// paths still hold); prompts, providers, file:// tests
and defaultTest keep their meaning. Nothing is written when a target exists, and nothing at all when the config has
something we do not run (each named, one line per key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model.errors import ConfigError, PromstackError

TESTS = "promptfoo_tests.yaml"


def import_promptfoo(source: Path, directory: Path) -> list[str]:
    """Write promstack.yaml (and the inline tests) into ``directory``; returns what was written."""
    import yaml

    from ..config.promptfoo import translate
    from ..config.settings import _read_yaml

    if not source.is_file():
        raise PromstackError(f"{source}: file not found; name a promptfooconfig.yaml")
    if not source.resolve().is_relative_to(directory.resolve()):
        raise PromstackError(f"{source} is outside {directory}; import into the folder that holds it, or a parent "
                             "of it (--dir)")
    raw = _read_yaml(source)
    config, problems = translate(raw, source.resolve(), "promptfoo", directory.resolve())
    if problems:
        raise ConfigError(source.name, problems)
    suite = config["suites"]["promptfoo"]
    tests_raw = raw.get("tests") if isinstance(raw.get("tests"), list) else []
    inline: Any = [t for t in tests_raw if isinstance(t, dict)]
    if raw.get("scenarios"):  # read with the inline tests, their file:// paths relative to the same folder
        inline = {"tests": inline, "scenarios": raw["scenarios"]}
    tests = _relative(source.resolve().parent / TESTS, directory.resolve())
    targets = ["promstack.yaml", *([tests] if inline else [])]
    taken = [t for t in targets if (directory / t).exists()]
    if taken:
        raise PromstackError(f"nothing was written, because {', '.join(taken)} exists already; remove it or import "
                             "into another folder (--dir)")
    own = _relative(source.resolve(), directory.resolve())
    suite["tests"] = [tests if t == own else t for t in suite["tests"]]
    written = []
    if inline:
        _write(directory / tests, yaml.safe_dump(inline, allow_unicode=True, sort_keys=False))
        written.append(tests)
    header = f"# written by `promstack import promptfoo` from {own}; see docs/promptfoo.md\n"
    _write(directory / "promstack.yaml", header + yaml.safe_dump(_ordered(config), allow_unicode=True,
                                                                 sort_keys=False))
    written.insert(0, "promstack.yaml")
    return written


def _relative(path: Path, directory: Path) -> str:
    try:
        return path.relative_to(directory).as_posix()
    except ValueError:
        return path.as_posix()


def _ordered(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("models", "default_judge", "embedding_model", "moderation_model", "concurrency", "repeat", "cache",
            "suites")
    return {k: config[k] for k in keys if k in config}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
