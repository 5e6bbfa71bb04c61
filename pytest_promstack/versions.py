"""The prompt registry: numbered, immutable versions and movable labels, kept in the team's
own repository (no server).

    .promstack/prompts/index.json        the lock-style index (commit it)
    .promstack/prompts/<id>/<n><suffix>  version n's file, byte for byte (commit them too)

A prompt file stays the source of truth. Whenever a run or a command sees content whose
hash the index does not know, it records the next number with its time, author
(``PROMSTACK_USER``, else git's user.name, else the login) and a message. A pytest run in
CI (``CI`` set) or with ``--promstack-registry readonly`` never writes: it reports the
unrecorded prompt instead. Commands that change the registry on purpose (``label``,
``deploy``, ``evaluate``, ``rollback``, ``merge``) always write. Every label move is
appended to the prompt's audit trail.

The version hash is the prompt's content hash (``Prompt.version``: messages, model,
params), so reformatting a YAML file is not a new version, and restoring old content
(``rollback``) finds its old number instead of making a new one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .model.errors import PromstackError
from .util.paths import safe_name

SCHEMA = "promstack-prompts/1"
DIR = Path(".promstack/prompts")


class RegistryError(PromstackError):
    """A registry request that cannot be met: unknown prompt, version or label."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def author() -> str:
    if os.environ.get("PROMSTACK_USER"):
        return os.environ["PROMSTACK_USER"]
    import subprocess

    try:
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5, check=False)
        if out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def legacy_name(prompt_id: str) -> str:
    """The folder a prompt id had before ids were encoded injectively (``x/y`` and ``x_y`` both
    became ``x_y``): read only, as a fallback, and only with its content hash verified."""
    name = re.sub(r"[^\w.@-]", "_", prompt_id)
    return "_" + name if not name or name.startswith(".") else name


def _folder_key(name: str) -> str:
    """Folder names that one filesystem may take for the same folder (macOS and Windows
    ignore case; macOS normalises Unicode)."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def index_problem(data: dict[str, Any]) -> str | None:
    """The first key of the index whose type is wrong, as ``prompts.support.versions[0].number:
    missing`` (the registry's code reads these keys without a check)."""
    prompts = data.get("prompts")
    if not isinstance(prompts, dict):
        return f"prompts: {_kind(prompts)}, expected an object of prompt id -> entry"
    for pid, entry in prompts.items():
        where = f"prompts.{pid}"
        if not isinstance(entry, dict):
            return f"{where}: {_kind(entry)}, expected an object"
        problem = (_typed(entry, where, "source", str) or _typed(entry, where, "versions", list)
                   or _optional(entry, where, "labels", dict) or _optional(entry, where, "audit", list))
        if problem:
            return problem
        if not entry["versions"]:
            return f"{where}.versions: empty, expected at least one version"
        for i, v in enumerate(entry["versions"]):
            problem = _version_problem(v, f"{where}.versions[{i}]")
            if problem:
                return problem
        for label, number in (entry.get("labels") or {}).items():
            if not isinstance(number, int) or isinstance(number, bool):
                return f"{where}.labels.{label}: {_kind(number)}, expected a version number"
        for i, event in enumerate(entry.get("audit") or []):
            problem = _fields(event, f"{where}.audit[{i}]", AUDIT)
            if problem:
                return problem
    return None


# the keys `prompt log`, `list` and `deploy` read, and what each must be: a required key is
# read as event["key"]; an optional one may be missing or null
EVALUATION = {"score": ("number?", True), "passed": (bool, True), "run_id": ("string?", True), "status": (int, True),
              "gates": ("strings", False), "time": (str, False), "who": (str, False), "quality": ("number?", False)}
AUDIT = {"time": (str, True), "who": (str, True), "action": (str, True), "label": (str, True), "to": (int, True),
         "from": (int, False), "forced": (bool, False), "reason": (str, False), "evaluation": (dict, False)}
NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false",
         "number?": "a number or null", "string?": "a string or null", "strings": "a list of strings"}


