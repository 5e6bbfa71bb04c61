"""Assertion values as promptfoo writes them: ``file://`` references (a value, a list item, a
JSON schema or a python check kept in a file of its own) and ``{{ var }}`` templates.

A reference is resolved relative to the test file that names it and must stay inside the
project (test files may come from someone else's pull request); it is read when the test file
is, so a missing file is one line naming the row before any model is called. A template
renders in the bounded sandbox with the case's variables when the case is planned.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..model.types import AssertionSpec
from ..util.paths import inside, outside, project_root, rel
from ..util.strict import DuplicateKeyError, LimitError, load_json, load_yaml

SCHEME = "file://"
MAX_BYTES = 10 * 1024 * 1024  # a referenced file is a value, a schema or a check, not a data set
PYTHON_REF = re.compile(r"^(?P<path>.+?\.py)(?::(?P<fn>[^:/\\?#]+))?$", re.I)
TEMPLATE = ("{{", "{%")


class ValueProblem(ValueError):
    """What is wrong with a value's reference or template, as one line with the fix."""


def with_files(spec: AssertionSpec, base: Path, root: Path) -> AssertionSpec:
    """``spec`` with every ``file://`` in its value read: a ``.json``/``.yaml`` file is its data,
    any other its text; a list's items each. A python check's ``file://check.py[:fn]`` becomes
    the file's absolute path (the check runs when the case is scored)."""
    value = spec.value
    if spec.type.removeprefix("not-") == "python":
        if isinstance(value, str) and value.startswith(SCHEME):
            return replace(spec, value=python_ref(value, base, root))
        return spec
    if isinstance(value, str) and value.startswith(SCHEME):
        return replace(spec, value=load(value, base, root))
    if isinstance(value, list) and any(isinstance(v, str) and v.startswith(SCHEME) for v in value):
        items = [load(v, base, root) if isinstance(v, str) and v.startswith(SCHEME) else v for v in value]
        return replace(spec, value=items)
    return spec


def resolve(ref: str, base: Path, root: Path) -> Path:
    """The file ``file://x`` names: relative to ``base`` (the naming file's folder), else, when
    no such file is there, to ``root`` (the config's folder, from which promptfoo resolves every
    path, so a promptfoo test file in a subfolder runs as it is); inside the project of ``root``
    (its git work tree, as for prompt and test files)."""
    text = ref[len(SCHEME):]
    if not text:
        raise ValueProblem(f"{ref!r} names no file; write file://path/relative/to/this/file")
    path = Path(text)
    if not path.is_absolute():
        path = base / path if (base / path).exists() or not (root / path).is_file() else root / path
    project = project_root(root)
    if not inside(path, project):
        raise ValueProblem(f"{ref}: {outside(path, project)}")
    if not path.is_file():
        raise ValueProblem(f"{ref}: no such file ({rel(path.resolve(), root.resolve())}); the path is relative to "
                           "the file that names it (or to the config's folder, as promptfoo reads it)")
    return path.resolve()


def matches(pattern: str, base: Path, root: Path) -> list[str]:
    """The files a ``file://`` glob names: relative to ``base``, else to ``root`` (as ``resolve``)."""
    import glob

    return sorted(glob.glob(str(base / pattern), recursive=True)) or sorted(
        glob.glob(str(root / pattern), recursive=True))


