"""promptfoo's structure checks on text: ``word-count``, ``is-xml``, ``contains-xml`` and
``contains-html``, with promptfoo's verdicts (``tests/data/promptfoo_cases.yaml``).

XML is parsed by lxml (libxml2) with no network, no DTD loading and no entity expansion, and a
document with an internal DTD subset is refused before parsing (as promptfoo refuses it): an
output cannot make the run fetch a URL or expand entities without bound. Finding XML inside
text is one linear pass over its tags; each fragment is parsed once. Each check returns
``(passed, reason)``, as any assertion function may.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from ..model.specs import word_bounds

# ---- word-count -------------------------------------------------------------------------


def word_count(output: str, value: Any, ctx: Any) -> Any:
    """Words are runs of non-space characters (Korean words are separated by spaces too)."""
    lo, hi = word_bounds(value)
    n = len(output.split())
    if lo == hi:
        return (n == lo, f"word count {n}" + ("" if n == lo else f", not {lo}"))
    ok = (lo is None or n >= lo) and (hi is None or n <= hi)
    want = f"{lo}..{hi}" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"
    return (ok, f"word count {n}, want {want}")


# ---- XML ---------------------------------------------------------------------------------

INTERNAL_SUBSET = re.compile(r"<!DOCTYPE[^>\[]*\[", re.I)


class XmlProblem(ValueError):
    pass


@functools.cache
def _parser() -> Any:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(text: str) -> Any:
    """The root element of ``text`` as one XML document, or ``XmlProblem`` saying why not."""
    from lxml import etree

    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        raise XmlProblem("the output is empty")
    if INTERNAL_SUBSET.search(text):
        raise XmlProblem("a DTD internal subset (<!DOCTYPE x [...]>) is not accepted: its entities could expand "
                         "without bound")
    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlProblem(f"not well-formed XML: {exc.msg}") from None
    except ValueError as exc:  # e.g. a unicode string with an encoding declaration
        raise XmlProblem(f"not XML: {exc}") from None


def required_elements(value: Any) -> list[str]:
    """``is-xml``'s value: ``a.b,a.c``, a list, or ``{requiredElements: [...]}``."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        value = value.get("requiredElements") or []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _name(element: Any) -> str:
    from lxml import etree

    local = etree.QName(element).localname
    return f"{element.prefix}:{local}" if element.prefix else local


def has_path(root: Any, path: str) -> bool:
    """``analysis.color``: the root is ``analysis`` and has a ``color`` child; ``root.item.1.name``
    picks the second ``item``. Several elements of one name need an index before going deeper,
    as in promptfoo (they are a list there)."""
    parts = path.split(".")
    if _name(root) != parts[0]:
        return False
    nodes = [root]
    for part in parts[1:]:
        if part.isdigit():
            index = int(part)
            nodes = [nodes[index]] if index < len(nodes) else []
        elif len(nodes) == 1:
            nodes = [c for c in nodes[0] if isinstance(c.tag, str) and _name(c) == part]
        else:
            return False
        if not nodes:
            return False
    return True


def is_xml(output: str, value: Any, ctx: Any) -> Any:
    try:
        root = parse_xml(output)
    except XmlProblem as exc:
        return (False, str(exc))
    missing = [p for p in required_elements(value) if not has_path(root, p)]
    if missing:
        return (False, f"XML is missing required elements: {', '.join(missing)}")
    return (True, f"well-formed XML, root <{_name(root)}>")


def contains_xml(output: str, value: Any, ctx: Any) -> Any:
    """Some well-formed element in the text (outermost ones, each parsed once); with required
    elements, each must be found in one of them."""
    wanted = required_elements(value)
    roots = []
    for fragment in xml_fragments(output):
        try:
            roots.append(parse_xml(fragment))
        except XmlProblem:
            continue
    if not roots:
        return (False, "no XML content found in the output")
    missing = [p for p in wanted if not any(has_path(r, p) for r in roots)]
    if missing:
        return (False, f"no XML in the output has {', '.join(missing)}")
    return (True, f"found XML <{_name(roots[0])}>")


_START = re.compile(r"<([^\s<>/!?\"'=]+)((?:\s+[^\s<>/=\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>]+))?)*)\s*(/?)>")
_END = re.compile(r"</([^\s<>/]+)\s*>")
_SKIP = {"<!--": "-->", "<![CDATA[": "]]>", "<?": "?>", "<!": ">"}