def _fields(obj: Any, where: str, spec: dict[str, tuple[Any, bool]]) -> str | None:
    """``obj`` must be an object whose keys in ``spec`` have their kinds (``number?``: a number
    or null, required all the same; an optional key may be missing or null)."""
    if not isinstance(obj, dict):
        return f"{where}: {_kind(obj)}, expected an object"
    for key, (kind, required) in spec.items():
        if key not in obj:
            if required:
                return f"{where}.{key}: missing"
            continue
        value = obj[key]
        if value is None and (not required or isinstance(kind, str)):
            continue
        if kind == "number?":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "string?":
            ok = isinstance(value, str)
        elif kind == "strings":
            ok = isinstance(value, list) and all(isinstance(x, str) for x in value)
        else:
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            return f"{where}.{key}: {_kind(value)}, expected {NAMES[kind]}"
    return None


def _version_problem(v: Any, where: str) -> str | None:
    if not isinstance(v, dict):
        return f"{where}: {_kind(v)}, expected an object"
    for key, kind in (("number", int), ("hash", str), ("file", str)):
        problem = _typed(v, where, key, kind)
        if problem:
            return problem
    if "/" in v["file"] or "\\" in v["file"] or v["file"] in ("", ".", ".."):
        return f"{where}.file: {v['file']!r} is not a file name in the prompt's folder"
    for key in ("time", "author", "message"):  # what `prompt log` prints
        problem = _typed(v, where, key, str)
        if problem:
            return problem
    problem = _optional(v, where, "evaluations", list)
    if problem:
        return problem
    for i, evaluation in enumerate(v.get("evaluations") or []):
        problem = _fields(evaluation, f"{where}.evaluations[{i}]", EVALUATION)
        if problem:
            return problem
    return None


def _typed(obj: dict[str, Any], where: str, key: str, kind: type) -> str | None:
    """``key`` must be there, of type ``kind``."""
    if key not in obj:
        return f"{where}.{key}: missing"
    value = obj[key]
    if isinstance(value, kind) and not isinstance(value, bool):
        return None
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object"}
    return f"{where}.{key}: {_kind(value)}, expected {names[kind]}"


def _optional(obj: dict[str, Any], where: str, key: str, kind: type) -> str | None:
    """``key`` may be missing or null, else of type ``kind``."""
    return None if obj.get(key) is None else _typed(obj, where, key, kind)


