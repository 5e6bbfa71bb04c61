"""Alerts with the gate names: each rule at its boundaries, warning vs alert, min_requests, missing
data, budget windows, the once-per-alert state and the webhook (a receiver on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from pytest_promstack.config.settings import AlertsSpec, build_settings
from pytest_promstack.model.errors import ConfigError
from pytest_promstack.results.alerts import check, evaluate, exit_code, levels, notify, payload, post, shown_url
from tests.support.webhook import Webhook

NOW = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
GUIDE = {"max_p95_latency_ms": 5000, "max_error_rate": 1, "max_tokens": 2_000_000, "max_cost_usd": 500}


def row(**figures):
    base = {"window_start": None, "window_end": None, "calls": 312, "errors": 0, "error_rate": 0.0, "p95_ms": 800.0,
            "tokens": 1000, "cost_usd": 1.0}
    return {**base, **figures}


def spec(**alerts):
    return AlertsSpec.model_validate(alerts)


def one(alerts, figures, now=NOW):
    (verdict,) = evaluate(spec(**alerts), lambda span: figures, now)
    return verdict


# -- each rule at its boundaries -----------------------------------------------------------------

BOUNDARIES = [  # key, limit, the row's field, warning level (the guide's default share), alert level
    ("max_p95_latency_ms", 5000, "p95_ms", 4000, 5000),
    ("max_error_rate", 1, "error_rate", 0.8, 1),
    ("max_tokens", 2_000_000, "tokens", 1_600_000, 2_000_000),
    ("max_cost_usd", 500, "cost_usd", 450, 500),
]


@pytest.mark.parametrize(("key", "limit", "field", "warning", "alert"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_each_rule_fires_only_above_its_levels_never_at_them(key, limit, field, warning, alert):
    def level(value):
        return one({key: limit}, row(**{field: value})).level

    step = 0.001
    assert level(warning) == "ok"  # at the warning level: within it, as a gate passes at its limit
    assert level(warning + step) == "warning"
    assert level(alert) == "warning"  # at the limit: not an alert
    assert level(alert + step) == "alert"


@pytest.mark.parametrize(("key", "limit", "field", "warning", "alert"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_a_verdict_names_the_level_crossed_and_the_value(key, limit, field, warning, alert):
    fired = one({key: limit}, row(**{field: alert * 2}))
    assert (fired.key, fired.severity, fired.value, fired.threshold) == (key, "alert", alert * 2, alert)
    warned = one({key: limit}, row(**{field: (warning + alert) / 2}))
    assert (warned.severity, warned.threshold) == ("warning", warning)


def test_the_message_is_one_line_with_value_window_level_and_calls():
    fired = one({"max_p95_latency_ms": 5000}, row(p95_ms=6210, calls=312))
    assert fired.message == ("max_p95_latency_ms: P95 6,210 ms over the last 1h is above the alert level 5,000 ms "
                             "(312 calls)")
    assert fired.line() == f"promstack: ALERT: {fired.message}"
    warned = one({"max_tokens": 2_000_000}, row(tokens=1_700_000, calls=9000))
    assert warned.message == ("max_tokens: 1,700,000 tokens over the last 1d is above the warning level 1,600,000 "
                              "(80% of the limit 2,000,000; 9,000 calls)")
    fine = one({"max_error_rate": 1}, row(error_rate=0.5))
    assert fine.message == ("max_error_rate: error rate 0.5 % over the last 1h is within the warning level 0.8 % "
                            "(80% of the limit 1 %; 312 calls)")
    cost = one({"max_cost_usd": {"limit": 500}}, row(cost_usd=460))
    assert "cost $460.00 over the last 30d is above the warning level $450.00 (90% of the limit $500.00" in cost.message


def test_warning_and_alert_levels_are_shares_of_the_limit_and_a_written_null_turns_warning_off():
    custom = {"max_p95_latency_ms": {"limit": 2000, "warning": 0.5, "alert": 1.5}}
    assert one(custom, row(p95_ms=1000)).level == "ok"
    assert one(custom, row(p95_ms=1001)).level == "warning"
    assert one(custom, row(p95_ms=3000)).level == "warning"
    assert one(custom, row(p95_ms=3001)).threshold == 3000
    no_warning = {"max_tokens": {"limit": 100, "warning": None}}
    assert one(no_warning, row(tokens=100)).level == "ok"
    assert one(no_warning, row(tokens=101)).level == "alert"
    assert "within the alert level 100" in one(no_warning, row(tokens=99)).message


def test_a_level_at_a_share_that_floats_badly_is_still_not_crossed_by_the_value_at_it():
    # 3 * 0.7 is 2.0999999999999996 in floating point: a value of 2.1 is at the level, not above it
    assert one({"max_error_rate": {"limit": 3, "warning": 0.7}}, row(error_rate=2.1)).level == "ok"


# -- min_requests and missing data ----------------------------------------------------------------

@pytest.mark.parametrize(("key", "field", "value"), [("max_p95_latency_ms", "p95_ms", 60_000),
                                                     ("max_error_rate", "error_rate", 50.0)])
def test_latency_and_error_rate_are_not_judged_below_min_requests_and_say_so(key, field, value):
    few = one({key: GUIDE[key], "min_requests": 20}, row(calls=19, **{field: value}))
    assert (few.level, few.severity) == ("too-few", "ok")
    assert "19 calls, fewer than min_requests 20: not judged" in few.message
    assert one({key: GUIDE[key], "min_requests": 20}, row(calls=20, **{field: value})).level == "alert"
    own = {key: {"limit": GUIDE[key], "min_requests": 5}, "min_requests": 100}
    assert one(own, row(calls=5, **{field: value})).level == "alert"  # the rule's own min_requests wins


def test_budgets_are_judged_on_any_number_of_calls():
    assert one({"max_cost_usd": 500, "min_requests": 1000}, row(calls=1, cost_usd=600)).level == "alert"
    assert one({"max_tokens": 10, "min_requests": 1000}, row(calls=1, tokens=11)).level == "alert"


@pytest.mark.parametrize("policy", ["ok", "warning", "alert"])
@pytest.mark.parametrize("figures", [None, row(calls=0, p95_ms=None, tokens=0, cost_usd=0.0)], ids=["no-row", "0-calls"])
def test_no_call_in_the_window_is_no_data_with_the_severity_missing_data_gives(policy, figures):
    verdicts = evaluate(spec(**GUIDE, missing_data=policy), lambda span: figures, NOW)
    assert [v.level for v in verdicts] == ["no-data"] * 4
    assert {v.severity for v in verdicts} == {policy}
    assert verdicts[0].message == f"max_p95_latency_ms: no call over the last 1h (missing_data: {policy})"
    assert exit_code(verdicts) == (1 if policy == "alert" else 0)


def test_a_rule_may_have_its_own_missing_data_and_a_missing_figure_is_no_data_too():
    alerts = {"max_cost_usd": {"limit": 5, "missing_data": "alert"}, "missing_data": "ok"}
    unpriced = one(alerts, row(calls=40, cost_usd=None))
    assert (unpriced.level, unpriced.severity) == ("no-data", "alert")
    assert "no cost figure (40 calls) over the last 30d" in unpriced.message


def test_missing_data_defaults_to_ok_and_min_requests_to_20():
    assert (spec().missing_data, spec().min_requests) == ("ok", 20)


# -- windows ---------------------------------------------------------------------------------------

def test_each_rule_reads_its_own_window_once_per_distinct_window_ending_now():
    asked = []

    def figures_for(span):
        asked.append(span)
        return row()

    alerts = spec(**{**GUIDE, "max_error_rate": {"limit": 1, "window": "1h"}, "max_tokens": {"limit": 2e6}})
    verdicts = evaluate(alerts, figures_for, NOW)
    assert asked == [timedelta(hours=1), timedelta(days=1), timedelta(days=30)]  # the two 1h rules share a read
    assert [v.window for v in verdicts] == ["1h", "1h", "1d", "30d"]
    cost = verdicts[-1]
    assert (cost.window_start, cost.window_end) == ("2025-02-12T09:00:00.000Z", "2025-03-14T09:00:00.000Z")


def test_a_monthly_budget_burns_against_its_own_30d_figures():
    by_span = {timedelta(hours=1): row(cost_usd=20), timedelta(days=30): row(cost_usd=455)}
    verdicts = evaluate(spec(max_cost_usd={"limit": 500, "window": "30d"}, max_p95_latency_ms=5000),
                        lambda span: by_span[span], NOW)
    assert [(v.key, v.level, v.value) for v in verdicts] == [("max_p95_latency_ms", "ok", 800.0),
                                                              ("max_cost_usd", "warning", 455.0)]


def test_a_window_for_all_applies_to_every_rule_without_its_own():
    asked = []
    evaluate(spec(**{**GUIDE, "window": "15m", "max_cost_usd": {"limit": 9, "window": "2w"}}),
             lambda span: asked.append(span) or row(), NOW)
    assert asked == [timedelta(minutes=15), timedelta(weeks=2)]


def test_no_alerts_section_gives_no_verdict_and_exit_0(tmp_path):
    assert evaluate(None, lambda span: pytest.fail("not read"), NOW) == []
    assert check(None, lambda span: row(), NOW, root=tmp_path).exit_code == 0
    assert not list(tmp_path.iterdir())


# -- once per alert --------------------------------------------------------------------------------

class Checks:
    """Successive checks of one project, each with the figures given, against one webhook."""

    def __init__(self, root, hook, **alerts):
        self.root, self.hook = root, hook
        self.spec = spec(webhook_url_env="HOOK", **alerts)
        self.now = NOW

    def run(self, **figures):
        self.now += timedelta(minutes=5)
        env = {"HOOK": self.hook.url} if self.hook else {}
        return check(self.spec, lambda span: row(**figures), self.now, root=self.root, environ=env)


@pytest.fixture
def hook(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Webhook() as receiver:
        yield receiver


def test_an_alert_is_posted_once_while_it_fires_and_again_after_it_recovered(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_p95_latency_ms=5000)
    first = checks.run(p95_ms=6000)
    assert len(hook.posts) == 1
    assert first.exit_code == 1
    assert "promstack: posted 1 alert to the webhook in $HOOK" in first.lines
    assert checks.run(p95_ms=7000).exit_code == 1
    assert len(hook.posts) == 1  # still firing: not posted again
    recovered = checks.run(p95_ms=1000)
    assert recovered.exit_code == 0
    assert len(hook.posts) == 1  # a recovery is not posted; it clears the state
    assert json.loads((tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8"))["scopes"] == {}
    checks.run(p95_ms=6000)
    assert len(hook.posts) == 2


def test_rising_from_warning_to_alert_is_posted_and_hovering_below_it_again_is_not(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_tokens=1000)
    checks.run(tokens=900)  # warning (80 % of 1000)
    checks.run(tokens=950)
    assert [p["text"].splitlines()[1].split(":")[0] for p in hook.posts] == ["• warning"]
    checks.run(tokens=1200)  # alert
    assert len(hook.posts) == 2
    assert hook.posts[1]["text"].startswith("promstack: 1 alert, 0 warnings\n• ALERT: max_tokens: 1,200 tokens")
    checks.run(tokens=900)  # back to warning: nothing new to say
    assert len(hook.posts) == 2
    checks.run(tokens=1100)  # up again without having recovered: the alert was posted already
    assert len(hook.posts) == 2
    checks.run(tokens=100)  # recovered to ok
    checks.run(tokens=1100)  # a new episode: posted
    assert len(hook.posts) == 3


def test_only_the_rules_that_newly_fire_are_in_a_post(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_p95_latency_ms=5000, max_error_rate=1)
    checks.run(p95_ms=6000, error_rate=0.1)
    checks.run(p95_ms=6000, error_rate=5.0)
    assert len(hook.posts) == 2
    assert "max_error_rate" in hook.posts[1]["text"]
    assert "max_p95_latency_ms" not in hook.posts[1]["text"]


def test_missing_data_at_warning_is_posted_once_like_any_warning(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_tokens=1000, missing_data="warning")
    for _ in range(3):
        result = checks.run(calls=0, tokens=0)
        assert result.exit_code == 0
    assert len(hook.posts) == 1
    assert "no call over the last 1d (missing_data: warning)" in hook.posts[0]["text"]


def test_without_a_webhook_the_state_still_keeps_what_was_shown(tmp_path):
    alerts = spec(max_tokens=1000)
    result = check(alerts, lambda span: row(tokens=2000), NOW, root=tmp_path)
    assert result.lines == ["promstack: ALERT: max_tokens: 2,000 tokens over the last 1d is above the alert level "
                            "1,000 (312 calls)"]
    state = json.loads((tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8"))
    assert state["version"] == 2
    assert state["scopes"][""]["max_tokens"]["severity"] == "alert"
    assert state["scopes"][""]["max_tokens"]["notified"] == "2025-03-14T09:00:00.000Z"


# -- webhook failures --------------------------------------------------------------------------------

def test_a_failed_post_is_one_warning_line_and_is_retried_on_the_next_check(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_error_rate=1)
    hook.status = 500
    failed = checks.run(error_rate=3.0)
    warnings = [line for line in failed.lines if "warning:" in line]
    assert warnings == ["promstack: warning: the webhook in $HOOK (http://127.0.0.1/…) failed: HTTP 500; 1 alert not "
                        "posted; tried again on the next check"]
    assert failed.exit_code == 1
    hook.status = 200
    checks.run(error_rate=3.0)
    checks.run(error_rate=3.0)
    assert len(hook.posts) == 2  # the one answered 500, the retry that got through, and nothing after


def test_a_webhook_that_does_not_answer_in_time_is_a_warning_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Webhook(delay=1.5) as slow:
        checks = Checks(tmp_path, slow, max_tokens=10, timeout=0.3)
        result = checks.run(tokens=20)
    assert any("failed: no answer in 0.3 s; 1 alert not posted" in line for line in result.lines)
    assert not json.loads((tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8")
                          if (tmp_path / ".promstack/alerts.json").exists() else '{"rules": {}}')["rules"]


def test_an_unreachable_webhook_and_an_unset_variable_are_warnings_and_retried(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/services/T1/B1/hidden"
    alerts = spec(max_tokens=10, webhook_url_env="HOOK")
    refused = notify(evaluate(alerts, lambda span: row(tokens=20), NOW), alerts, tmp_path / "s.json", NOW,
                     {"HOOK": url})
    assert len(refused) == 1
    assert refused[0].startswith("promstack: warning: the webhook in $HOOK (http://127.0.0.1/…) failed: ")
    unset = notify(evaluate(alerts, lambda span: row(tokens=20), NOW), alerts, tmp_path / "s.json", NOW, {})
    assert unset == ["promstack: warning: alerts.webhook_url_env: $HOOK is not set; 1 alert not posted; tried again "
                     "on the next check"]
    assert not (tmp_path / "s.json").exists()  # nothing recorded: both are tried again


def test_the_webhook_url_is_never_printed_nor_stored(tmp_path, hook):
    checks = Checks(tmp_path, hook, max_tokens=10)
    hook.status = 403
    printed = checks.run(tokens=20).lines
    hook.status = 200
    printed += checks.run(tokens=20).lines
    stored = (tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8")
    for text in [*printed, stored]:
        assert "s3cr3t-token" not in text
        assert "/services/" not in text
    assert "s3cr3t-token" not in post("ftp://example.invalid/s3cr3t-token", {}, 1)
    assert shown_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/…"


def test_credentials_in_the_webhook_url_are_sent_as_basic_auth_and_never_shown(tmp_path, hook):
    with_user = hook.url.replace("http://", "http://alert%40ops:p%C3%A4ss%3Aword@")
    assert post(with_user, {"text": "hi"}, 5) is None
    assert hook.paths == ["/services/T000/B000/s3cr3t-token"]
    assert hook.auth == ["Basic " + base64.b64encode("alert@ops:päss:word".encode()).decode()]
    assert post(hook.url, {"text": "hi"}, 5) is None
    assert hook.auth[1] is None
    assert "p%C3%A4ss" not in shown_url(with_user)
    assert "alert" not in shown_url(with_user)


def test_a_torn_state_file_is_a_warning_and_the_check_starts_afresh(tmp_path, hook):
    state = tmp_path / ".promstack/alerts.json"
    state.parent.mkdir()
    state.write_text('{"rules": {"max_tok', encoding="utf-8")
    result = Checks(tmp_path, hook, max_tokens=10).run(tokens=20)
    assert any(line.startswith("promstack: warning: alerts state alerts.json unreadable") for line in result.lines)
    assert len(hook.posts) == 1
    assert json.loads(state.read_text(encoding="utf-8"))["scopes"][""]["max_tokens"]["severity"] == "alert"


def test_a_state_file_of_version_1_is_the_default_logs_state(tmp_path, hook):
    state = tmp_path / ".promstack/alerts.json"
    state.parent.mkdir()
    state.write_text('{"version": 1, "rules": {"max_tokens": {"severity": "alert"}}}', encoding="utf-8")
    Checks(tmp_path, hook, max_tokens=10).run(tokens=20)
    assert hook.posts == []  # posted before the upgrade


def test_each_set_of_logs_has_its_own_state_and_a_judged_only_check_leaves_it(tmp_path, hook):
    alerts = spec(webhook_url_env="HOOK", max_error_rate=1)
    env = {"HOOK": hook.url}

    def run(scope, post_news=True, rate=20.0):
        return check(alerts, lambda span: row(error_rate=rate), NOW, root=tmp_path, environ=env, scope=scope,
                     post_news=post_news)

    past = run("", post_news=False)  # a past incident, judged only
    assert past.exit_code == 1
    assert hook.posts == []
    assert not (tmp_path / ".promstack/alerts.json").exists()
    run("/srv/app-a/calls.jsonl")
    run("")  # the config's log firing too: another application's alert does not hide it
    assert len(hook.posts) == 2
    run("")
    assert len(hook.posts) == 2
    scopes = json.loads((tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8"))["scopes"]
    assert set(scopes) == {"", "/srv/app-a/calls.jsonl"}
    run("/srv/app-a/calls.jsonl", rate=0.0)  # a recovers: its state goes, the other's stays
    assert set(json.loads((tmp_path / ".promstack/alerts.json").read_text(encoding="utf-8"))["scopes"]) == {""}


def test_overlapping_checks_post_an_alert_once(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Webhook(delay=0.3) as slow:  # each post takes a while: the checks overlap
        alerts = spec(webhook_url_env="HOOK", max_tokens=10)
        results = []

        def run():
            results.append(check(alerts, lambda span: row(tokens=20), NOW, root=tmp_path, environ={"HOOK": slow.url}))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert len(slow.posts) == 1
    assert [r.exit_code for r in results] == [1, 1, 1, 1]


def test_a_sum_that_floats_to_just_above_a_level_is_at_it():
    total = sum([0.001] * 100)  # 0.10000000000000007
    (v,) = evaluate(spec(max_cost_usd=0.1), lambda span: row(cost_usd=total), NOW)
    assert (v.level, v.value) == ("warning", 0.1)


def test_a_value_just_above_a_level_never_reads_as_the_level():
    (v,) = evaluate(spec(max_p95_latency_ms=5000), lambda span: row(p95_ms=5000.01), NOW)
    assert v.message.startswith("max_p95_latency_ms: P95 5,000.01 ms over the last 1h is above the alert level 5,000 ms")
    (v,) = evaluate(spec(max_error_rate=1), lambda span: row(error_rate=1.0000004), NOW)
    assert "error rate 1.0000004 % over the last 1h is above the alert level 1 %" in v.message


def test_the_posted_line_names_what_the_post_carried(tmp_path, hook):
    said = {}
    for name, figures in {"w": {"tokens": 900}, "aa": {"tokens": 1200, "p95_ms": 6000},
                          "aw": {"tokens": 900, "p95_ms": 6000}}.items():
        lines = Checks(tmp_path / name, hook, max_tokens=1000, max_p95_latency_ms=5000).run(**figures).lines
        said[name] = [line for line in lines if line.startswith("promstack: posted")]
    assert said == {"w": ["promstack: posted 1 warning to the webhook in $HOOK"],
                    "aa": ["promstack: posted 2 alerts to the webhook in $HOOK"],
                    "aw": ["promstack: posted 1 alert and 1 warning to the webhook in $HOOK"]}


def test_the_payload_is_slack_compatible_text_and_one_mrkdwn_section():
    verdicts = evaluate(spec(max_tokens=10, max_cost_usd=1), lambda span: row(tokens=9, cost_usd=5), NOW)
    body = payload(verdicts)
    assert body["text"].splitlines()[0] == "promstack: 1 alert, 1 warning"
    assert body["blocks"][0]["type"] == "section"
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    assert payload(verdicts)["blocks"][0]["text"]["text"].count("\n") == 2
    escaped = payload([verdicts[0].__class__(**{**verdicts[0].to_dict(), "message": "a <b> & c"})])
    assert "a &lt;b&gt; &amp; c" in escaped["blocks"][0]["text"]["text"]


def test_warnings_only_exit_0_and_any_alert_exits_1():
    verdicts = evaluate(spec(**GUIDE), lambda span: row(p95_ms=4500, tokens=1_900_000), NOW)
    assert [v.level for v in verdicts] == ["warning", "ok", "warning", "ok"]
    assert exit_code(verdicts) == 0
    assert exit_code(evaluate(spec(**GUIDE), lambda span: row(cost_usd=501), NOW)) == 1


# -- settings ----------------------------------------------------------------------------------------

BAD = [
    ({"max_tokns": 5}, "alerts.max_tokns: unknown key (did you mean 'max_tokens'?)"),
    ({"max_tokens": {"limit": 5, "windw": "1d"}}, "alerts.max_tokens.windw: unknown key (did you mean 'window'?)"),
    ({"window": "1 hour"}, "alerts.window: '1 hour' is not a window; write a number and m, h, d or w"),
    ({"max_cost_usd": {"limit": 5, "window": "monthly"}}, "alerts.max_cost_usd.window: 'monthly' is not a window"),
    ({"max_error_rate": 150}, "alerts.max_error_rate: limit 150 is not a percentage"),
    ({"max_tokens": {"limit": 5, "warning": 1.2}}, "alerts.max_tokens: the warning level (1.2) is above the alert"),
    ({"max_tokens": "lots"}, "alerts.max_tokens: write the limit (max_tokens: 2000000) or a rule"),
    ({"max_tokens": {"limit": -1}}, "alerts.max_tokens.limit: Input should be greater than or equal to 0"),
    ({"missing_data": "maybe"}, "alerts.missing_data: Input should be 'ok', 'warning' or 'alert'"),
    ({"min_requests": -1}, "alerts.min_requests: Input should be greater than or equal to 0"),
    ({"webhook_url": "https://hooks.slack.com/services/T/B/s3cr3t"},
     "alerts.webhook_url: a webhook URL is a secret and never sits in files"),
    ({"webhook_url_env": "https://hooks.slack.com/services/T/B/s3cr3t"},
     "alerts.webhook_url_env: name the environment variable holding the URL"),
    ({"state": "../elsewhere.json"}, "alerts.state: '../elsewhere.json' resolves to"),
    ({"max_p95_latency_ms": float("inf")}, "alerts.max_p95_latency_ms.limit: Input should be a finite number"),
    ({"max_tokens": {"window": "1d"}}, "alerts.max_tokens: limit: required: give the daily token limit"),
    ({"max_cost_usd": {}}, "alerts.max_cost_usd: limit: required: give the budget in USD"),
]


@pytest.mark.parametrize(("alerts", "says"), BAD, ids=[b[1].split(":")[0] + "-" + str(i) for i, b in enumerate(BAD)])
def test_a_bad_alerts_setting_is_one_line_naming_the_key_and_the_fix(tmp_path, alerts, says):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    with pytest.raises(ConfigError) as caught:
        build_settings(project, {"alerts": alerts}, "promstack.yaml", {})
    assert caught.value.problems[0].startswith(says)
    assert len(caught.value.problems) == 1
    assert "s3cr3t" not in str(caught.value)


def test_a_rule_without_a_limit_and_alerts_without_rules_take_the_guides_thresholds():
    assert {k: (r.limit, levels(k, r)) for k, r in spec().rules().items()} == {
        "max_p95_latency_ms": (5000, (4000, 5000)), "max_error_rate": (1, (0.8, 1))}
    assert set(spec(webhook_url_env="HOOK").rules()) == {"max_p95_latency_ms", "max_error_rate"}
    only = spec(max_p95_latency_ms={"window": "15m"}).rules()
    assert list(only) == ["max_p95_latency_ms"]
    assert (only["max_p95_latency_ms"].limit, only["max_p95_latency_ms"].window) == (5000, "15m")


def test_the_guide_defaults_read_from_a_config_and_reach_the_settings(tmp_path):
    settings = build_settings(tmp_path, {"alerts": {**GUIDE, "webhook_url_env": "SLACK_WEBHOOK_URL"}},
                              "promstack.yaml", {})
    verdicts = evaluate(settings.alerts, lambda span: row(), NOW)
    assert [(v.key, v.window) for v in verdicts] == [("max_p95_latency_ms", "1h"), ("max_error_rate", "1h"),
                                                     ("max_tokens", "1d"), ("max_cost_usd", "30d")]
    assert build_settings(tmp_path, {}, "promstack.yaml", {}).alerts is None


def test_the_lines_docs_monitoring_shows_are_what_the_documented_alerts_print():
    import re
    from pathlib import Path

    import yaml

    page = (Path(__file__).resolve().parents[2] / "docs/monitoring.md").read_text(encoding="utf-8")
    section = page[page.index("## Alerts"):]
    config = re.search(r'```yaml title="promstack.yaml \(excerpt\)"\n(.*?)```', section, re.S).group(1)
    alerts = AlertsSpec.model_validate(yaml.safe_load(config)["alerts"])
    rows = {timedelta(hours=1): row(calls=312, error_rate=0.32, p95_ms=6210),
            timedelta(days=1): row(calls=9120, tokens=1_700_000), timedelta(days=30): row(calls=280_311, cost_usd=212.4)}
    printed = [v.line() for v in evaluate(alerts, rows.__getitem__, NOW)]
    shown = re.search(r"```text\n(promstack: ALERT.*?)```", section, re.S).group(1).splitlines()
    assert printed == shown
    night = evaluate(alerts, lambda span: row(calls=12, p95_ms=7900), NOW)[0].line()
    assert night in " ".join(section.split())
    assert payload([evaluate(alerts, rows.__getitem__, NOW)[i] for i in (0, 2)])["text"] in json.loads(
        re.search(r"```json\n(.*?)```", section, re.S).group(1))["text"]


def test_a_cost_with_unpriced_calls_fires_on_its_priced_part_or_says_what_is_unknown():
    over = one({"max_cost_usd": 100}, row(cost_usd=None, unpriced=3, priced_cost_usd=120.0))
    assert (over.level, over.severity) == ("alert", "alert")
    assert "cost at least $120.00 over the last 30d (3 calls unpriced) is above the alert level $100.00" in over.message
    under = one({"max_cost_usd": 100}, row(cost_usd=None, unpriced=3, priced_cost_usd=20.0))
    assert under.level == "no-data"
    assert "cost unknown: 3 of" in under.message
    assert "give the model input_cost_per_token and output_cost_per_token" in under.message
