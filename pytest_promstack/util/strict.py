"""YAML and JSON that mean what they say: a key written twice in one mapping is an error
naming the file, the line and the key, never a silent "the later one wins".

Every YAML and JSON document the project reads (the config, prompt files, test files, the
prompt registry) goes through here. YAML stays ``safe_load``: plain data, no Python tags.

Bounded work per document, since test files may come from someone else's pull request: at
most ``MAX_DEPTH`` levels of nesting (YAML and JSON), and YAML aliases (``*name``) may add at
most ``MAX_ALIAS_NODES`` values when expanded (a 500-byte "billion laughs" expands to 10⁹);
an alias inside the node it names is refused too. Beyond a bound: ``LimitError``, one line.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

MAX_DEPTH = 100
MAX_ALIAS_NODES = 1_000_000


class DuplicateKeyError(ValueError):
    """``file:line: duplicate key 'suites'``; ``line`` is 1-based (None when unknown)."""

    def __init__(self, key: Any, line: int | None, first: int | None = None) -> None:
        self.key, self.line, self.first = key, line, first
        where = f" (first at line {first})" if first is not None else ""
        super().__init__(f"duplicate key {key!r}{where}; keep one, the later one would silently win")

    def at(self, source: str) -> str:
        """The one line a user sees: ``promstack.yaml:19: duplicate key 'suites' …``."""
        return f"{source}:{self.line}: {self}" if self.line is not None else f"{source}: {self}"


class LimitError(ValueError):
    """A document beyond a bound: ``file:line: …`` with the fix; ``line`` is 1-based or None.
    For YAML it is also a ``yaml.YAMLError`` (see ``_loader``), so every YAML reader reports it."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message)

    def at(self, source: str) -> str:
        return f"{source}:{self.line}: {self}" if self.line is not None else f"{source}: {self}"


def _too_deep(line: int | None = None) -> LimitError:
    return LimitError(f"nested deeper than {MAX_DEPTH} levels; flatten the data to at most {MAX_DEPTH}", line)


@cache
def _loader() -> type:
    import yaml

    class YAMLLimitError(LimitError, yaml.MarkedYAMLError):
        """A ``LimitError`` that YAML readers catching ``yaml.YAMLError`` report too."""

        def __init__(self, error: LimitError) -> None:
            LimitError.__init__(self, str(error), error.line)
            self.problem, self.context, self.context_mark, self.note = str(error), None, None, None
            self.problem_mark = yaml.Mark("", 0, error.line - 1, 0, None, None) if error.line else None

        def __str__(self) -> str:
            return self.problem

    class StrictLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that refuses a key repeated in one mapping, nesting deeper than
        ``MAX_DEPTH`` and aliases that expand beyond ``MAX_ALIAS_NODES``."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise YAMLLimitError(_too_deep(self.peek_event().start_mark.line + 1))
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_document(self, node: Any) -> Any:
            try:
                _check_aliases(node)
            except LimitError as exc:
                raise YAMLLimitError(exc) from None
            return super().construct_document(node)

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


def _check_aliases(root: Any) -> None:
    """Refuse a composed YAML graph whose aliases add more than ``MAX_ALIAS_NODES`` values
    once expanded, or that contains itself. An alias is the same node object reached twice, so
    sizes are counted once per node (iteratively: linear in the document, not in its expansion)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = _children(node)
        if done:
            open_.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            continue
        if id(node) in sizes:
            continue
        open_.add(id(node))
        stack.append((node, True))
        for kid in kids:
            if id(kid) in open_:
                raise LimitError("an alias (*name) refers to a node that contains it; "
                                 "YAML test data cannot be recursive, write the value out",
                                 node.start_mark.line + 1)
            if id(kid) not in sizes:
                stack.append((kid, False))
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_NODES:
        raise LimitError(f"its aliases (*name) expand to {added:,} more values, beyond the limit of "
                         f"{MAX_ALIAS_NODES:,}; write the data out instead of nesting aliases",
                         root.start_mark.line + 1)


def _children(node: Any) -> list[Any]:
    value = node.value
    if not isinstance(value, list):  # a scalar
        return []
    if value and isinstance(value[0], tuple):  # a mapping: (key, value) pairs
        return [n for pair in value for n in pair]
    return value


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that raises ``DuplicateKeyError`` for a repeated key, ``LimitError``
    (also a ``yaml.YAMLError``) beyond the bounds, and ``yaml.YAMLError`` for what is not YAML."""
    import yaml

    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: plain data only


def load_json(text: str) -> Any:
    """``json.loads`` that raises ``DuplicateKeyError`` for a key repeated in one object and
    ``LimitError`` for nesting deeper than ``MAX_DEPTH``."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DuplicateKeyError(key, _line_of(text, key))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:  # far deeper than MAX_DEPTH: the parser itself gave up
        raise _too_deep(_deep_line(text)) from None
    if _depth_beyond(data, MAX_DEPTH):
        raise _too_deep(_deep_line(text))
    return data


def _depth_beyond(data: Any, limit: int) -> bool:
    """Whether lists/objects nest deeper than ``limit`` (iteratively, stopping early)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _deep_line(text: str) -> int | None:
    """The line where the nesting first goes beyond ``MAX_DEPTH`` (brackets outside strings)."""
    import re

    depth = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, m.start()) + 1
        elif tok in "]}":
            depth -= 1
    return None


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