def _kind(value: Any) -> str:
    return {list: "a list", dict: "an object", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Seen:
    """What the registry made of a prompt's current content."""

    id: str
    number: int | None  # None: not recorded (read-only)
    new: bool
    labels: tuple[str, ...]


class PromptRegistry:
    def __init__(self, root: Path, readonly: bool = False, audit: Any = None) -> None:
        self.root = root
        self.dir = root / DIR
        self.index_path = self.dir / "index.json"
        self.readonly = readonly
        self.audit = audit  # safety/audit.AuditLog: label moves, deploys and rollbacks get a line there too
        self._data: dict[str, Any] | None = None

    # -- storage ----------------------------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._read()
        return self._data

    def _read(self) -> dict[str, Any]:
        if not self.index_path.is_file():
            return {"schema": SCHEMA, "prompts": {}}
        from .util.strict import DuplicateKeyError, load_json

        try:
            data = load_json(self.index_path.read_text(encoding="utf-8"))
        except DuplicateKeyError as exc:
            raise RegistryError(f"{exc.at(self.rel(self.index_path))}; restore it from git "
                                "(git checkout -- .promstack/prompts)") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RegistryError(f"{self.rel(self.index_path)}: unreadable ({exc}); restore it from git "
                                "(git checkout -- .promstack/prompts)") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise RegistryError(f"{self.rel(self.index_path)}: not a promstack prompt registry ({SCHEMA})")
        problem = index_problem(data)
        if problem is not None:
            raise RegistryError(f"{self.rel(self.index_path)}: {problem}; restore it from git "
                                "(git checkout -- .promstack/prompts)")
        return data

    def save(self) -> None:
        from .util.files import atomic_write

        text = json.dumps(self.data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        atomic_write(self.index_path, text)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time (xdist controllers, parallel CI steps, a laptop and its editor's
        test runner): take the lock, read the index afresh, change it, save it."""
        from filelock import FileLock

        from .util.paths import inside, project_root

        if not inside(self.dir, project_root(self.root)):
            raise RegistryError(f"{self.rel(self.dir)} resolves to {self.dir.resolve()}, outside the project; the "
                                "registry is written only inside the repository (a symlink may not lead out)")
        self.dir.mkdir(parents=True, exist_ok=True)
        ignore = self.dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(".lock\n", encoding="utf-8")
        with FileLock(str(self.dir / ".lock"), timeout=60):
            self.reload()
            yield
            self.save()

    def reload(self) -> None:
        self._data = None

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    # -- reading ----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(self.data["prompts"], key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))

    def entry(self, prompt_id: str) -> dict[str, Any]:
        entry = self.data["prompts"].get(str(prompt_id))
        if entry is None:
            known = ", ".join(self.ids()) or "none yet"
            raise RegistryError(f"prompt {prompt_id!r} is not in the registry (known: {known}); a run or "
                                "`promstack prompt list` records the prompts of the configured suites")
        return entry

    def versions(self, prompt_id: str) -> list[dict[str, Any]]:
        return self.entry(prompt_id)["versions"]

    def number_of(self, prompt_id: str, version_hash: str) -> int | None:
        entry = self.data["prompts"].get(str(prompt_id))
        for v in (entry or {}).get("versions", []):
            if v["hash"] == version_hash:
                return int(v["number"])
        return None

    def labels_of(self, prompt_id: str, number: int | None) -> list[str]:
        entry = self.data["prompts"].get(str(prompt_id)) or {}
        return sorted(name for name, n in (entry.get("labels") or {}).items() if n == number)

    def resolve(self, prompt_id: str, version: int | str | None = None, label: str | None = None) -> dict[str, Any]:
        """A version entry by number, by label, or (neither) the latest. ``version`` may also be
        a label name (as `diff A B` takes either)."""
        entry = self.entry(prompt_id)
        if version is not None and not _number(str(version)):
            version, label = None, str(version)
        if label is not None:
            number = (entry.get("labels") or {}).get(label)
            if number is None:
                names = ", ".join(sorted(entry.get("labels") or {})) or "none"
                raise RegistryError(f"prompt {prompt_id!r} has no label {label!r} (labels: {names}); set one with "
                                    f"`promstack deploy --prompt {prompt_id} --to {label}`")
            version = number
        if version is None:
            return entry["versions"][-1]
        for v in entry["versions"]:
            if v["number"] == int(version):
                return v
        last = entry["versions"][-1]["number"]
        raise RegistryError(f"prompt {prompt_id!r} has no version {version} (versions 1 to {last})")

    def snapshot(self, prompt_id: str, number: int) -> Path:
        """Version ``number``'s file: inside the registry, and holding what the index records
        for it (the prompt's id and content hash), else a ``RegistryError`` naming the file."""
        prompt_id = str(prompt_id)
        v = self.resolve(prompt_id, number)
        key = f"prompts.{prompt_id}.versions[{number}].file"
        path = self._inside(self.dir / safe_name(prompt_id) / str(v["file"]), self.dir, key)
        if not path.is_file():  # a registry written before ids were encoded injectively
            old = self._inside(self.dir / legacy_name(prompt_id) / str(v["file"]), self.dir, key)
            path = old if old.is_file() else path
        self._verify(prompt_id, v, path)
        return path

    def _verify(self, prompt_id: str, v: dict[str, Any], path: Path) -> None:
        """The file holds prompt ``prompt_id`` with the content hash the index records: a file
        edited by hand, or another prompt's version in a shared folder, is refused."""
        from .plan.prompts import load_prompt

        restore = "restore the registry from git (git checkout -- .promstack/prompts)"
        where = f"prompt {prompt_id!r} v{v['number']}"
        if not path.is_file():
            raise RegistryError(f"{self.rel(path)}: missing, the file of {where}; {restore}")
        try:
            prompt = load_prompt(path, self.root, default_id=prompt_id)
        except PromstackError as exc:
            raise RegistryError(f"{self.rel(path)}: the file of {where} cannot be read ({exc}); {restore}") from None
        same_id = prompt.id == prompt_id or prompt.id.startswith(f"{prompt_id}@")  # a branch's suffix, twice
        if not same_id or prompt.version != v["hash"]:
            raise RegistryError(f"{self.rel(path)}: holds prompt {prompt.id!r} content {prompt.version}, but the index "
                                f"records {where} as {v['hash']} (edited, or another prompt's file); {restore}")

    def text(self, prompt_id: str, number: int) -> str:
        return self.snapshot(prompt_id, number).read_text(encoding="utf-8")

    def source(self, prompt_id: str) -> Path:
        from .util.paths import project_root

        return self._inside(self.root / str(self.entry(prompt_id)["source"]), project_root(self.root),
                            f"prompts.{prompt_id}.source")

    def _inside(self, path: Path, root: Path, key: str) -> Path:
        """Entries of index.json are joined to paths only when they stay inside ``root``."""
        from .util.paths import inside

        if not inside(path, root):
            raise RegistryError(f"{self.rel(self.index_path)}: {key} leads to {path.resolve()}, outside "
                                f"{self.rel(root)}; restore the registry from git (git checkout -- .promstack/prompts)")
        return path

    # -- writing ----------------------------------------------------------------------------

    def observe(self, prompt_id: str, version_hash: str, file: Path, message: str = "",
                force_write: bool = False) -> Seen:
        """Record the file's content as a new version unless its hash is known."""
        prompt_id = str(prompt_id)
        number = self.number_of(prompt_id, version_hash)
        if number is not None:
            return Seen(prompt_id, number, False, tuple(self.labels_of(prompt_id, number)))
        if self.readonly and not force_write:
            return Seen(prompt_id, None, False, ())
        from .plan.prompts import frozen_bytes

        with self._writing():
            number = self.number_of(prompt_id, version_hash)  # another writer may have recorded it meanwhile
            if number is not None:
                return Seen(prompt_id, number, False, tuple(self.labels_of(prompt_id, number)))
            entry = self.data["prompts"].setdefault(prompt_id, {"source": self.rel(file), "versions": [],
                                                                "labels": {}, "audit": []})
            entry["source"] = self.rel(file)
            self._own_folder(prompt_id)
            number = (entry["versions"][-1]["number"] if entry["versions"] else 0) + 1
            name = f"{number}{file.suffix}"
            target = self.dir / safe_name(prompt_id) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(frozen_bytes(file, self.root))  # a tools: file:// written in
            entry["versions"].append({"number": number, "hash": version_hash, "time": now(), "author": author(),
                                      "message": message or ("first version" if number == 1 else "changed"),
                                      "file": name, "evaluations": []})
        return Seen(prompt_id, number, True, ())

    def _own_folder(self, prompt_id: str) -> None:
        """No other prompt of the index has this prompt's folder: on a filesystem that ignores
        case or Unicode normalisation either (``Support`` and ``support`` on macOS), nor in the
        folder of before (``x_y/``, still read for ``x/y``)."""
        folder = safe_name(prompt_id)
        for other in self.data["prompts"]:
            if other == prompt_id:
                continue
            why = None
            if _folder_key(safe_name(other)) == _folder_key(folder):
                why = "their ids differ only in case or Unicode form, which macOS and Windows do not tell apart"
            elif (legacy_name(other) == folder and (self.dir / folder).is_dir()
                  and not (self.dir / safe_name(other)).is_dir()):
                why = f"{folder}/ still holds the versions of {other!r} (stored before ids were encoded)"
            if why:
                raise RegistryError(f"prompt {prompt_id!r} would share the folder {self.rel(self.dir / folder)} with "
                                    f"prompt {other!r}: {why}; rename one of them (id:)")

    def set_label(self, prompt_id: str, label: str, number: int, action: str = "label", forced: bool = False,
                  reason: str = "", evaluation: dict[str, Any] | None = None) -> int | None:
        """Move a label; returns the number it pointed at before."""
        check_label(label)
        with self._writing():
            entry = self.entry(prompt_id)
            self.resolve(prompt_id, number)
            before = (entry.get("labels") or {}).get(label)
            entry.setdefault("labels", {})[label] = int(number)
            event = {"time": now(), "who": author(), "action": action, "label": label, "from": before,
                     "to": int(number)}
            if forced:
                event["forced"] = True
                event["reason"] = reason
            if evaluation is not None:
                event["evaluation"] = evaluation
            entry.setdefault("audit", []).append(event)
        self.note("deploy" if action == "deploy" else "label", prompt_id, number, label=label, **{"from": before},
                  to=int(number), forced=forced, reason=reason if forced else None,
                  evaluation_run=(evaluation or {}).get("run_id"))
        return before

    def note(self, event: str, prompt_id: str, number: int, **details: Any) -> None:
        """A line in the audit log (when the registry has one) for a change to prompt ``prompt_id``
        version ``number``; a line that cannot be written is an error: the change is made, but
        unaudited, and a compliance pipeline must hear of it."""
        if self.audit is None:
            return
        v = self.resolve(prompt_id, number)
        self.audit.write(event, prompt_id=str(prompt_id), prompt_version=v["hash"], **details)
        if self.audit.failed:
            raise RegistryError(f"{event} of {prompt_id} v{number} done, but its audit line was not written: "
                                f"{self.audit.failed}")

    def record_evaluation(self, prompt_id: str, number: int, evaluation: dict[str, Any]) -> None:
        with self._writing():
            self.resolve(prompt_id, number).setdefault("evaluations", []).append(evaluation)

    def last_evaluation(self, prompt_id: str, number: int) -> dict[str, Any] | None:
        evaluations = self.resolve(prompt_id, number).get("evaluations") or []
        return evaluations[-1] if evaluations else None


def check_label(label: str) -> None:
    """A label is a name: never empty, never made of digits only (it would read as a version)."""
    if _number(label) or not label.strip():
        raise RegistryError(f"label {label!r}: a label needs a name that is not a version number (it would read "
                            "as one); use a word such as production, staging or rc-12")


def _number(text: str) -> bool:
    """A version number as written: ASCII digits only (``"²".isdigit()`` is true too)."""
    return text.isascii() and text.isdigit()


def project_prompts(settings: Any, branches: bool = True) -> list[tuple[str, Any, Path]]:
    """(suite, prompt, file) for every prompt file the suites name, and (``branches``) each
    file's branches ``NAME@BRANCH.ext`` beside it. Broken files are skipped (a run reports them)."""
    from .config.settings import InlinePrompt
    from .plan.prompts import load_prompt, with_branches

    out = []
    for name, suite in settings.suites.items():
        for ref in suite.prompts:
            if isinstance(ref, InlinePrompt):
                continue
            path = settings.root / ref
            for p in with_branches(path) if branches else [path]:
                try:
                    out.append((name, load_prompt(p, settings.root), p))
                except PromstackError:
                    continue
    return out


# -- a version as the registry API serves it (`promstack serve`, `Client(url=...)`) -----------------

def version_doc(registry: PromptRegistry, prompt_id: str, number: int) -> dict[str, Any]:
    """Version ``number`` of a prompt as JSON: what renders it (``messages``, ``model``,
    ``params``: the loaded prompt, ``file://`` parts already read) and what names it (``hash``,
    the index's content hash, which ``prompt_of`` checks the messages against). No labels: they
    move, and this never changes."""
    from .plan.prompts import load_prompt

    v = registry.resolve(prompt_id, number)
    prompt = load_prompt(registry.snapshot(prompt_id, int(v["number"])), registry.root, default_id=prompt_id)
    return {"id": str(prompt_id), "number": int(v["number"]), "hash": v["hash"], "messages": list(prompt.messages),
            "model": prompt.model, "params": prompt.params, "time": v.get("time"), "author": v.get("author"),
            "message": v.get("message")}


def prompt_of(doc: dict[str, Any], where: str) -> Any:
    """The ``Prompt`` a served version renders with; its content must hash to the served
    ``hash`` (a proxy or a server that changed it is refused, naming ``where``)."""
    from .plan.prompts import Prompt

    try:
        prompt = Prompt(id=str(doc["id"]), messages=tuple(dict(m) for m in doc["messages"]), source=where,
                        model=doc.get("model"), params=dict(doc.get("params") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"{where}: not a promstack prompt version ({type(exc).__name__}: {exc})") from None
    if prompt.version != doc.get("hash"):
        raise RegistryError(f"{where}: the served text hashes to {prompt.version}, not to its version's "
                            f"{doc.get('hash')}: changed on the way; not used")
    return prompt
