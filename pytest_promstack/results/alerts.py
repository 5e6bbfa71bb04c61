"""Alerts on live traffic with the gate names: the ``alerts:`` rules judged on the call logs'
figures over a window ending now, and a webhook notification posted once per alert.

``evaluate`` is pure: it asks ``figures_for(span)`` for ONE overall row (the shape of
``results/monitor.figures(by=())``) per distinct window. ``notify`` remembers in a state file
what was posted, per set of logs checked, so a firing rule is posted once, again after it
recovered to ok, and again when it rises above the highest level posted since (warning to alert;
alert, warning, alert again is not news). Posting never raises: a failed post is one warning line
and the alert stays unposted, to be tried on the next check."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config.settings import ALERT_KEYS, AlertRule, AlertsSpec, window_seconds

ALERT_EXIT = 1  # `promstack monitor --check`: 0 nothing at alert level (warnings are posted, not failed)
SEVERITY = {"ok": 0, "warning": 1, "alert": 2}
# the guide's steps: budgets warn at 80 % of the daily token limit and 90 % of the cost budget
DEFAULT_WARNING = {"max_p95_latency_ms": 0.8, "max_error_rate": 0.8, "max_tokens": 0.8, "max_cost_usd": 0.9}
DEFAULT_WINDOW = {"max_p95_latency_ms": "1h", "max_error_rate": "1h", "max_tokens": "1d", "max_cost_usd": "30d"}
FIELD = {"max_p95_latency_ms": "p95_ms", "max_error_rate": "error_rate", "max_tokens": "tokens",
         "max_cost_usd": "cost_usd"}
SAMPLED = ("max_p95_latency_ms", "max_error_rate")  # judged only over min_requests calls or more
FiguresFor = Callable[[timedelta], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Verdict:
    """One rule's state. ``level``: ok, warning, alert, no-data (no call, or no figure, in the
    window) or too-few (fewer calls than min_requests); ``severity`` (ok, warning, alert) is what
    it notifies and exits with: no-data's is the rule's missing_data, too-few's is ok."""

    key: str
    level: str
    severity: str
    value: float | None
    threshold: float | None  # the level crossed; else the next level up (None: no level to reach)
    window: str
    window_start: str
    window_end: str
    calls: int
    message: str

    def line(self) -> str:
        return f"promstack: {'ALERT' if self.severity == 'alert' else self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """What ``promstack monitor --check`` prints and exits with."""

    verdicts: list[Verdict]
    lines: list[str]  # a line per rule, then what was posted or could not be
    exit_code: int


def check(spec: AlertsSpec | None, figures_for: FiguresFor, now: datetime, *, root: Path,
          environ: Mapping[str, str] | None = None, scope: str = "", post_news: bool = True) -> Check:
    """Evaluate the rules, post what newly fires, and decide the exit code. ``scope`` names the
    logs checked (their state is their own); ``post_news=False`` judges only (a past moment)."""
    verdicts = evaluate(spec, figures_for, now)
    posted = notify(verdicts, spec, root / spec.state, now, environ, scope) if spec is not None and post_news else []
    return Check(verdicts, [v.line() for v in verdicts] + posted, exit_code(verdicts))


def exit_code(verdicts: Sequence[Verdict]) -> int:
    return ALERT_EXIT if any(v.severity == "alert" for v in verdicts) else 0


def evaluate(spec: AlertsSpec | None, figures_for: FiguresFor, now: datetime) -> list[Verdict]:
    """A verdict per configured rule, in the order of ALERT_KEYS; one figures_for call per window."""
    if spec is None:
        return []
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    rows: dict[str, Mapping[str, Any] | None] = {}
    verdicts = []
    for key, rule in spec.rules().items():
        window = rule.window or spec.window or DEFAULT_WINDOW[key]
        span = timedelta(seconds=window_seconds(window))
        if window not in rows:
            rows[window] = figures_for(span)
        verdicts.append(_judge(key, rule, spec, Span(window, now - span, now), rows[window]))
    return verdicts


@dataclass(frozen=True)
class Span:
    name: str
    start: datetime
    end: datetime


def levels(key: str, rule: AlertRule) -> tuple[float | None, float]:
    """(warning threshold or None, alert threshold), in the key's unit."""
    warning = rule.warning if "warning" in rule.model_fields_set else DEFAULT_WARNING[key]
    return (None if warning is None else _round(rule.limit * warning)), _round(rule.limit * rule.alert)