def load(ref: str, base: Path, root: Path) -> Any:
    path = resolve(ref, base, root)
    shown = rel(path, root.resolve())
    if path.suffix.lower() in (".py", ".js", ".ts", ".mjs", ".cjs"):
        raise ValueProblem(f"{ref}: a value is read from a data file (.txt, .json, .yaml), not computed by code; "
                           "write the value, or check with python: file://check.py:fn")
    if path.stat().st_size > MAX_BYTES:
        raise ValueProblem(f"{ref}: {shown} is larger than {MAX_BYTES // 1048576} MiB; a value file holds one value")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueProblem(f"{ref}: {shown} is not UTF-8; save it as UTF-8") from None
    kind = path.suffix.lower()
    try:
        if kind == ".json":
            return load_json(text)
        if kind in (".yaml", ".yml"):
            return load_yaml(text)
    except (DuplicateKeyError, LimitError) as exc:
        raise ValueProblem(f"{ref}: {exc.at(shown)}") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ValueProblem(f"{ref}: {shown} is not valid JSON: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise ValueProblem(f"{ref}: {shown} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return text.strip() if kind == ".txt" else text  # promptfoo trims a .txt value (its final newline)


def load_var(ref: str, base: Path, root: Path) -> str:
    """A variable's ``file://`` value, as promptfoo puts it in a prompt: a text file's text
    (trimmed), a ``.json``/``.yaml`` file's data as compact JSON text (so ``| load`` reads it)."""
    import json

    value = load(ref, base, root)
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def with_file_vars(variables: dict[str, Any], base: Path, root: Path) -> dict[str, Any]:
    """``variables`` with each ``file://`` value read (``load_var``)."""
    if not any(isinstance(v, str) and v.startswith(SCHEME) for v in variables.values()):
        return variables
    return {k: load_var(v, base, root) if isinstance(v, str) and v.startswith(SCHEME) else v
            for k, v in variables.items()}


def python_ref(ref: str, base: Path, root: Path) -> str:
    """``file://checks/grade.py:fn`` -> ``file:///abs/checks/grade.py:fn`` (``get_assert`` when
    no function is named, as promptfoo calls it)."""
    m = PYTHON_REF.match(ref[len(SCHEME):])
    if m is None:
        raise ValueProblem(f"{ref}: a python check names a .py file, optionally with a function: "
                           "file://checks/grade.py:check")
    path = resolve(SCHEME + m.group("path"), base, root)
    return f"{SCHEME}{path}:{m.group('fn') or 'get_assert'}"


JS_HINTS = re.compile(r"JSON\.(?:parse|stringify)\(|\.(?:toUpperCase|toLowerCase|trim|includes|startsWith|endsWith)\(|"
                      r"\.length\b|=>|===|!==|\bconst\b|\blet\b")
JS_FIX = ("promptfoo's transforms are JavaScript; write it in python: json.loads(output)['answer'] for "
          "JSON.parse(output).answer, output.upper() for output.toUpperCase(), len(output) for output.length")


def transform_code(code: str, base: Path, root: Path) -> str:
    """A transform as written (checked to be a python expression, or lines with return), or its
    ``file://x.py:fn`` resolved; JavaScript (promptfoo's language for them) is refused with
    the python way to write it."""
    code = code.strip()
    if code.startswith(SCHEME):
        if re.search(r"\.(?:js|ts|mjs|cjs)(?::[^/\\]*)?$", code, re.I):
            raise ValueProblem(f"transform {code!r} is a JavaScript file: {JS_FIX}, or file://transform.py:fn")
        return python_ref(code, base, root)
    if JS_HINTS.search(code):
        raise ValueProblem(f"transform {code[:60]!r} looks like JavaScript: {JS_FIX}")
    import textwrap

    body = "def transform(output, context, vars):\n" + textwrap.indent(textwrap.dedent(code), "    ")
    try:
        compile(code, "<transform>", "eval") if "\n" not in code else compile(body, "<transform>", "exec")
    except SyntaxError as exc:
        raise ValueProblem(f"transform {code[:60]!r} is not python ({exc.msg}): {JS_FIX}") from None
    return code


def render(asserts: tuple[AssertionSpec, ...], variables: dict[str, Any], where: str
           ) -> tuple[tuple[AssertionSpec, ...], str | None]:
    """Assertion values with ``{{ var }}`` rendered from the case's variables (python checks
    excepted: they read ``vars`` themselves). Returns the assertions and the first error."""
    if not any(_templated(a.value) for a in asserts):
        return asserts, None
    out = []
    for spec in asserts:
        if spec.type.removeprefix("not-") == "python" or not _templated(spec.value):
            out.append(spec)
            continue
        origin = f"{where} {spec.origin or spec.type}"
        try:
            value = _deep(spec.value, variables, origin)
        except ValueProblem as exc:
            return asserts, str(exc)
        out.append(replace(spec, value=value))
    return tuple(out), None


def _deep(value: Any, variables: dict[str, Any], origin: str) -> Any:
    """A value's strings rendered, in its lists and (tool-args-match's args) mappings too."""
    if isinstance(value, list):
        return [_deep(v, variables, origin) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, variables, origin) for k, v in value.items()}
    return _render(value, variables, origin)


def _templated(value: Any) -> bool:
    if isinstance(value, list | dict):
        return any(_templated(v) for v in (value.values() if isinstance(value, dict) else value))
    return isinstance(value, str) and any(t in value for t in TEMPLATE)


def _render(value: Any, variables: dict[str, Any], origin: str) -> Any:
    if not _templated(value):
        return value
    from ..model.errors import TemplateError
    from .templates import compile_text, render_text

    try:
        return render_text(compile_text(value, origin), variables, origin)
    except TemplateError as exc:
        raise ValueProblem(str(exc)) from None
