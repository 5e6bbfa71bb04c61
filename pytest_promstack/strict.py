"""YAML and JSON that mean what they say: a key written twice in one mapping is an error
naming the file, the line and the key, never a silent "the later one wins".

Every YAML and JSON document the project reads (the config, prompt files, test files, the
prompt registry) goes through here. YAML stays ``safe_load``: plain data, no Python tags.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any


class DuplicateKeyError(ValueError):
    """``file:line: duplicate key 'suites'``; ``line`` is 1-based (None when unknown)."""

    def __init__(self, key: Any, line: int | None, first: int | None = None) -> None:
        self.key, self.line, self.first = key, line, first
        where = f" (first at line {first})" if first is not None else ""
        super().__init__(f"duplicate key {key!r}{where}; keep one, the later one would silently win")

    def at(self, source: str) -> str:
        """The one line a user sees: ``promstack.yaml:19: duplicate key 'suites' …``."""
        return f"{source}:{self.line}: {self}" if self.line is not None else f"{source}: {self}"


@cache
def _loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that refuses a key repeated in one mapping."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, it is no key
                continue
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself below
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(key, line, first)
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that raises ``DuplicateKeyError`` for a repeated key (and
    ``yaml.YAMLError`` for what is not YAML)."""
    import yaml

    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: plain data only


def load_json(text: str) -> Any:
    """``json.loads`` that raises ``DuplicateKeyError`` for a key repeated in one object."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DuplicateKeyError(key, _line_of(text, key))
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def _line_of(text: str, key: str) -> int | None:
    """The line of the repeated ``key``: walk the text's objects, keeping each one's keys."""
    import re

    token = re.compile(r'"(?:[^"\\]|\\.)*"\s*:?|[{}]')
    stack: list[set[str]] = []
    for m in token.finditer(text):
        tok = m.group()
        if tok == "{":
            stack.append(set())
        elif tok == "}":
            if stack:
                stack.pop()
        elif tok.endswith(":") and stack:
            name = json.loads(tok[:-1].rstrip())
            if name in stack[-1] and name == key:
                return text.count("\n", 0, m.start()) + 1
            stack[-1].add(name)
    return None
