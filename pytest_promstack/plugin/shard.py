"""``--promstack-shard I/N``: one CI job's share of the selected cases.

Whole test rows (every prompt x model variant of a row together, as xdist's partition keeps
them: a row's select-best judge sees all its variants), in collection order, each dealt to
the shard with the fewest planned model calls so far (the lowest index on a tie). Every job
collects the same items and so computes the same split; the shards' results JSON files merge
into the run's (``promstack report A.json B.json ...``, results/merge.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .xdist import row_of


def split(rows: Sequence[tuple[str, int]], count: int) -> list[list[str]]:
    """Each shard's row keys: ``rows`` are (key, planned calls) in collection order."""
    shards: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for key, calls in rows:
        i = min(range(count), key=lambda s: (load[s], s))
        shards[i].append(key)
        load[i] += calls
    return shards


def calls_of(item: pytest.Item) -> int:
    """The model calls a case plans (a conversation's first turn counts one; at least one)."""
    plan = getattr(item, "plan", None)
    return max(1, len(getattr(plan, "requests", ()) or ()))


def select(items: list[pytest.Item], index: int, count: int) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, deselected) for shard ``index`` (1-based) of ``count``."""
    weights: dict[str, int] = {}
    for item in items:
        key = row_of(item.nodeid)
        weights[key] = weights.get(key, 0) + calls_of(item)
    mine = set(split(list(weights.items()), count)[index - 1])
    kept = [i for i in items if row_of(i.nodeid) in mine]
    return kept, [i for i in items if row_of(i.nodeid) not in mine]


def apply(config: pytest.Config, items: list[pytest.Item], shard: tuple[int, int]) -> int:
    """Keep this shard's items (the rest deselected, as -k does); how many were selected before."""
    selected = len(items)
    kept, dropped = select(items, *shard)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    return selected
