"""``promstack monitor --prometheus`` and ``--prometheus-textfile``: the figures of
``results/monitor.py`` in Prometheus' text format, through ``prometheus_client`` (the
``prometheus`` extra, imported only here).

Every metric is a gauge over the window the command was given (``--since``, default the last
hour, sliding with each scrape): a window's calls fall as well as rise, and a counter that falls
would read as a restart to ``rate()``. Names follow Prometheus' naming guidance: the ``promstack_``
prefix, base units (seconds, not ms), ratios from 0 to 1 (not percent), ``_total`` left to
accumulating counters, so none here. Labels are the ``--by`` keys (``prompt_id``,
``prompt_version``, ``model`` by default); a key the log lacks is the empty label.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError

PREFIX = "promstack_"
QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"))
# (name, help, the figure, its factor): one gauge per figure; None figures leave their sample out
GAUGES = (
    ("calls", "Calls in the window (final lines of model calls; retries, guards and cancelled calls are not calls)",
     "calls", 1),
    ("errors", "Calls in the window that failed", "errors", 1),
    ("error_ratio", "Failed calls / calls in the window (0-1)", "error_rate", 0.01),
    ("cached_calls", "Calls in the window answered from the cache", "cached", 1),
    ("cache_hit_ratio", "Calls answered from the cache / calls in the window (0-1)", "cache_hit_rate", 0.01),
    ("cost_usd", "What the calls of the window cost in USD (fresh calls; absent when a call has no price)",
     "cost_usd", 1),
    ("unpriced_calls", "Fresh calls in the window that no price covers (their cost is unknown)", "unpriced", 1),
)
Compute = Callable[[], tuple[list[dict[str, Any]], float | None]]
Warn = Callable[[str], None]


# a rotated log: calls.<day>.<n>.jsonl[.gz], the day being the UTC day of its last line
_ROTATED = re.compile(r"\.(\d{4}-\d{2}-\d{2})(?:\.\d+)?\.jsonl(?:\.gz)?$")


def recent(paths: Sequence[str | Path], since: datetime) -> list[Path]:
    """The files of ``paths`` that can hold a line from ``since`` on: a rotated file whose day
    is before ``since``'s ended before it, and is not read (so a scrape costs the window's days,
    not the whole history)."""
    from .monitor import files

    source = files(paths)
    return [p for p in (*source.jsonl, *source.parquet) if not _older(p.name, since.date())]


def _older(name: str, day: date) -> bool:
    found = _ROTATED.search(name)
    try:
        return found is not None and date.fromisoformat(found[1]) < day
    except ValueError:
        return False


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise PromstackError("--prometheus needs prometheus_client: pip install 'pytest-promstack[prometheus]' "
                             "(or pip install prometheus-client)") from None
    return prometheus_client


def families(rows: Sequence[dict[str, Any]], by: Sequence[str], window_seconds: float | None = None) -> list[Any]:
    """The metric families of figures() rows (one row per ``by`` key, no time window)."""
    from prometheus_client.core import GaugeMetricFamily

    labels = list(by)
    out = []
    for name, doc, key, factor in GAUGES[:5]:
        out.append(_gauge(GaugeMetricFamily(PREFIX + name, doc, labels=labels), rows, by, key, factor))
    latency = GaugeMetricFamily(PREFIX + "latency_seconds", "Latency percentiles of the window's calls that went to "
                                "the model (exact, linear interpolation; cache hits left out)",
                                labels=[*labels, "quantile"])
    tokens = GaugeMetricFamily(PREFIX + "tokens", "Tokens the window's fresh calls used, by type (input or output)",
                               labels=[*labels, "type"])
    for row in rows:
        values = _labels(row, by)
        for quantile, key in QUANTILES:
            if row[key] is not None:
                latency.add_metric([*values, quantile], row[key] / 1000)
        tokens.add_metric([*values, "input"], row["input_tokens"])
        tokens.add_metric([*values, "output"], row["output_tokens"])
    out += [latency, tokens]
    for name, doc, key, factor in GAUGES[5:]:
        out.append(_gauge(GaugeMetricFamily(PREFIX + name, doc, labels=labels), rows, by, key, factor))
    if window_seconds is not None:
        out.append(GaugeMetricFamily(PREFIX + "window_seconds", "The length of the window the figures cover",
                                     value=window_seconds))
    return out


def _gauge(family: Any, rows: Sequence[dict[str, Any]], by: Sequence[str], key: str, factor: float) -> Any:
    for row in rows:
        if row[key] is not None:
            family.add_metric(_labels(row, by), row[key] * factor)
    return family


def _labels(row: dict[str, Any], by: Sequence[str]) -> list[str]:
    return ["" if row[k] is None else str(row[k]) for k in by]


def _up(value: int) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(PREFIX + "up", "1 when the call logs were read on this scrape, 0 when not (the reason "
                             "is on the command's stderr)", value=value)


class Collector:
    """Recomputes the figures on each scrape. Scrapes that arrive together wait for one
    computation at a time, and one that arrived while another computation ran takes a fresh one.
    With ``catch``, logs that cannot be read are ``promstack_up 0`` and one warning (the server
    stays up); without it, the error goes to the caller (the textfile export)."""

    def __init__(self, compute: Compute, by: Sequence[str], warn: Warn | None = None, catch: bool = True) -> None:
        self.compute, self.by, self.warn, self.catch = compute, tuple(by), warn, catch
        self._lock = threading.Lock()
        self._last: tuple[float, list[Any]] | None = None

    def describe(self) -> list[Any]:
        return []  # registering must not read the logs

    def collect(self) -> Iterator[Any]:
        arrived = time.monotonic()
        with self._lock:
            if self._last is None or self._last[0] < arrived:
                self._last = (time.monotonic(), self._families())
            yield from self._last[1]

    def _families(self) -> list[Any]:
        try:
            rows, window = self.compute()
        except PromstackError as exc:
            if not self.catch:
                raise
            if self.warn is not None:
                self.warn(str(exc))
            return [_up(0)]
        return [_up(1), *families(rows, self.by, window)]


def registry(collector: Collector) -> Any:
    """A registry of the collector alone (no process or platform metrics of this command)."""
    registry = _client().CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def text(collector: Collector) -> str:
    return _client().generate_latest(registry(collector)).decode("utf-8")


def write_textfile(path: str, collector: Collector) -> None:
    """The metrics once, for node_exporter's textfile collector: written beside ``path`` and
    renamed over it, so the collector never reads half a file."""
    if not path.endswith(".prom"):
        raise PromstackError(f"--prometheus-textfile {path}: node_exporter's textfile collector reads only *.prom "
                             "files; name it like promstack.prom")
    client = _client()
    content = client.generate_latest(registry(collector))  # computed before any file is touched
    tmp = f"{path}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise PromstackError(f"--prometheus-textfile {path}: cannot write it ({exc.strerror or exc}); give a path in "
                             "a folder you can write, such as node_exporter's --collector.textfile.directory") from None


# -- the HTTP endpoint ---------------------------------------------------------------------------


def address(text: str) -> tuple[str, int]:
    """``:PORT`` (every interface, as exporters listen), ``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "", text.strip()
    host = host.strip("[]") if host.startswith("[") else host
    if not port.isdigit() or int(port) > 65535 or ("[" in host or "]" in host):
        raise PromstackError(f"--prometheus {text}: not an address to listen on; give :PORT (every interface, "
                             "such as :9464), 127.0.0.1:PORT (this machine only) or HOST:PORT")
    return host or "0.0.0.0", int(port)


@dataclass
class Server:
    """A running metrics endpoint: its URL, and ``close()`` to stop it."""

    httpd: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def serve(where: str, collector: Collector) -> Server:
    """Serve the metrics on ``where`` (see ``address``) in a daemon thread; port 0 picks a free one."""
    client = _client()
    host, port = address(where)
    try:
        httpd, thread = client.start_http_server(port, addr=host, registry=registry(collector))
    except OSError as exc:
        raise PromstackError(f"--prometheus {where}: cannot listen there ({exc.strerror or exc}); choose another "
                             "port, or a host this machine has") from None
    return Server(httpd, thread)