def _round(x: float) -> float:
    return float(f"{x:.12g}")  # 0.7 * 3 is 2.1, not 2.0999999999999996: a value at the level is not above it


def _judge(key: str, rule: AlertRule, spec: AlertsSpec, span: Span, row: Mapping[str, Any] | None) -> Verdict:
    calls = int((row or {}).get("calls") or 0)
    raw = None if row is None else row.get(FIELD[key])
    value = None if raw is None else _round(float(raw))  # a sum of 100 x 0.001 is 0.1, at the level, not above
    warning, alert = levels(key, rule)

    def verdict(level: str, severity: str, threshold: float | None, message: str) -> Verdict:
        return Verdict(key, level, severity, value, threshold, span.name, _iso(span.start), _iso(span.end), calls,
                       f"{key}: {message}")

    lower = _priced_part(key, row) if calls and value is None else None
    if lower is not None:  # some calls are unpriced: what is priced is a lower bound of the cost
        for level, threshold in (("alert", alert), ("warning", warning)):
            if threshold is not None and lower > threshold:
                return verdict(level, level, threshold,
                               f"cost at least {_fmt(key, lower)} over the last {span.name} ({row['unpriced']:,} "
                               f"calls unpriced) is above the {level} level {_level(key, threshold, rule, calls)}")
    if not calls or value is None:
        policy = rule.missing_data or spec.missing_data
        what = "no call" if not calls else f"no {_NAMES[key]} figure ({_count(calls)})"
        if lower is not None:
            what = (f"cost unknown: {row['unpriced']:,} of {_count(calls)} unpriced (the priced ones: "  # type: ignore[index]
                    f"{_fmt(key, lower)}; give the model input_cost_per_token and output_cost_per_token)")
        return verdict("no-data", policy, alert, f"{what} over the last {span.name} (missing_data: {policy})")
    minimum = spec.min_requests if rule.min_requests is None else rule.min_requests
    seen = f"{_shown(key, value, alert if value > alert else warning)} over the last {span.name}"
    if key in SAMPLED and calls < minimum:
        return verdict("too-few", "ok", alert, f"{seen}, {_count(calls)}, fewer than min_requests {minimum}: "
                                               "not judged")
    for level, threshold in (("alert", alert), ("warning", warning)):
        if threshold is not None and value > threshold:
            return verdict(level, level, threshold,
                           f"{seen} is above the {level} level {_level(key, threshold, rule, calls)}")
    name, below = ("warning", warning) if warning is not None else ("alert", alert)
    return verdict("ok", "ok", below, f"{seen} is within the {name} level {_level(key, below, rule, calls)}")


def _priced_part(key: str, row: Mapping[str, Any] | None) -> float | None:
    """The priced calls' cost of a row whose cost is unknown because some calls are unpriced."""
    if key != "max_cost_usd" or row is None or not row.get("unpriced") or row.get("priced_cost_usd") is None:
        return None
    return float(row["priced_cost_usd"])


_NAMES = {"max_p95_latency_ms": "latency", "max_error_rate": "error rate", "max_tokens": "token",
          "max_cost_usd": "cost"}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _count(calls: int) -> str:
    return f"{calls:,} call{'s' if calls != 1 else ''}"


def _fmt(key: str, v: float, beside: float | None = None) -> str:
    """``v`` in the key's unit; with ``beside`` (a level), with as many decimals as it takes not
    to look equal to it (P95 5,000.01 ms is above 5,000 ms, not at it)."""
    shown = _plain(key, v)
    if beside is None or v == beside or shown != _plain(key, beside):
        return shown
    for digits in range(2, 10):
        if _digits(key, v, digits) != _digits(key, beside, digits):
            return _digits(key, v, digits)
    return shown


def _digits(key: str, v: float, digits: int) -> str:
    number = f"{v:,.{digits}f}"
    units = {"max_cost_usd": f"${number}", "max_error_rate": f"{number} %", "max_p95_latency_ms": f"{number} ms"}
    return units.get(key, number)


