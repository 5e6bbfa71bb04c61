"""``promstack.yaml`` or ``[tool.promstack]`` plus command-line options -> one ``Settings``.

Validation is eager and lists every problem at once, each naming the file and key.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..model.errors import ConfigError
from ..util.rotation import Rotation
from .modes import CACHE_MODES, MAX_REPEAT, CacheMode

CONFIG_NAMES = ("promstack.yaml", "promstack.yml")
PROMPTFOO_TOP = frozenset({"prompts", "providers", "targets"})  # the keys that make a YAML file a promptfoo config


def _as_list(v: Any) -> Any:
    """``tests: "a/*.csv"`` means ``tests: ["a/*.csv"]``."""
    return [v] if isinstance(v, str) else v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ModelSpec(_Strict):
    """A model entry: a litellm model name under an alias."""

    name: str
    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class InlinePrompt(_Strict):
    id: str | int
    template: str | None = None
    messages: list[dict[str, Any]] | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    # as in a prompt file (plan/prompts.from_mapping): file:// relative to this config's folder
    tools: list[dict[str, Any]] | str | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


PromptRef = str | InlinePrompt


class GateSpec(_Strict):
    min_quality_score: float | None = Field(None, ge=0, le=100)
    min_pass_rate: float | None = Field(None, ge=0, le=100)
    max_p95_latency_ms: float | None = Field(None, ge=0)
    max_error_rate: float | None = Field(None, ge=0, le=100)
    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: float | None = Field(None, ge=0)

    def values(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CaseDefaults(_Strict):
    """What every case of a suite gets unless it says otherwise (promptfoo's defaultTest)."""

    threshold: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    prefix: str | None = None
    suffix: str | None = None
    transform: str | None = None  # a python expression over output (or file://x.py:fn), before every check


class ProbeSpec(_Strict):
    """A probe suite's ``probes:``: the built-in attacks (safety/probes.yaml) run against its prompt."""

    var: str = "input"  # the prompt's variable each attack is written into
    document_var: str | None = None  # where an indirect attack's document goes (else after the attack, in var)
    families: list[str] | None = None  # None: every family
    languages: list[str] | None = None  # en, ko; None: both
    ids: list[str] | None = None  # only these probes


class SuiteSpec(_Strict):
    prompt: PromptRef | None = None
    prompts: list[PromptRef] | None = None
    tests: list[str] | None = None  # required, unless the suite runs probes:
    probes: ProbeSpec | None = None
    models: list[str] | None = None
    assert_: list[str | dict[str, Any]] = Field(default_factory=list, alias="assert")
    vars: dict[str, Any] = Field(default_factory=dict)
    case_defaults: CaseDefaults | None = None
    gates: GateSpec = Field(default_factory=GateSpec)
    mask_inputs: bool | None = None  # None: the top-level mask_inputs

    _one_glob = field_validator("tests", mode="before")(lambda v: _as_list(v))
    _probes_on = field_validator("probes", mode="before")(lambda v: {} if v is True else v)  # probes: true


class JudgeSpec(_Strict):
    model: str
    criteria: list[str] = Field(default_factory=list)
    scale: tuple[int, int] = (1, 5)
    pass_score: float | None = None
    pass_on: str = "criterion"
    language: str = "ko"
    prompt: str | None = None
    repeat: int = Field(1, ge=1, le=20)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] >= v[1]:
            raise ValueError("must be [low, high] with low < high, e.g. [1, 5]")
        return v

    @field_validator("pass_on")
    @classmethod
    def _pass_on(cls, v: str) -> str:
        if v not in ("criterion", "mean"):
            raise ValueError("must be criterion (every criterion reaches pass_score) or mean")
        return v


class ArenaSpec(_Strict):
    models: list[str] = Field(min_length=2)
    judge: str | None = None
    tests: list[str]
    prompt: PromptRef | None = None
    seed: int = 0
    bootstrap: int = Field(1000, ge=0, le=100_000)

    _one_glob = field_validator("tests", mode="before")(lambda v: _as_list(v))


