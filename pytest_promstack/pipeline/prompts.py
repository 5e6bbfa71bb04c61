"""A run's prompt versions: the registry (versions.py) observed at the start, a recorded
version swapped in for a prompt file (``--promstack-prompt-version``), the names the reports
give a version (``support@v3[production]``) and the texts they diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config.settings import Settings
from ..model.errors import CaseError
from ..plan.planner import Planner
from ..plan.prompts import Prompt, load_prompt
from ..util.paths import rel


class PromptVersions:
    def __init__(self, settings: Settings, worker: bool, warn: Callable[[str], None]) -> None:
        self.settings = settings
        self.worker = worker  # an xdist worker only reads the registry
        self.warn = warn
        self.numbers: dict[tuple[str, str], tuple[int | None, list[str]]] = {}  # (id, hash) -> number, labels
        self.notes: list[str] = []
        self._registry: Any = None

    def registry(self) -> Any:
        if self._registry is None:
            from ..versions import PromptRegistry, in_ci

            mode = self.settings.run.registry
            readonly = self.worker or mode == "readonly" or (mode == "auto" and in_ci())
            self._registry = PromptRegistry(self.settings.root, readonly=readonly)
        return self._registry

    def swap(self, prompt: Prompt, path: Path) -> Prompt | str:
        """--promstack-prompt-version: a prompt file's recorded version runs instead of it."""
        wanted = dict(self.settings.run.prompt_versions).get(prompt.id)
        if wanted is None:
            return prompt
        from ..versions import RegistryError

        try:
            reg = self.registry()
            number = reg.resolve(prompt.id, wanted)["number"]
            return load_prompt(reg.snapshot(prompt.id, number), self.settings.root, default_id=prompt.id)
        except RegistryError as exc:
            return f"{rel(path, self.settings.root)}: --promstack-prompt-version {prompt.id}={wanted}: {exc}"

    def observe(self, planner: Planner) -> None:
        """Record each prompt file's new content as a version; note the version numbers and
        labels the reports show."""
        from ..versions import RegistryError

        reg = self.registry()
        overridden = dict(self.settings.run.prompt_versions)
        try:
            for suite in self.settings.suites.values():
                for p in planner.prompts(suite):
                    if isinstance(p, Prompt) and p.id in planner.prompt_files:
                        self._observe(reg, p, planner.prompt_files[p.id], p.id in overridden)
        except (RegistryError, OSError) as exc:
            self.warn(f"prompt registry: {exc}")
        for pid, wanted in self.settings.run.prompt_versions:
            if pid not in planner.prompt_files:
                known = ", ".join(sorted(planner.prompt_files)) or "none"
                self.warn(f"--promstack-prompt-version {pid}={wanted}: no prompt file of the suites has id {pid!r} "
                          f"(prompt ids: {known}); nothing was swapped")

    def _observe(self, reg: Any, p: Prompt, file: Any, overridden: bool) -> None:
        from ..versions import in_ci

        seen = reg.observe(p.id, p.version, file) if not overridden else None
        number = seen.number if seen is not None else reg.number_of(p.id, p.version)
        self.numbers[(p.id, p.version)] = (number, reg.labels_of(p.id, number))
        if seen is not None and seen.new:
            self.notes.append(f"promstack: recorded prompt {p.id} version {seen.number} ({p.version}) "
                              f"in {reg.rel(reg.dir)}; commit it")
        elif seen is not None and seen.number is None:
            why = "CI is set" if in_ci() else "--promstack-registry readonly"
            self.warn(f"{p.source}: prompt {p.id} content {p.version} is not in the prompt registry "
                      f"(read-only: {why}); record it with a local run or `promstack prompt list` "
                      "and commit .promstack/prompts")

    def name(self, prompt_id: Any, version: Any) -> str:
        """``support@v3[production]`` when the registry knows the version, else ``support@<hash>``."""
        number, labels = self.numbers.get((str(prompt_id), str(version)), (None, []))
        if number is None:
            return f"{prompt_id}@{version}"
        return f"{prompt_id}@v{number}" + (f"[{','.join(labels)}]" if labels else "")

    def texts(self, planner: Planner, used: set[tuple[str, str]]) -> list[dict[str, Any]]:
        """Each prompt version used: its messages as written (the reports diff them), its
        registry number and labels, and the ``production`` version's messages when it differs."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for suite in self.settings.suites.values():  # loaded here too: under xdist only workers collect
            for p in planner.prompts(suite):
                if isinstance(p, Prompt) and (p.id, p.version) in used:
                    number, labels = self.numbers.get((p.id, p.version), (None, []))
                    seen[(p.id, p.version)] = {"id": p.id, "version": p.version, "source": p.source,
                                               "messages": list(p.messages), "model": p.model, "params": p.params,
                                               "number": number, "labels": labels,
                                               "production": self._production(p, number)}
        return [seen[k] for k in sorted(seen)]

    def _production(self, p: Prompt, number: int | None) -> dict[str, Any] | None:
        from ..versions import RegistryError

        try:
            reg = self.registry()
            prod = (reg.entry(p.id).get("labels") or {}).get("production") if p.id in reg.data["prompts"] else None
            if prod is None or prod == number:
                return None
            other = load_prompt(reg.snapshot(p.id, prod), self.settings.root, default_id=p.id)
        except (RegistryError, CaseError, OSError):
            return None
        return {"number": prod, "version": other.version, "messages": list(other.messages), "model": other.model,
                "params": other.params}