def _plain(key: str, v: float) -> str:
    if key == "max_cost_usd":
        return f"${v:,.4f}" if 0 < v < 0.01 else f"${v:,.2f}"
    if key == "max_error_rate":
        return f"{v:,.2f}".rstrip("0").rstrip(".") + " %"
    unit = " ms" if key == "max_p95_latency_ms" else ""
    return f"{v:,.0f}{unit}" if v == int(v) or v >= 100 else f"{v:,.2f}{unit}"


def _shown(key: str, v: float, beside: float | None = None) -> str:
    return {"max_p95_latency_ms": "P95 {}", "max_error_rate": "error rate {}", "max_tokens": "{} tokens",
            "max_cost_usd": "cost {}"}[key].format(_fmt(key, v, beside))


def _level(key: str, threshold: float, rule: AlertRule, calls: int) -> str:
    """The threshold, which share of the limit it is when not the limit itself, and the calls."""
    if threshold == rule.limit or not rule.limit:
        return f"{_fmt(key, threshold)} ({_count(calls)})"
    share = f"{100 * threshold / rule.limit:.0f}%"
    return f"{_fmt(key, threshold)} ({share} of the limit {_fmt(key, rule.limit)}; {_count(calls)})"


# -- notifications --------------------------------------------------------------------------------

def notify(verdicts: Sequence[Verdict], spec: AlertsSpec, state_path: Path, now: datetime,
           environ: Mapping[str, str] | None = None, scope: str = "") -> list[str]:
    """Post the verdicts that newly fire (a rule not notified since it was last ok, or risen above
    the level posted) and record them in ``state_path`` under ``scope`` (the logs checked: two
    applications' logs keep apart states); returns the lines to print. Never raises."""
    with _locked(state_path, spec.timeout + 30) as held:
        if not held:
            return [f"promstack: warning: another check holds the alerts state {state_path.name}; this one posted "
                    "nothing (it will be judged again on the next check)"]
        return _notify(verdicts, spec, state_path, now, environ, scope)


@contextlib.contextmanager
def _locked(state_path: Path, timeout: float) -> Iterator[bool]:
    """One check at a time reads, posts and writes the state (checks that overlap, from cron or
    two hosts sharing a folder, post an alert once). A lock that cannot be made (a read-only
    folder) is no lock: the state write warns then."""
    from filelock import FileLock, Timeout

    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(state_path) + ".lock", timeout=timeout)
        lock.acquire()
    except Timeout:
        yield False
        return
    except OSError:
        yield True
        return
    try:
        yield True
    finally:
        lock.release()


def _notify(verdicts: Sequence[Verdict], spec: AlertsSpec, state_path: Path, now: datetime,
            environ: Mapping[str, str] | None, scope: str) -> list[str]:
    scopes, lines = _read_state(state_path)
    state = scopes.get(scope, {})
    news = [v for v in verdicts if _is_news(v, state.get(v.key))]
    delivered = True
    if news and spec.webhook_url_env:
        error = _deliver(news, spec, os.environ if environ is None else environ)
        delivered = error is None
        lines.append(error or f"promstack: posted {_what(news)} to the webhook in ${spec.webhook_url_env}")
    after = _next_state(state, verdicts, news if delivered else [], now)
    if after != state:
        lines += _write_state(state_path, {**scopes, scope: after} if after else
                              {k: v for k, v in scopes.items() if k != scope})
    return lines


def _what(news: Sequence[Verdict]) -> str:
    """``1 alert``, ``2 warnings``, ``1 alert and 1 warning``."""
    alerts = sum(v.severity == "alert" for v in news)
    parts = [_plural(alerts, "alert")] if alerts else []
    parts += [_plural(len(news) - alerts, "warning")] if len(news) > alerts else []
    return " and ".join(parts)


def _is_news(v: Verdict, before: Mapping[str, Any] | None) -> bool:
    if v.severity == "ok":
        return False
    return before is None or SEVERITY[v.severity] > SEVERITY.get(str(before.get("severity")), 0)


