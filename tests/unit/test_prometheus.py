"""`promstack monitor --prometheus` / `--prometheus-textfile`: the metrics parsed back with
prometheus_client's own text parser and compared, figure for figure, with the plain-Python
aggregates of tests/support/calllogs.py and with monitor.figures(); the endpoint on a free port of
127.0.0.1, scraped and stopped; the sliding default window; bad input as one line."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_promstack.cli import main
from pytest_promstack.results import monitor
from pytest_promstack.results import prometheus as prom
from tests.support import calllogs
from tests.support.project import one_error_line, write
from tests.support.run import PROMSTACK, start

BY = ("prompt_id", "prompt_version", "model")
SINCE, UNTIL = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC)
RANGE = ["--since", "2025-03-01", "--until", "2025-03-04"]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(calllogs.generate())


@pytest.fixture
def project(tmp_path, records, monkeypatch) -> Path:
    """A project whose config prices acme-llm by its params and logs to logs/calls.jsonl."""
    calllogs.project(tmp_path)
    calllogs.write(tmp_path / "logs", records)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name  # window figures fall as well as rise: never counters
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def want(rows: list[dict], by=BY, window: float | None = None) -> dict:
    """The samples the figures should give: base units and 0-1 ratios, absent figures left out."""
    out: dict = {("promstack_up", ()): 1.0}
    if window is not None:
        out[("promstack_window_seconds", ())] = window
    for row in rows:
        labels = tuple((k, "" if row[k] is None else row[k]) for k in by)

        def put(name, value, *extra, labels=labels):
            if value is not None:
                out[(name, tuple(sorted((*labels, *extra))))] = value

        put("promstack_calls", row["calls"])
        put("promstack_errors", row["errors"])
        put("promstack_error_ratio", row["error_rate"] / 100)
        put("promstack_cached_calls", row["cached"])
        put("promstack_cache_hit_ratio", row["cache_hit_rate"] / 100)
        put("promstack_cost_usd", row["cost_usd"])
        put("promstack_unpriced_calls", row["unpriced"])
        put("promstack_tokens", row["input_tokens"], ("type", "input"))
        put("promstack_tokens", row["output_tokens"], ("type", "output"))
        for q, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            put("promstack_latency_seconds", None if row[key] is None else row[key] / 1000, ("quantile", q))
    return out


def same(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.read().decode("utf-8")


def test_the_textfile_holds_every_figure_of_the_log_in_prometheus_units(project, records, capsys):
    assert main(["monitor", "--prometheus-textfile", "promstack.prom", *RANGE]) == 0
    assert capsys.readouterr().out == "promstack monitor: wrote promstack.prom\n"
    text = (project / "promstack.prom").read_text(encoding="utf-8")
    expected = calllogs.expected(records, since=SINCE, until=UNTIL)
    assert any(r["cost_usd"] is None for r in expected)  # mystery-llm: no cost sample, its unpriced count
    assert any(r["prompt_id"] == "요약" for r in expected)
    same(samples(text), want(expected, window=3 * 86400.0))
    assert not list(project.glob("promstack.prom.*"))  # the temporary file was renamed over it


def test_the_textfile_follows_by_and_equals_monitor_figures(project, capsys):
    assert main(["monitor", "--prometheus-textfile", "m.prom", "--by", "model,user", *RANGE]) == 0
    rows = monitor.figures([project / "logs"], since=SINCE, until=UNTIL, by=("model", "user_id"),
                           prices={"acme-llm": (1e-6, 2e-6)})
    same(samples((project / "m.prom").read_text(encoding="utf-8")), want(rows, ("model", "user_id"), 3 * 86400.0))


def test_the_default_window_is_the_last_hour_up_to_now(tmp_path, monkeypatch, capsys):
    now = datetime.now(UTC)
    lines = [{"timestamp": (now - timedelta(minutes=m)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "kind": "model", "prompt_id": "p", "prompt_version": "v", "model": "local", "status": "ok",
              "cached": False, "latency_ms": 100.0 * m, "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0}
             for m in (10, 50, 70, 600)]
    write(tmp_path, {"logs/calls.jsonl": "".join(calllogs.dumps(r) + "\n" for r in lines)})
    monkeypatch.chdir(tmp_path)
    assert main(["monitor", "logs", "--prometheus-textfile", "m.prom"]) == 0
    got = samples((tmp_path / "m.prom").read_text(encoding="utf-8"))
    labels = (("model", "local"), ("prompt_id", "p"), ("prompt_version", "v"))
    assert got[("promstack_calls", labels)] == 2
    assert got[("promstack_latency_seconds", tuple(sorted((*labels, ("quantile", "0.5")))))] == pytest.approx(3.0)
    assert got[("promstack_window_seconds", ())] == 3600


def test_rotated_files_of_days_before_the_window_are_not_read(project, records, capsys):
    (project / "logs/calls.2025-03-01.jsonl.gz").write_bytes(b"not gzip")  # read, it would be warned about
    assert main(["monitor", "--prometheus-textfile", "m.prom", "--since", "2025-03-02T06:00", "--until",
                 "2025-03-04"]) == 0
    since = datetime(2025, 3, 2, 6, tzinfo=UTC)
    same(samples((project / "m.prom").read_text(encoding="utf-8")),
         want(calllogs.expected(records, since=since, until=UNTIL), window=(UNTIL - since).total_seconds()))
    assert "calls.2025-03-01.jsonl.gz" not in capsys.readouterr().err
    assert main(["monitor", "--prometheus-textfile", "m.prom", *RANGE]) == 0  # the day of the window: read
    assert "calls.2025-03-01.jsonl.gz: cannot be read (Input is not a GZIP stream)" in capsys.readouterr().err


def test_the_endpoint_recomputes_on_each_scrape_and_stops(tmp_path, records):
    calllogs.write(tmp_path, records)
    warned: list[str] = []

    def compute():
        return monitor.figures([tmp_path], by=BY, warn=warned.append, prices=calllogs.PRICES), None

    server = prom.serve("127.0.0.1:0", prom.Collector(compute, BY, warn=warned.append))
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert not server.url.endswith(":0/metrics")
        same(samples(scrape(server.url)), want(calllogs.expected(records)))
        late = {**records[-1], "timestamp": "2025-03-05T00:00:00.000Z", "status": "error", "cached": False}
        with (tmp_path / "calls.2025-03-05.jsonl").open("w", encoding="utf-8") as f:
            f.write(calllogs.dumps(late) + "\n")
        same(samples(scrape(server.url)), want(calllogs.expected([*records, late])))
        for path in tmp_path.iterdir():
            path.unlink()
        assert samples(scrape(server.url)) == {("promstack_up", ()): 0.0}  # the server stays up
        assert "no call log there" in warned[-1]
    finally:
        url = server.url
        server.close()
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def test_the_command_serves_until_terminated(project, records):
    process = start([PROMSTACK, "monitor", "--prometheus", "127.0.0.1:0", *RANGE], cwd=project)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]  # the torn-line warning, then where it listens
        assert "1 line is not a whole call record" in lines[0]
        assert lines[1].startswith("promstack monitor: serving the figures since 2025-03-01 at http://127.0.0.1:")
        url = lines[1].split(" at ")[1].split(" ")[0]
        for _ in range(2):  # the second scrape warns no more
            same(samples(scrape(url)), want(calllogs.expected(records, since=SINCE, until=UNTIL), window=3 * 86400.0))
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--prometheus", "9464x"], "--prometheus 9464x: not an address to listen on; give :PORT"),
    (["--prometheus", "localhost:99999"], "--prometheus localhost:99999: not an address"),
    (["--prometheus-textfile", "metrics.txt"], "node_exporter's textfile collector reads only *.prom files"),
    (["--prometheus", ":0", "--prometheus-textfile", "m.prom"], "choose one"),
    (["--prometheus-textfile", "m.prom", "--window", "day"], "--window day: the metrics cover one window"),
    (["--prometheus-textfile", "m.prom", "--since", "yesterday"], "--since yesterday: not a time"),
    (["--prometheus-textfile", "no/such/folder/m.prom", *RANGE], "--prometheus-textfile no/such/folder/m.prom: "
     "cannot write it (No such file or directory)"),
    (["--format", "parquet"], "--format parquet: give the file to write with --output PATH"),
    (["--output", "f.parquet"], "--output f.parquet: only --format parquet writes a file"),
])
def test_bad_input_is_one_line_and_exit_4(project, capsys, args, message):
    assert main(["monitor", *args]) == 4
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "warning:" not in x]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("promstack monitor: ")
    assert message in lines[0]


def test_a_port_in_use_is_one_line(project, capsys):
    server = prom.serve("127.0.0.1:0", prom.Collector(lambda: ([], None), BY))
    try:
        port = server.url.rsplit(":", 1)[1].split("/")[0]
        assert main(["monitor", "--prometheus", f"127.0.0.1:{port}", *RANGE]) == 4
    finally:
        server.close()
    err = [x for x in capsys.readouterr().err.splitlines() if "warning:" not in x]
    assert err == [f"promstack monitor: --prometheus 127.0.0.1:{port}: cannot listen there (Address already in use); "
                   "choose another port, or a host this machine has"]


def test_without_prometheus_client_the_fix_is_named(project, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert main(["monitor", "--prometheus-textfile", "m.prom", *RANGE]) == 4
    assert one_error_line(capsys) == ("promstack monitor: --prometheus needs prometheus_client: pip install "
                                      "'pytest-promstack[prometheus]' (or pip install prometheus-client)")
    assert not (project / "m.prom").exists()


@pytest.mark.parametrize(("text", "where"), [(":9464", ("0.0.0.0", 9464)), ("9464", ("0.0.0.0", 9464)),
                                             ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:9464", ("::1", 9464))])
def test_addresses(text, where):
    assert prom.address(text) == where