class CacheSpec(_Strict):
    mode: str = "use"
    dir: str = ".promstack/cache"
    cassettes: str = "cassettes"
    backend: str = "disk"
    url: str | None = None
    ttl: int | None = Field(None, ge=1)

    @field_validator("mode", mode="before")
    @classmethod
    def _unquoted_off(cls, v: Any) -> Any:
        """YAML 1.1 reads an unquoted ``off`` (or ``no``) as false: it means mode off."""
        if v is False:
            return "off"
        if v is True:
            raise ValueError(f"true is not a mode (YAML reads an unquoted on/yes as true); write one of "
                             f"{', '.join(CACHE_MODES)}, quoted if in doubt (mode: \"use\")")
        return v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in CACHE_MODES:
            raise ValueError(f"must be one of {', '.join(CACHE_MODES)}")
        return v

    @field_validator("backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in ("disk", "redis"):
            raise ValueError("must be disk or redis")
        return v


ARTEFACTS = ("results", "html", "failures", "call_log", "cassettes", "audit")


class MaskingSpec(_Strict):
    """What is masked in what promstack writes (safety/mask.py): on by default, every artefact."""

    enabled: bool = True
    types: list[str] | str = Field(default_factory=lambda: ["pii", "secrets"], validate_default=True)
    hashed: bool = False
    min_confidence: Literal["high", "medium", "low"] = "medium"
    results: bool = True  # the results JSON (--promstack-json, baselines)
    html: bool = True  # the HTML report
    failures: bool = True  # a failed case's text, as the terminal shows it and JUnit stores it
    call_log: bool = True  # the call log's error texts
    cassettes: bool = True  # the texts of recorded cassettes (requests, answers, tool calls)
    audit: bool = True  # the audit log's question and answer

    @field_validator("types")
    @classmethod
    def _types(cls, v: Any) -> list[str]:
        from ..safety.detect import parse_types

        return list(parse_types(v))


class GuardInput(_Strict):
    mask: bool = False  # requests of the SDK and the fixture leave masked (their mask_inputs)
    injection: Literal["off", "flag", "block"] = "flag"
    threshold: float = Field(0.5, ge=0, le=1)
    blocked_notice: str = "[요청이 차단되었습니다]"


class GuardOutput(_Strict):
    sensitive: str | None = "[응답 필터링됨]"
    sensitive_types: list[str] | str | None = None  # None: guards.DEFAULT_SENSITIVE and every secret
    harmful: str = "[부적절한 응답]"
    banned: list[str] | str | None = None  # words, or file://words.txt (one per line) inside the project

    @field_validator("sensitive_types")
    @classmethod
    def _types(cls, v: Any) -> list[str] | None:
        from ..safety.detect import parse_types

        return None if v is None else list(parse_types(v))


class GuardsSpec(_Strict):
    """``guards:``: what the SDK's complete() and the fixture do to requests and answers."""

    input: GuardInput = Field(default_factory=GuardInput)
    output: GuardOutput = Field(default_factory=GuardOutput)
class RotateSpec(_Strict):
    max_bytes: int | None = Field(None, ge=1024)
    daily: bool = False


class LogSpec(_Strict):
    """``log:`` as a mapping: the call log's path and its rotation (execute/calllog.py)."""

    path: str = ".promstack/calls.jsonl"
    rotate: RotateSpec | None = None
    keep: int | None = Field(None, ge=1)  # rotated files kept, the oldest removed (None: all)
    gzip: bool = False  # rotated files compressed (all but the newest)

    @field_validator("rotate", mode="before")
    @classmethod
    def _daily(cls, v: Any) -> Any:
        return _rotate_value(v)


class TelemetrySpec(_Strict):
    """``telemetry:``: each SDK and fixture call also a span of the application's OpenTelemetry."""

    otel: bool = False


def _rotate_value(v: Any) -> Any:
    """``rotate: daily`` means ``rotate: {daily: true}``."""
    if isinstance(v, str):
        if v != "daily":
            raise ValueError("write rotate: daily, or rotate: {max_bytes: 10000000} (or both: {max_bytes: N, "
                             "daily: true})")
        return {"daily": True}
    return v


class AuditSpec(_Strict):
    """The audit trail (safety/audit.py): off unless a team turns it on."""

    enabled: bool = False
    path: str = ".promstack/audit.jsonl"
    texts: Literal["masked", "hashed", "none"] = "masked"
    rotate: RotateSpec | None = None

    @field_validator("rotate", mode="before")
    @classmethod
    def _daily(cls, v: Any) -> Any:
        return _rotate_value(v)


ALERT_KEYS = ("max_p95_latency_ms", "max_error_rate", "max_tokens", "max_cost_usd")  # the gate keys alerts reuse
# the guide's thresholds: P95 latency above 5 s, error rate above 1 % (tokens and cost are shares of
# the team's own daily limit and budget)
GUIDE_LIMITS = {"max_p95_latency_ms": 5000.0, "max_error_rate": 1.0}
MISSING_DATA = ("ok", "warning", "alert")
_SPAN = re.compile(r"^([1-9][0-9]*)(m|h|d|w)$")
_SPAN_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def window_seconds(text: str) -> int:
    """``30m``, ``1h``, ``1d``, ``30d``, ``2w`` -> seconds; ValueError in the words a config line needs."""
    found = _SPAN.match(str(text).strip())
    if not found:
        raise ValueError(f"{text!r} is not a window; write a number and m, h, d or w (1h, 1d, 30d)")
    return int(found.group(1)) * _SPAN_UNITS[found.group(2)]


def _window(v: Any) -> Any:
    if v is not None:
        window_seconds(v)
    return v


class AlertRule(_Strict):
    """One rule of ``alerts:``; ``max_p95_latency_ms: 5000`` is ``{limit: 5000}``. ``warning`` and
    ``alert`` are fractions of the limit; unset, their defaults (results/alerts.py)."""

    limit: float = Field(ge=0, allow_inf_nan=False)
    warning: float | None = Field(None, gt=0)  # null (written): no warning level
    alert: float = Field(1.0, gt=0)
    window: str | None = None
    min_requests: int | None = Field(None, ge=0)
    missing_data: Literal["ok", "warning", "alert"] | None = None

    _span = field_validator("window")(lambda v: _window(v))

    @model_validator(mode="after")
    def _warning_below_alert(self) -> AlertRule:
        if self.warning is not None and self.warning > self.alert:
            raise ValueError(f"the warning level ({self.warning:g}) is above the alert level ({self.alert:g}); "
                             "both are fractions of limit, e.g. warning: 0.8, alert: 1.0")
        return self


class AlertsSpec(_Strict):
    """``alerts:``: the gate keys watched on the call logs (``promstack monitor --check``)."""

    max_p95_latency_ms: AlertRule | None = None
    max_error_rate: AlertRule | None = None  # percent, as the gate
    max_tokens: AlertRule | None = None
    max_cost_usd: AlertRule | None = None
    window: str | None = None  # every rule's window unless it sets one (else each key's default)
    min_requests: int = Field(20, ge=0)  # below it, latency and error-rate rules are not judged
    missing_data: Literal["ok", "warning", "alert"] = "ok"  # no call in a rule's window
    webhook_url_env: str | None = None  # the variable holding the webhook URL; the URL never sits in files
    state: str = ".promstack/alerts.json"  # what was notified, so an alert is posted once
    timeout: float = Field(10.0, gt=0, le=120)  # seconds for the webhook post

    _span = field_validator("window")(lambda v: _window(v))

    @field_validator(*ALERT_KEYS, mode="before")
    @classmethod
    def _limit_only(cls, v: Any, info: ValidationInfo) -> Any:
        """``max_p95_latency_ms: 5000`` is ``{limit: 5000}``; a rule without a limit takes the
        guide's (latency and error rate; a token limit and a budget are the team's own)."""
        if isinstance(v, bool) or (not isinstance(v, int | float | dict) and v is not None):
            raise ValueError("write the limit (max_tokens: 2000000) or a rule ({limit: 2000000, window: 1d, "
                             "warning: 0.8})")
        if isinstance(v, dict) and "limit" not in v:
            if info.field_name not in GUIDE_LIMITS:
                what = "the daily token limit" if info.field_name == "max_tokens" else "the budget in USD"
                raise ValueError(f"limit: required: give {what} (there is no default; e.g. "
                                 f"{'limit: 2000000' if info.field_name == 'max_tokens' else 'limit: 500'})")
            v = {"limit": GUIDE_LIMITS[str(info.field_name)], **v}
        return {"limit": v} if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _guide_rules(self) -> AlertsSpec:
        """No rule at all: the guide's two that need no number of the team's (P95 above 5 s,
        error rate above 1 %)."""
        if not any(getattr(self, k) is not None for k in ALERT_KEYS):
            for key, limit in GUIDE_LIMITS.items():
                setattr(self, key, AlertRule(limit=limit))
        return self

    @field_validator("max_error_rate")
    @classmethod
    def _percent(cls, v: AlertRule | None) -> AlertRule | None:
        if v is not None and v.limit > 100:
            raise ValueError(f"limit {v.limit:g} is not a percentage; write 0-100 (1 means 1 % of calls)")
        return v

    @field_validator("webhook_url_env")
    @classmethod
    def _a_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("name the environment variable holding the URL (e.g. PROMSTACK_ALERT_WEBHOOK); "
                             "the URL itself never sits in files")
        return v

    def rules(self) -> dict[str, AlertRule]:
        return {k: rule for k in ALERT_KEYS if (rule := getattr(self, k)) is not None}


class FileConfig(_Strict):
    models: list[str | ModelSpec] = Field(default_factory=list)
    defaults: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(8, ge=1, le=4096)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    transport: Literal["auto", "litellm"] = "auto"
    retry_backoff: float = Field(0.5, ge=0)
    retry_max_wait: float = Field(30.0, ge=0)
    encoding: str | None = None
    cache: CacheSpec = Field(default_factory=CacheSpec)
    log: str | LogSpec | None = ".promstack/calls.jsonl"  # a path, or {path, rotate, keep, gzip}
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    user_id: str | None = None
    repeat: int = Field(1, ge=1, le=MAX_REPEAT)
    min_pass: int | None = Field(None, ge=1)
    suites: dict[str, SuiteSpec] = Field(default_factory=dict)
    judges: dict[str, JudgeSpec] = Field(default_factory=dict)
    default_judge: str | None = None
    embedding_model: str | None = None  # the similar check's (a models: alias or a litellm name)
    moderation_model: str | None = None  # the moderation check's
    arena: ArenaSpec | None = None
    gates: GateSpec = Field(default_factory=GateSpec)
    judge_aggregate: str = "each"
    allow_python: bool = True  # python: targets and assertions are code; false refuses them (CI on pull requests)
    masking: MaskingSpec = Field(default_factory=MaskingSpec)
    mask_inputs: bool = False  # mask PII and secrets in requests before they leave (a suite may say otherwise)
    guards: GuardsSpec | None = None  # None: the SDK and the fixture call as they are
    audit: AuditSpec = Field(default_factory=AuditSpec)
    alerts: AlertsSpec | None = None  # production alerts on the call logs (results/alerts.py)

    @field_validator("judge_aggregate")
    @classmethod
    def _aggregate(cls, v: str) -> str:
        if v not in ("each", "mean", "min", "majority"):
            raise ValueError("must be each, mean, min or majority")
        return v


@dataclass(frozen=True)
class Suite:
    name: str
    prompts: tuple[PromptRef, ...]
    tests: tuple[str, ...]  # the globs as written
    files: tuple[Path, ...]  # what they matched, sorted
    models: tuple[str, ...]  # aliases
    asserts: tuple[str | dict[str, Any], ...]
    vars: dict[str, Any]
    arena: bool = False
    gates: dict[str, float] = field(default_factory=dict)
    defaults: CaseDefaults | None = None
    mask_inputs: bool = False
    probes: ProbeSpec | None = None  # a probe suite: its cases are the probes, planned on the config file


@dataclass(frozen=True)
class Masking:
    """``masking:`` as a run uses it: the types masked (empty: masking is off), how, and the
    artefacts written masked."""

    types: tuple[str, ...] = ()
    hashed: bool = False
    min_confidence: float = 0.6
    artefacts: frozenset[str] = frozenset()

    def on(self, artefact: str) -> bool:
        return bool(self.types) and artefact in self.artefacts


def _masking(spec: MaskingSpec) -> Masking:
    from ..safety.findings import HIGH, LOW, MEDIUM

    if not spec.enabled:
        return Masking()
    return Masking(tuple(spec.types), spec.hashed, {"high": HIGH, "medium": MEDIUM, "low": LOW}[spec.min_confidence],
                   frozenset(a for a in ARTEFACTS if getattr(spec, a)))


@dataclass(frozen=True)
class RunOptions:
    """What this invocation asks for beyond the config (the command line), decided with the
    settings so that nothing reads pytest's options once the run has started."""

    json: tuple[str, ...] = ()  # --promstack-json, --promstack-save-baseline: the results document
    report: str | None = None  # --promstack-report: the HTML report
    baseline: str | None = None
    regression_margin: float = 5.0
    fail_on_regression: bool = False
    registry: str = "auto"  # the prompt registry: auto, write or readonly
    prompt_versions: tuple[tuple[str, str], ...] = ()  # (prompt id, version or label) to run instead of the file
    prompt_branches: bool = False
    estimate: bool = False  # --promstack-estimate: print the cost bound, call nothing
    shard: tuple[int, int] | None = None  # --promstack-shard I/N: this job's shard (1-based) of N


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, validated."""

    root: Path
    source: str  # "promstack.yaml" or "pyproject.toml [tool.promstack]"
    models: dict[str, ModelSpec]
    suites: dict[str, Suite]
    defaults: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 8
    timeout: float = 120.0
    encoding: str | None = None
    cache_dir: Path = Path(".promstack/cache")
    cache_mode: CacheMode = CacheMode.USE
    cassette_dir: Path = Path("cassettes")
    cache_url: str | None = None  # Redis, when set
    cache_ttl: int | None = None
    max_retries: int = 4
    transport: str = "auto"  # "auto": OpenAI-compatible servers called directly; "litellm": every call via litellm
    retry_backoff: float = 0.5
    retry_max_wait: float = 30.0
    log_path: Path | None = None
    log_rotate: Rotation | None = None  # None: the call log is one file that grows
    telemetry: bool = False  # telemetry.otel: SDK and fixture calls are OpenTelemetry spans too
    user_id: str | None = None
    repeat: int = 1
    min_pass: int = 1
    judges: dict[str, Any] = field(default_factory=dict)  # name -> config.judges.Judge
    default_judge: str | None = None
    embedding_model: str | None = None  # None: promptfoo's default (score/measures.py)
    moderation_model: str | None = None
    judge_aggregate: str = "each"
    arena: dict[str, Any] | None = None  # judge, seed, bootstrap, contenders
    gates: tuple[tuple[str, float], ...] = ()  # for the whole run: (key, limit), the config's then --promstack-gate's
    config_file: Path | None = None  # the file the settings came from (None: defaults)
    allow_python: bool = True  # False: python: targets and python assertions are refused (they run code)
    masking: Masking = field(default_factory=lambda: _masking(MaskingSpec()))
    mask_inputs: bool = False
    guards: Any = None  # a safety.guards.GuardPolicy, when promstack.yaml has guards:
    audit: AuditSpec = field(default_factory=AuditSpec)  # path relative to root; written only when enabled
    alerts: AlertsSpec | None = None  # state path relative to root
    run: RunOptions = field(default_factory=RunOptions)

    def tests_folder(self) -> Path:
        """The folder holding every test file of the suites (the config's folder without any)."""
        files = list(self.files())
        if not files:
            return self.root
        common = Path(os.path.commonpath([str(f) for f in files]))
        return common.parent if common in files else common

    def files(self) -> dict[Path, list[Suite]]:
        """Every test file -> the suites that use it. A probe suite's cases hang on the config
        file (it has no test file): pytest collects them from there."""
        out: dict[Path, list[Suite]] = {}
        for suite in self.suites.values():
            anchor = (self.config_file.resolve(),) if suite.probes is not None and self.config_file else ()
            for f in suite.files or anchor:
                out.setdefault(f, []).append(suite)
        return out


def find_config(root: Path, explicit: str | None) -> tuple[Path, dict[str, Any], str] | None:
    """Locate and parse the config; returns (path, raw mapping, source label)."""
    if explicit:
        path = Path(explicit)
        if not path.is_absolute():
            path = root / path
        if not path.is_file():
            raise ConfigError(str(explicit), ["file not found; check --promstack-config"])
        return _read(path)
    for name in CONFIG_NAMES:
        if (root / name).is_file():
            return _read(root / name)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        section = data.get("tool", {}).get("promstack")
        if section is not None:
            return pyproject, section, "pyproject.toml [tool.promstack]"
    return None


def _read(path: Path) -> tuple[Path, dict[str, Any], str]:
    if path.suffix == ".toml":
        import tomllib

        data = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("promstack", {})
        return path, data, f"{path.name} [tool.promstack]"
    data = _read_yaml(path)
    if _promptfoo_like(path, data):  # a promptfoo config is the promstack config it means
        from . import promptfoo

        data, problems = promptfoo.translate(data, path)
        if problems:
            raise ConfigError(path.name, problems)
        return path, data, f"{path.name} (promptfoo)"
    return path, data, path.name


def _promptfoo_like(path: Path, data: dict[str, Any]) -> bool:
    """A promptfoo config: named promptfooconfig*.yaml, or with prompts:/providers: and no suites:/models:
    (decided here, so a promstack.yaml never imports config/promptfoo.py)."""
    if path.name.lower().startswith("promptfooconfig"):
        return True
    return bool(PROMPTFOO_TOP & set(data)) and not {"suites", "models"} & set(data)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from ..util.strict import DuplicateKeyError, load_yaml

    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path.name}:{exc.line}" if exc.line else path.name, [str(exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}" if mark is not None else path.name
        what = getattr(exc, "problem", None) or _one_line(exc)
        raise ConfigError(where, [f"not valid YAML: {what}; check the indentation, colons and quotes there"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path.name, ["not UTF-8; save it as UTF-8"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path.name, ["the top level must be a mapping (models:, suites:, ...)"])
    return data


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def load_settings(root: Path, options: dict[str, Any]) -> Settings:
    """Read the config under ``root`` and apply command-line ``options``."""
    found = find_config(root, options.get("config"))
    if found is None:
        raise ConfigError(
            "promstack",
            [f"no promstack.yaml or [tool.promstack] in {root}; create one (`promstack init` writes a "
             "starter; every key is in docs/configuration.md)"],
        )
    return _from_file(*found, options)


def load_or_default(root: Path, options: dict[str, Any] | None = None) -> Settings:
    """The project's settings, or defaults when it has no promstack config (fixtures, SDK)."""
    options = options or {}
    found = find_config(root, options.get("config"))
    if found is None:
        return build_settings(root, {}, "defaults", options)
    return _from_file(*found, options)


def _from_file(path: Path, raw: dict[str, Any], source: str, options: dict[str, Any]) -> Settings:
    """The settings a config file gives; a promptfoo config's problems in its own words (its
    tests and prompts, not the keys of the suite it becomes)."""
    try:
        return replace(build_settings(path.parent, raw, source, options), config_file=path)
    except ConfigError as exc:
        if not source.endswith("(promptfoo)"):
            raise
        raise ConfigError(exc.source, [re.sub(r"^suites\.[^.:]+\.", "", p) for p in exc.problems]) from None


def build_settings(base: Path, raw: dict[str, Any], source: str, options: dict[str, Any]) -> Settings:
    if "promptfoo" in raw:
        raw = _with_promptfoo(base, raw, source)
    try:
        cfg = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [_pydantic_problem(e) for e in _relevant(exc.errors())]) from None
    problems: list[str] = []
    models = _models(cfg, problems)
    selected_models = _select_models(models, options.get("models") or [], problems)
    suites = _suites(base, cfg, models, selected_models, options.get("suites") or [], problems)
    if options.get("probe"):  # the probe library against one prompt, instead of the suites
        suites = _probe_suite(base, options, models, selected_models, problems)
    repeat = options.get("repeat") or cfg.repeat
    min_pass = cfg.min_pass or repeat
    if min_pass > repeat:
        problems.append(f"min_pass: {min_pass} is more than repeat ({repeat})")
    cache_url = options.get("cache_url") or (cfg.cache.url if cfg.cache.backend == "redis" else None)
    if cfg.cache.backend == "redis" and not cache_url:
        problems.append("cache.url: the redis backend needs url: redis://host:port/db")
    log = options.get("log") or _log_path(cfg.log)
    rotation = _log_rotation(cfg.log, problems)
    _outputs_inside(base, cfg, bool(options.get("log")), problems)
    judges, default_judge = _judges(cfg, problems, models, base)
    wanted = options.get("suites") or (["probe"] if options.get("probe") else [])  # a probe run has no arena
    arena = _arena(base, cfg, models, judges, default_judge, suites, wanted, problems)
    guards = _guards(base, cfg.guards, problems)
    if problems:
        raise ConfigError(source, problems)
    return Settings(
        root=base,
        source=source,
        models=models,
        suites=suites,
        defaults=cfg.defaults,
        # for the whole run: under xdist each of the `workers` processes gets its share
        concurrency=max(1, (options.get("concurrency") or cfg.concurrency) // max(1, options.get("workers") or 1)),
        timeout=cfg.timeout,
        encoding=cfg.encoding,
        cache_dir=base / cfg.cache.dir,
        cache_mode=CacheMode(options.get("cache") or cfg.cache.mode),
        cassette_dir=base / cfg.cache.cassettes,
        cache_url=cache_url,
        cache_ttl=cfg.cache.ttl,
        max_retries=cfg.max_retries,
        transport=cfg.transport,
        retry_backoff=cfg.retry_backoff,
        retry_max_wait=cfg.retry_max_wait,
        log_path=(base / log) if log else None,
        log_rotate=rotation,
        telemetry=cfg.telemetry.otel,
        user_id=cfg.user_id,
        repeat=repeat,
        min_pass=min_pass,
        judges=judges,
        default_judge=default_judge,
        embedding_model=cfg.embedding_model,
        moderation_model=cfg.moderation_model,
        judge_aggregate=cfg.judge_aggregate,
        arena=arena,
        gates=(*cfg.gates.values().items(), *(options.get("gates") or ())),
        allow_python=cfg.allow_python and not options.get("no_python"),
        masking=_masking(cfg.masking),
        mask_inputs=cfg.mask_inputs,
        guards=guards,
        audit=cfg.audit,
        alerts=cfg.alerts,
        run=options.get("run") or RunOptions(),
    )


def _guards(base: Path, spec: GuardsSpec | None, problems: list[str]) -> Any:
    """``guards:`` as the runner uses it; a ban list given as ``file://`` is read here, from a
    file inside the project, and checked, so a bad list stops the run with one line."""
    if spec is None:
        return None
    from ..safety.guards import GuardPolicy

    banned = spec.output.banned
    if isinstance(banned, str):
        banned = _word_file(base, banned, problems)
    items = tuple(str(b) for b in banned or ())
    if items:
        from ..safety.banned import BanList

        try:
            BanList(items)
        except ValueError as exc:
            problems.append(f"guards.output.banned: {exc}")
    i, o = spec.input, spec.output
    return GuardPolicy(mask=i.mask, injection=i.injection, threshold=i.threshold, blocked_notice=i.blocked_notice,
                       sensitive=o.sensitive, sensitive_types=tuple(o.sensitive_types or ()), harmful=o.harmful,
                       banned=items)


def _word_file(base: Path, ref: str, problems: list[str]) -> list[str]:
    from ..util.paths import inside, project_root

    path = base / ref.removeprefix("file://")
    if not ref.startswith("file://") or not inside(path, project_root(base)) or not path.is_file():
        problems.append(f"guards.output.banned: {ref!r} is not a list of words nor file://PATH of a file inside the "
                        "project; write [word, ...] or file://guards/banned.txt (one word per line)")
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"guards.output.banned: cannot read {ref} ({exc}); save it as UTF-8 text")
        return []


def _with_promptfoo(base: Path, raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``promptfoo: path/promptfooconfig.yaml`` (or a list): each config's providers join
    models: and its prompts and tests become a suite named after its folder (or file); its
    grading provider (defaultTest.options.provider) is the default judge unless this file sets one."""
    from ..util.paths import inside, project_root
    from . import promptfoo

    raw = dict(raw)
    entries = raw.pop("promptfoo")
    models = list(raw.get("models") or [])
    suites = dict(raw.get("suites") or {})
    # each config's grading provider (defaultTest.options.provider) by what it is here -> its config
    measurers: dict[str, dict[Any, Any]] = {"default_judge": {}, "embedding_model": {}, "moderation_model": {}}
    problems: list[str] = []
    for i, entry in enumerate([entries] if isinstance(entries, str) else list(entries or [])):
        where = "promptfoo" if isinstance(entries, str) else f"promptfoo[{i}]"
        path = base / str(entry)
        if not inside(path, project_root(base)) or not path.is_file():
            problems.append(f"{where}: {entry!r} is not a file inside the project; name a promptfooconfig.yaml")
            continue
        try:
            data = _read_yaml(path)
        except ConfigError as exc:
            problems += [f"{where}: {p}" for p in exc.problems]
            continue
        name = path.parent.name if path.stem.lower().startswith("promptfooconfig") else path.stem
        name = name if name not in suites and name != base.name else f"promptfoo-{name}"
        translated, found = promptfoo.translate(data, path, name, base)
        problems += [f"{where} ({entry}): {p}" for p in found]
        names = {m if isinstance(m, str) else m.get("name") for m in models}
        models += [m for m in translated["models"] if m["name"] not in names]
        suites.update(translated["suites"])
        for key, found in measurers.items():
            found.setdefault(translated.get(key), entry)
    for key, found in measurers.items():
        found.pop(None, None)
        if len(found) > 1 and not raw.get(key):
            problems.append(f"promptfoo: the configs grade with different providers ({', '.join(map(str, found))}); "
                            f"one is used here: set {key}: in this file")
    if problems:
        raise ConfigError(source, problems)
    raw["models"], raw["suites"] = models, suites
    for key, found in measurers.items():  # promptfoo's grading provider, unless this file names its own
        if found and not raw.get(key):
            raw[key] = next(iter(found))
    return raw


def _judge_template(value: str | None, base: Path, where: str, problems: list[str]) -> str | None:
    """Read a judge's template file once, here; a missing file is a config problem."""
    if value is None:
        return None
    from .judges import load_template

    try:
        return load_template(value, base)
    except OSError as exc:
        problems.append(f"{where}: cannot read {value!r} ({exc.strerror}); give a Jinja2 file relative to "
                        "the config file, or the template text itself")
        return None


def _arena(base: Path, cfg: FileConfig, models: dict[str, ModelSpec], judges: dict[str, Any],
           default_judge: str | None, suites: dict[str, Suite], wanted: list[str], problems: list[str]
           ) -> dict[str, Any] | None:
    """The arena becomes a suite named ``arena`` whose items compare its contenders."""
    spec = cfg.arena
    if spec is None or (wanted and "arena" not in wanted):
        return None
    for m in spec.models:
        if m not in models:
            if "/" not in m:
                problems.append(f"arena.models: unknown model {m!r}; add it under models:")
            models[m] = ModelSpec(name=m, model=m)
    judge = spec.judge or default_judge
    if judge is None:
        known = ", ".join(sorted(cfg.judges or {})) or "none configured"
        problems.append(f"arena.judge: the arena needs a judge and none is set; name one of judges: ({known}) "
                        "as arena.judge, or set default_judge")
    elif judge not in judges and judge not in (cfg.judges or {}):
        problems.append(f"arena.judge: {judge!r} is not a judge under judges: (the arena needs one with criteria)")
    files = _expand(base, spec.tests, "arena.tests", problems)
    prompts = (spec.prompt,) if spec.prompt is not None else (InlinePrompt(id="input", template="{{ input }}"),)
    suites["arena"] = Suite("arena", prompts, tuple(spec.tests), files, tuple(spec.models), (), {}, arena=True)
    return {"judge": judge, "seed": spec.seed, "bootstrap": spec.bootstrap, "contenders": list(spec.models)}


def _judges(cfg: FileConfig, problems: list[str], models: dict[str, ModelSpec],
            base: Path) -> tuple[dict[str, Any], str | None]:
    """Named judges, and the default one: ``default_judge`` names a judge or a model; else the
    judge called ``default``, else the only judge."""
    from .judges import Judge

    judges: dict[str, Any] = {}
    for name, spec in cfg.judges.items():
        if not spec.criteria:
            problems.append(f"judges.{name}.criteria: list at least one criterion")
        if spec.model not in models and "/" not in spec.model and not spec.model.startswith("python:"):
            problems.append(f"judges.{name}.model: unknown model {spec.model!r}; add it under models:, or give a "
                            "litellm 'provider/model' name")
        lo, hi = spec.scale
        pass_score = spec.pass_score if spec.pass_score is not None else hi - (hi - lo) / 4  # 4 on 1-5
        if not lo <= pass_score <= hi:
            problems.append(f"judges.{name}.pass_score: {pass_score:g} is outside the scale {lo}-{hi}")
        judges[name] = Judge(name, spec.model, tuple(spec.criteria), tuple(spec.scale), pass_score, spec.pass_on,
                             spec.language, _judge_template(spec.prompt, base, f"judges.{name}.prompt", problems),
                             spec.repeat, spec.params)
    default = cfg.default_judge
    if default and default not in judges:
        if "/" not in default and default not in models:
            problems.append(f"default_judge: {default!r} is not a judge under judges:, a model under models:, "
                            "or a litellm 'provider/model'")
        else:
            judges["default"] = Judge("default", default, (), (1, 5), 4)
            default = "default"
    if default is None:
        default = "default" if "default" in judges else (next(iter(judges)) if len(judges) == 1 else None)
    return judges, default


def _relevant(errors: list[Any]) -> list[Any]:
    """Without the union's other branch: a ``models:`` entry written as a mapping is not also
    told it "should be a valid string" when the mapping's own problem is named."""
    mapped = {tuple(e["loc"][:i]) for e in errors for i, part in enumerate(e["loc"]) if i and _is_union_tag(part)
              and i < len(e["loc"]) - 1}
    return [e for e in errors if not (e["type"] == "string_type" and e["loc"][-1:] == ("str",)
                                      and tuple(e["loc"][:-1]) in mapped)] or errors


def _pydantic_problem(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        tags = [str(part) for part in err["loc"] if _is_union_tag(part)]
        msg = _unknown_key(str(err["loc"][-1]) if err["loc"] else "", tags[-1] if tags else None)
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] == "value_error":  # our validators' own words, without pydantic's "Value error, "
        msg = str(err.get("ctx", {}).get("error", msg))
    return f"{loc}: {msg}" if loc else msg


def _unknown_key(key: str, within: str | None = None) -> str:
    """``within``: the schema the key was written in, when pydantic names it (a union member)."""
    if key in ("api_key", "key", "token"):
        return ("keys never sit in files: export the key in an environment variable and name it with "
                "api_key_env: (e.g. api_key_env: OPENAI_API_KEY)")
    if key in ("webhook_url", "webhook"):
        return ("a webhook URL is a secret and never sits in files: export it in an environment variable and "
                "name it with webhook_url_env: (e.g. webhook_url_env: PROMSTACK_ALERT_WEBHOOK)")
    import difflib

    schemas = {FileConfig: "at the top level", SuiteSpec: "under suites.NAME", ModelSpec: "in a models: entry",
               JudgeSpec: "under judges.NAME", ProbeSpec: "under suites.NAME.probes",
               ArenaSpec: "under arena:", CacheSpec: "under cache:",
               GateSpec: "under gates:", InlinePrompt: "in an inline prompt", AuditSpec: "under audit:",
               RotateSpec: "under audit.rotate: or log.rotate:", LogSpec: "under log:",
               TelemetrySpec: "under telemetry:", MaskingSpec: "under masking:", GuardsSpec: "under guards:",
               GuardInput: "under guards.input:", GuardOutput: "under guards.output:",
               AlertsSpec: "under alerts:", AlertRule: "in an alerts: rule"}
    homes = [where for schema, where in schemas.items()
             if key in {f.alias or name for name, f in schema.model_fields.items()}]
    if homes:  # a real key, written in the wrong place
        return f"not a key here; {key} is written {' or '.join(homes)} (see docs/configuration.md)"
    here = [schema for schema in schemas if schema.__name__ == within] or list(schemas)
    known = {f.alias or name for schema in here for name, f in schema.model_fields.items()}
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; remove it or check its spelling (the keys: docs/configuration.md)"


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the tried union member's name in the location ("str", "ModelSpec").
    return isinstance(part, str) and (part in {"str", "int"} or part[:1].isupper())


def _models(cfg: FileConfig, problems: list[str]) -> dict[str, ModelSpec]:
    models: dict[str, ModelSpec] = {}
    for i, entry in enumerate(cfg.models):
        spec = ModelSpec(name=entry, model=entry) if isinstance(entry, str) else entry
        if spec.name in models:
            problems.append(f"models[{i}]: the name {spec.name!r} is used twice")
        models[spec.name] = spec
    return models


def _select_models(models: dict[str, ModelSpec], wanted: list[str], problems: list[str]) -> list[str]:
    """``--promstack-model``: a configured alias, or any litellm model name."""
    for name in wanted:
        if name not in models:
            if "/" not in name:
                problems.append(
                    f"--promstack-model {name}: not a configured model and not a "
                    "litellm 'provider/model' name"
                )
                continue
            models[name] = ModelSpec(name=name, model=name)
    return list(wanted)


def _suites(
    base: Path,
    cfg: FileConfig,
    models: dict[str, ModelSpec],
    override: list[str],
    wanted: list[str],
    problems: list[str],
) -> dict[str, Suite]:
    for name in wanted:
        if name not in cfg.suites and not (name == "arena" and cfg.arena is not None):
            known = ", ".join(sorted(cfg.suites)) or "none"
            problems.append(f"--promstack-suite {name}: no such suite (configured: {known})")
    out: dict[str, Suite] = {}
    for name, spec in cfg.suites.items():
        if wanted and name not in wanted:
            continue
        where = f"suites.{name}"
        prompts = _suite_prompts(spec, where, problems)
        if spec.probes is not None and spec.tests is not None:
            problems.append(f"{where}: a probe suite's cases are the probes; give tests: or probes:, not both "
                            "(test files go in a suite of their own)")
        elif spec.probes is None and spec.tests is None:
            problems.append(f"{where}.tests: required key is missing (the globs of the suite's test files; or "
                            "probes: for a probe suite)")
        files = _expand(base, spec.tests or [], f"{where}.tests", problems)
        suite_models = tuple(override or spec.models or list(models))
        if not override:
            for m in spec.models or []:
                if m not in models:
                    problems.append(f"{where}.models: unknown model {m!r}; add it under models:")
        out[name] = Suite(name, prompts, tuple(spec.tests or ()), files, suite_models,
                          tuple(spec.assert_), spec.vars, gates=spec.gates.values(), defaults=spec.case_defaults,
                          probes=spec.probes,
                          mask_inputs=cfg.mask_inputs if spec.mask_inputs is None else spec.mask_inputs)
    return out


def _probe_suite(base: Path, options: dict[str, Any], models: dict[str, ModelSpec], selected: list[str],
                 problems: list[str]) -> dict[str, Suite]:
    """``--promstack-probe PROMPT`` (``promstack probe``): the one suite of the run, ``probe``,
    the probe library against that prompt file on the chosen (else every configured) model."""
    from ..util.paths import inside, project_root

    ref = str(options["probe"])
    path = base / ref
    if not path.is_file() or not inside(path, project_root(base)):
        problems.append(f"--promstack-probe {ref}: not a prompt file inside the project (relative to the "
                        "config's folder); name one such as prompts/support.yaml")
        return {}
    if not selected and not models:
        problems.append(f"--promstack-probe {ref}: no model to probe; list models: in the config or pass "
                        "--promstack-model")
    spec = ProbeSpec(var=options.get("probe_var") or "input", families=options.get("probe_families") or None)
    return {"probe": Suite("probe", (ref,), (), (), tuple(selected or models), (), {}, probes=spec)}


def _suite_prompts(spec: SuiteSpec, where: str, problems: list[str]) -> tuple[PromptRef, ...]:
    if spec.prompt is not None and spec.prompts is not None:
        problems.append(f"{where}: give either prompt: or prompts:, not both")
    refs = list(spec.prompts or ([spec.prompt] if spec.prompt is not None else []))
    return tuple(refs) if refs else (InlinePrompt(id="input", template="{{ input }}"),)


def _log_path(spec: str | LogSpec | None) -> str | None:
    return spec.path if isinstance(spec, LogSpec) else spec


def _log_rotation(spec: str | LogSpec | None, problems: list[str]) -> Rotation | None:
    """``log: {rotate: ..., keep: N, gzip: true}`` as the call log's Rotation; keep and gzip
    mean nothing without rotate."""
    if not isinstance(spec, LogSpec):
        return None
    if spec.rotate is None or not (spec.rotate.max_bytes or spec.rotate.daily):
        problems += [f"log.{key}: applies to rotated files, and the log is not rotated; add rotate: daily or rotate: "
                     "{max_bytes: 10000000}" for key in ("keep", "gzip") if getattr(spec, key)]
        return None
    return Rotation(spec.rotate.max_bytes, spec.rotate.daily, spec.keep, spec.gzip)


def _outputs_inside(base: Path, cfg: FileConfig, log_option: bool, problems: list[str]) -> None:
    """Paths the config makes the run write (the call log, the cache, the cassettes) resolve
    inside the project: promstack.yaml may come from a pull request, and must not make CI
    append to, replace or rename a file elsewhere. Paths given on the command line are the
    CI author's and stay free (``--promstack-log``)."""
    from ..util.paths import inside, project_root

    project = project_root(base)
    written = (  # key, value, an example inside, the command-line option that may point elsewhere
        ("cache.dir", cfg.cache.dir, ".promstack/cache", None),
        ("cache.cassettes", cfg.cache.cassettes, "cassettes", None),
        ("log" if not isinstance(cfg.log, LogSpec) else "log.path", None if log_option else _log_path(cfg.log),
         ".promstack/calls.jsonl", "--promstack-log PATH"),
        ("audit.path", cfg.audit.path, ".promstack/audit.jsonl", None),
        ("alerts.state", cfg.alerts.state if cfg.alerts else None, ".promstack/alerts.json", None),
    )
    for key, value, example, option in written:
        if value is None:
            continue
        path = base / value
        if not inside(path, project):
            elsewhere = f", or give a path elsewhere on the command line ({option})" if option else ""
            problems.append(f"{key}: {value!r} resolves to {path.resolve()}, outside the project ({project}); paths "
                            "the config writes stay inside the repository (a symlink or '..' may not lead out): use "
                            f"a relative path such as {example}{elsewhere}")
        elif key == "cache.dir" and path.resolve() == project.resolve():
            problems.append(f"cache.dir: {value!r} is the project folder itself; the cache needs a folder of its own, "
                            f"such as {example}")


def _expand(base: Path, patterns: list[str], where: str, problems: list[str]) -> tuple[Path, ...]:
    from ..util.paths import inside, outside, project_root

    project = project_root(base)
    files: set[Path] = set()
    for pattern in patterns:
        matched = [Path(p) for p in glob.glob(str(base / pattern), recursive=True)]
        matched = [p for p in matched if p.is_file()]
        if not matched:
            problems.append(f"{where}: no file matches {pattern!r}")
        for p in matched:
            if inside(p, project):
                files.add(p.resolve())
            else:
                problems.append(f"{where}: {outside(p.relative_to(base) if p.is_relative_to(base) else p, project)}")
    return tuple(sorted(files))