def _next_state(state: Mapping[str, Any], verdicts: Sequence[Verdict], posted: Sequence[Verdict],
                now: datetime) -> dict[str, Any]:
    """A rule back to ok is forgotten (its next firing is news); one still firing keeps the
    highest level posted, so falling from alert to warning and rising again is not posted twice
    (a P95 hovering at the level would post on every other check)."""
    out: dict[str, Any] = {}
    posted_keys = {v.key for v in posted}
    for v in verdicts:
        before = state.get(v.key)
        if v.severity == "ok":
            continue
        if v.key in posted_keys:
            out[v.key] = {"severity": v.severity, "notified": _iso(now), "message": v.message}
        elif before is not None:
            out[v.key] = dict(before)
    return out


def _read_state(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each scope's rules (version 1 files held the default scope's rules alone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:
        return {}, [f"promstack: warning: alerts state {path.name} unreadable ({_reason(exc)}); starting afresh: "
                    "firing alerts are posted again"]
    scopes = data.get("scopes") if isinstance(data, dict) else None
    if isinstance(data, dict) and scopes is None and "rules" in data:
        scopes = {"": data["rules"]}
    if not isinstance(scopes, dict) or not all(isinstance(r, dict) for r in scopes.values()):
        return {}, [f"promstack: warning: alerts state {path.name} is not promstack's (no scopes); starting afresh: "
                    "firing alerts are posted again"]
    return {str(scope): {k: r for k, r in rules.items() if k in ALERT_KEYS and isinstance(r, dict)}
            for scope, rules in scopes.items()}, []


def _write_state(path: Path, scopes: Mapping[str, Any]) -> list[str]:
    from ..util.files import atomic_write

    try:
        atomic_write(path, json.dumps({"version": 2, "scopes": scopes}, ensure_ascii=False, indent=2) + "\n")
    except OSError as exc:
        return [f"promstack: warning: cannot write the alerts state {path} ({_reason(exc)}); the same alerts are "
                "posted again on the next check"]
    return []


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def payload(news: Sequence[Verdict]) -> dict[str, Any]:
    """Slack-compatible: ``text`` for any webhook (and Slack's notification), one mrkdwn section."""
    alerts = sum(v.severity == "alert" for v in news)
    head = f"promstack: {_plural(alerts, 'alert')}, {_plural(len(news) - alerts, 'warning')}"
    body = "\n".join(f"• {'ALERT' if v.severity == 'alert' else 'warning'}: {v.message}" for v in news)
    text = f"{head}\n{body}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(text)}}]}


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _deliver(news: Sequence[Verdict], spec: AlertsSpec, environ: Mapping[str, str]) -> str | None:
    """None when posted; else the warning line, which never holds the URL whole."""
    name = spec.webhook_url_env
    url = (environ.get(name) or "").strip() if name else ""
    retry = f"{_plural(len(news), 'alert')} not posted; tried again on the next check"
    if not url:
        return f"promstack: warning: alerts.webhook_url_env: ${name} is not set; {retry}"
    error = post(url, payload(news), spec.timeout)
    if error is None:
        return None
    return f"promstack: warning: the webhook in ${name} ({shown_url(url)}) failed: {error}; {retry}"


def post(url: str, body: Mapping[str, Any], timeout: float) -> str | None:
    """POST ``body`` as JSON; None when the server answered 2xx, else why not (without the URL)."""
    import http.client
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if parts.username is not None:  # urllib takes no user:password@ in the URL: send it as Basic auth
        headers["Authorization"] = _basic_auth(parts.username, parts.password or "")
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    request = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # http(s) only: checked above
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (TimeoutError, urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return f"no answer in {timeout:g} s"
        return _redacted(_reason(reason) if isinstance(reason, BaseException) else str(reason), url)
    return None


def _basic_auth(user: str, password: str) -> str:
    import base64
    from urllib.parse import unquote

    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def shown_url(url: str) -> str:
    """A webhook URL's secret is its path and query: only the scheme and host are ever shown."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…" if parts.scheme else "…"


def _redacted(text: str, url: str) -> str:
    from urllib.parse import urlsplit

    secret = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
    text = text.replace(url, shown_url(url))
    return text.replace(secret, "/…") if len(secret) > 1 else text
