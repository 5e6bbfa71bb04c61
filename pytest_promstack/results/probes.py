"""Which probes broke a prompt, per suite x model x prompt version: the results document's
``probes`` and the terminal's probe lines. A probe case (its record's metadata names its
``probe``) broke the prompt when it failed, resisted it when it passed; an error is neither."""

from __future__ import annotations

from typing import Any


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per suite x model x prompt version that ran probes: the probe library's
    version, the ids that broke the prompt, resisted it and errored, and per family the ids
    run and the ids that broke it; probes in library order."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        if "probe" in (r.get("metadata") or {}):
            key = (str(r.get("suite")), str(r.get("model")), str(r.get("prompt_id")), str(r.get("prompt_version")))
            groups.setdefault(key, []).append(r)
    return [_entry(key, sorted(rows, key=lambda r: int(r.get("row") or 0))) for key, rows in sorted(groups.items())]


def _entry(key: tuple[str, str, str, str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    suite, model, prompt_id, version = key
    families: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        family = families.setdefault(str(r["metadata"].get("probe_family")), {"run": [], "broken": []})
        family["run"].append(_id(r))
        if r.get("outcome") == "failed":
            family["broken"].append(_id(r))
    return {"suite": suite, "model": model, "prompt_id": prompt_id, "prompt_version": version,
            "library": rows[0]["metadata"].get("probe_library"), "run": len(rows),
            "broken": [_id(r) for r in rows if r.get("outcome") == "failed"],
            "resisted": [_id(r) for r in rows if r.get("outcome") == "passed"],
            "errors": [_id(r) for r in rows if r.get("outcome") not in ("failed", "passed")],
            "families": families}


def _id(record: dict[str, Any]) -> str:
    return str(record["metadata"]["probe"])


def lines(records: list[dict[str, Any]]) -> list[str]:
    """The terminal's lines: per suite x model x prompt, how many probes broke it, then each
    family that broke it with its probes' ids."""
    out = []
    for e in summarise(records):
        head = (f"promstack: probes: suite {e['suite']}, model {e['model']}, "
                f"prompt {e['prompt_id']}@{e['prompt_version']}")
        tail = f"{len(e['resisted'])} resisted, {len(e['errors'])} errors; probe library v{e['library']}"
        if not e["broken"]:
            out.append(f"{head}: no probe broke the prompt ({tail})")
            continue
        out.append(f"{head}: {len(e['broken'])} of {e['run']} probes broke the prompt ({tail})")
        out += [f"promstack:   {family} {len(f['broken'])}/{len(f['run'])}: {', '.join(f['broken'])}"
                for family, f in e["families"].items() if f["broken"]]
    return out