def _tags(text: str) -> Iterator[tuple[str, str, int, int]]:
    """(kind, name, start, end) for each start, end or empty tag; comments, CDATA, processing
    instructions and declarations are passed over. Each ``<`` is looked at once, and a tag is
    matched only up to the next ``<``: linear in the text."""
    i = text.find("<")
    while i >= 0:
        nxt = text.find("<", i + 1)
        stop = len(text) if nxt < 0 else nxt
        opener = next((o for o in _SKIP if text.startswith(o, i)), None)
        if opener is not None:
            end = text.find(_SKIP[opener], i + len(opener))
            if end < 0:
                return
            i = text.find("<", end + len(_SKIP[opener]))
            continue
        piece = text[i:stop]
        if (m := _END.match(piece)) is not None:
            yield "end", m.group(1), i, i + m.end()
        elif (m := _START.match(piece)) is not None:
            yield ("empty" if m.group(3) else "start"), m.group(1), i, i + m.end()
        i = nxt


def xml_fragments(text: str) -> list[str]:
    """The outermost balanced elements of ``text``, left to right. A start tag whose end tag
    never comes is passed over, and what it holds is looked at on its own; an end tag closes
    the nearest open element of its name (found through a per-name index, not a walk down the
    stack), so the pass stays linear."""
    stack: list[tuple[str, int]] = []
    open_at: dict[str, list[int]] = {}  # name -> its places in the stack, innermost last
    closed: list[tuple[int, int]] = []
    for kind, name, start, end in _tags(text):
        if kind == "start":
            open_at.setdefault(name, []).append(len(stack))
            stack.append((name, start))
        elif kind == "empty":
            closed.append((start, end))
        elif open_at.get(name):
            depth = open_at[name][-1]
            closed.append((stack[depth][1], end))
            for dropped, _ in reversed(stack[depth:]):  # it and whatever was left open inside it
                open_at[dropped].pop()
            del stack[depth:]
    closed.sort()
    out, reach = [], -1
    for start, end in closed:
        if start >= reach:
            out.append(text[start:end])
            reach = end
    return out


# ---- HTML --------------------------------------------------------------------------------

# Each pattern stops at the next "<" (or, for an attribute, starts only where a run of spaces
# does): a megabyte of "<a " or of spaces is one linear scan, not one scan per position.
_OPEN = re.compile(r"<[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?>")
_CLOSE = re.compile(r"</[a-zA-Z][a-zA-Z0-9-]*\s*>")
_SIGNS = (  # (sign, weight, pattern); text is HTML with signs weighing two or more (promptfoo's rule)
    ("self-closing tag", 1, re.compile(r"<[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/>")),
    ("entity", 1, re.compile(r"&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);")),
    ("HTML doctype", 2, re.compile(r"<!DOCTYPE\s+html", re.I)),
    ("quoted attribute", 1, re.compile(r"(?<!\s)\s+[a-zA-Z-]+\s*=\s*[\"'][^\"']*[\"']")),
    ("HTML tag name", 2, re.compile(r"<(?:html|head|body|div|span|p|a|img|h[1-6]|ul|ol|li|table|tr|td|th|form|"
                                    r"input|button|script|style|link|meta|br|hr)\b", re.I)),
)


def html_signs(text: str) -> dict[str, int]:
    """The signs of HTML in ``text`` with their weights: a start and an end tag (2; one of them
    1), a self-closing tag, an entity, a comment, a quoted attribute (1 each), an HTML doctype
    or a common HTML tag name (2 each). ``a < b``, ``<example>`` or ``&amp;`` alone weigh one
    or nothing."""
    signs: dict[str, int] = {}
    tags = (_OPEN.search(text) is not None) + (_CLOSE.search(text) is not None)
    if tags:
        signs["start and end tags" if tags == 2 else "a tag"] = tags
    opened = text.find("<!--")
    if opened >= 0 and text.find("-->", opened + 4) >= 0:
        signs["comment"] = 1
    for name, weight, pattern in _SIGNS:
        if pattern.search(text) is not None:
            signs[name] = weight
    return signs


def contains_html(output: str, value: Any, ctx: Any) -> Any:
    signs = html_signs(output)
    enough = sum(signs.values()) >= 2
    listed = ", ".join(signs) or "none"
    return (enough, f"signs of HTML: {listed}" + ("" if enough else " (two are needed)"))
