"""A prompt file's ``response_format:`` (structured output): OpenAI's ``{type: json_schema,
json_schema: {name, schema}}`` or ``{type: json_object}``, checked when the file is read; the
schema inline or in a ``file://schema.json`` beside the prompt file (inside the project). It
joins the request's params, so it is in the prompt's version and in the cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..model.errors import CaseError

SHAPE = "{type: json_schema, json_schema: {name: ..., schema: {...} or file://schema.json}} or {type: json_object}"


def with_response_format(params: dict[str, Any], value: Any, source: str, base: Path | None) -> dict[str, Any]:
    """``params`` with the checked ``response_format``; raises ``CaseError`` naming the key."""
    if "response_format" in params:
        raise CaseError(source, None, "response_format: is given twice (top level and in params:); keep the "
                        "top-level one")
    return {**params, "response_format": checked(value, source, base)}


def checked(value: Any, source: str, base: Path | None) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("json_schema", "json_object"):
        raise CaseError(source, None, f"response_format: must be {SHAPE}")
    extra = sorted(set(value) - {"type", "json_schema"} if kind == "json_schema" else set(value) - {"type"})
    if extra:
        raise CaseError(source, None, f"response_format: unknown key(s) {', '.join(map(str, extra))}; write {SHAPE}")
    if kind == "json_object":
        return {"type": "json_object"}
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip() \
            or "schema" not in spec:
        raise CaseError(source, None, "response_format.json_schema: needs name: (text) and schema: (a JSON schema "
                        "mapping or file://schema.json)")
    schema = spec["schema"]
    if isinstance(schema, str) and schema.startswith("file://"):
        schema = _schema_file(schema, source, base)
    if not isinstance(schema, dict):
        raise CaseError(source, None, "response_format.json_schema.schema: must be a JSON schema mapping "
                        "(inline, or file://schema.json relative to the prompt file)")
    _check_schema(schema, source)
    return {"type": "json_schema", "json_schema": {**spec, "schema": schema}}


def _schema_file(ref: str, source: str, base: Path | None) -> Any:
    """The schema a ``file://`` names, read as every value file is (plan/values.load: relative to
    the prompt file, inside the project, .json/.yaml as data, bounded in size)."""
    key = "response_format.json_schema.schema"
    if base is None:
        raise CaseError(source, None, f"{key}: {ref} is read relative to a prompt file; give the schema inline here")
    from .values import ValueProblem, load

    try:
        return load(ref, base, base)
    except ValueProblem as exc:
        raise CaseError(source, None, f"{key}: {exc}") from None


def _check_schema(schema: dict[str, Any], source: str) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise CaseError(source, None, f"response_format.json_schema.schema: not a valid JSON schema at {where}: "
                        f"{exc.message}") from None
