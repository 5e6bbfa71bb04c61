"""pytest-xdist support: each worker pre-runs exactly its own share of the model calls.

With ``-n N`` (``--dist load``, xdist's default) our scheduler gives each worker its share
(``partition``), all at once, and that worker pre-runs the calls of exactly those items. The
items of one test row (its prompts x models) stay on one worker, so a row's select-best
judge sees every variant's reply; rows are dealt in collection order, each to the worker
with the fewest items so far, which for rows of one item is item ``i`` to worker ``i % N``.
Other ``--dist`` modes keep xdist's scheduler; their workers call a request when they first
meet it (still cached and shared through the cache), and each has every row's replies.
Per-case results travel on the test reports, so the controller's totals equal a run
without ``-n``. This module is registered only when xdist is installed.
"""

from __future__ import annotations

from typing import Any

import pytest


def _share(config: pytest.Config) -> tuple[int, int] | None:
    """(worker index, worker count) when this process is an xdist worker under our scheduler."""
    wi = getattr(config, "workerinput", None)
    if wi is None or not wi.get("promstack_partition"):
        return None
    try:
        return int(str(wi["workerid"]).removeprefix("gw")), int(wi["workercount"])
    except (KeyError, ValueError):
        return None


def worker_count(config: pytest.Config) -> int:
    """How many xdist workers share this run (1 without xdist); the settings give each
    worker process its share of ``concurrency`` (the plugin's run and the fixture alike)."""
    return int((getattr(config, "workerinput", None) or {}).get("workercount", 1))


def _session(config: pytest.Config) -> Any:
    from .stash import SESSION_KEY

    return config.stash.get(SESSION_KEY, None)


def row_of(nodeid: str) -> str:
    """A case's id without its ``[prompt-model]`` brackets: the same for every variant of one
    test row (as the HTML report's matrix groups them)."""
    return nodeid.rsplit("[", 1)[0] if nodeid.endswith("]") else nodeid


def partition(nodeids: list[str], count: int) -> list[list[int]]:
    """Each worker's collection indexes: whole rows, in collection order, each dealt to the
    worker holding the fewest items so far (the lowest index on a tie). Controller and workers
    compute it alike from the same collection."""
    rows: dict[str, list[int]] = {}
    for i, nodeid in enumerate(nodeids):
        rows.setdefault(row_of(nodeid), []).append(i)
    shares: list[list[int]] = [[] for _ in range(count)]
    for members in rows.values():
        min(shares, key=len).extend(members)  # min() takes the first of equal lengths
    return [sorted(share) for share in shares]


def my_items(config: pytest.Config, items: list[pytest.Item]) -> list[pytest.Item]:
    share = _share(config)
    if share is None:
        return items
    index, count = share
    if index >= count:  # a worker started in place of a crashed one (gw2 of 2): it pre-runs nothing
        return []
    return [items[i] for i in partition([item.nodeid for item in items], count)[index]]


class XdistHooks:
    def pytest_testnodeready(self, node: Any) -> None:
        """Note the worker's process id, to pass a SIGTERM on to it (see plugin._interrupts)."""
        ps = _session(node.config)
        try:
            pid = node.gateway._rinfo().pid  # execnet's description of the remote process
        except Exception:  # no pid: that worker is then only stopped by xdist itself
            return
        if ps is not None:
            ps.worker_pids.append(int(pid))

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """An interrupted worker's scored cases, sent with its end, join the controller's records."""
        ps = _session(node.config)
        salvaged = (getattr(node, "workeroutput", None) or {}).get("promstack_salvaged") or {}
        if ps is not None:
            for nodeid, record in salvaged.items():
                ps.results.add_salvaged(nodeid, record, replace=nodeid in ps.awaiting_call)

    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """The item a worker was on when it was interrupted: when that worker scored it (its
        calls had finished), xdist's "crashed" report becomes the scored outcome."""
        ps = _session(report.node.config) if hasattr(report, "node") else None
        rec = ps.results.records.get(crashitem) if ps is not None else None
        if rec is None or not rec.get("salvaged"):
            return
        from .reports import reports_of_salvaged

        scored = next(r for r in reports_of_salvaged(crashitem, rec) if r.when == "call" or r.failed)
        for name in ("outcome", "longrepr", "when", "location", "user_properties", "duration"):
            setattr(report, name, getattr(scored, name))

    def pytest_configure_node(self, node: Any) -> None:
        """Tell each worker that our scheduler hands it the share ``index % count``."""
        if node.config.option.promstack and node.config.getvalue("dist") == "load":
            node.workerinput["promstack_partition"] = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if not config.option.promstack or config.getvalue("dist") != "load":
            return None
        return _partition_scheduling()(config, log)


def _partition_scheduling() -> type:
    from xdist.scheduler import LoadScheduling

    class PartitionScheduling(LoadScheduling):  # type: ignore[misc]
        """Sends every worker its fixed share (index % workers) at once; a crashed worker's
        items go back to the pool and to the others, as with xdist's load scheduling."""

        def schedule(self) -> None:
            if self.collection is not None or not self._check_nodes_have_same_collection():
                return super().schedule()
            self.collection = next(iter(self.node2collection.values()))
            if self.maxschedchunk is None:  # LoadScheduling uses it when it reschedules a crashed worker's items
                self.maxschedchunk = len(self.collection)
            count = len(self.nodes)
            shares = partition(list(self.collection), count)
            for node in self.nodes:
                share = shares[int(str(node.gateway.id).removeprefix("gw")) % count]
                if share:
                    self.node2pending[node].extend(share)
                    node.send_runtest_some(share)
            self.pending[:] = []
            for node in self.nodes:
                node.shutdown()

    return PartitionScheduling
