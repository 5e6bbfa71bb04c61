"""promptfoo's ``is-html``: is the whole output an HTML document or fragment?

promptfoo parses the output as an HTML document (jsdom, whose parser follows the WHATWG HTML
standard) and fails it when it is empty, starts with ``<?xml``, leaves text outside any
element (text the parser puts straight into the ``<body>`` it made up, when the output has no
``<body`` of its own: plain text, "Here is HTML: <div>…", a trailing sentence), or holds no
element that HTML has (``VALID``, or a custom element, whose name has a hyphen; ``<html>``,
``<head>`` and ``<body>`` count only when the output writes them). Here the output is parsed
by lexbor (``selectolax``), another parser of that same standard, so the two see the same
tree: the same verdicts, not an approximation of them.

Bounded work. A standard parser is quadratic on some inputs: each start tag looks down the
stack of open elements (a megabyte of ``<div>`` takes a minute), and lexbor checks each
attribute of a tag against the others (150,000 attributes in one tag take forty seconds).
So, before parsing, every tag is rewritten without its attributes (``<a href="x" class=y>``
becomes ``<a>``, keeping only the ``-``, ``!`` and ``]`` in them, so that a tag inside a
comment or a CDATA section still ends it where it did), in one linear pass; no verdict reads
an attribute. And an output of more than ``MAX_TAGS`` tags is not parsed: the check fails as
undecided, naming the limit. Within it the worst case is well under a second.
"""

from __future__ import annotations

import re
from typing import Any

from .outcome import Undecided
from .refusal import js_trim

MAX_CHARS = 10 * 1024 * 1024  # promptfoo's limit: a longer output is not HTML
MAX_TAGS = 20_000

# The elements of HTML less the obsolete ones, as promptfoo lists them (its src/assertions/html.ts).
VALID = frozenset({"html", "head", "title", "base", "link", "meta", "style", "body", "article", "section", "nav",
    "aside", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "address", "p", "hr", "pre", "blockquote", "ol",
    "ul", "li", "dl", "dt", "dd", "figure", "figcaption", "main", "div", "a", "em", "strong", "small", "s", "cite",
    "q", "dfn", "abbr", "ruby", "rt", "rp", "data", "time", "code", "var", "samp", "kbd", "sub", "sup", "i", "b",
    "u", "mark", "bdi", "bdo", "span", "br", "wbr", "img", "iframe", "embed", "object", "param", "picture", "source",
    "video", "audio", "track", "map", "area", "svg", "math", "script", "noscript", "canvas", "ins", "del", "table",
    "caption", "colgroup", "col", "tbody", "thead", "tfoot", "tr", "td", "th", "form", "label", "input", "button",
    "select", "datalist", "optgroup", "option", "textarea", "output", "progress", "meter", "fieldset", "legend",
    "details", "summary", "dialog", "menu", "slot", "template"})

# A start or end tag: its name, then its attributes up to ">", a quoted value running over ">"
# (not over "<": a tag never spans a "<", so the pass is linear and each "<" starts one match).
# Names and spaces are HTML's: a tag name ends at a tab, line feed, form feed, space, "/" or ">".
_TAG = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r /<>]*+)((?:\"[^\"<]*+\"|'[^'<]*+'|[^<>])*+)(>?)")
_KEEP = re.compile(r"[^-!\]]+")
_XML = re.compile(r"\s*<\?xml", re.I)


class _TooMany(Exception):
    pass


def without_attributes(text: str) -> str:
    """``text`` with each tag's attributes dropped; raises ``_TooMany`` past ``MAX_TAGS`` tags."""
    count = 0

    def bare(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        if count > MAX_TAGS:
            raise _TooMany
        slash, name, rest, close = m.groups()
        out = f"<{slash}{name}"
        if rest:
            out += " " + _KEEP.sub("", rest)
            if close and rest.endswith("/"):
                out += "/"
        return out + close

    return _TAG.sub(bare, text)


def html_problem(output: str) -> str | None:
    """Why ``output`` is not HTML as promptfoo's ``is-html`` sees it, or None when it is."""
    text = js_trim(output)
    if not text:
        return "the output is empty"
    if len(text) > MAX_CHARS:
        return f"the output is longer than {MAX_CHARS:,} characters, promptfoo's limit for HTML"
    if _XML.match(text):
        return "the output is XML (it starts with <?xml), not HTML"
    try:
        bare = without_attributes(text)
    except _TooMany:
        raise Undecided(f"the output has more than {MAX_TAGS:,} tags, more than is-html parses (parsing grows "
                        "with the square of the tags); check a shorter output") from None
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(bare)
    lowered = text.lower()
    body = tree.body
    if body is not None and "<body" not in lowered:  # the parser made the body: is any text left in it?
        for node in body.iter(include_text=True):
            if node.tag == "-text" and js_trim(node.text_content or ""):
                return f"text outside HTML tags ({_show(node.text_content)}); the whole output must be HTML"
    for node in tree.root.traverse(include_text=False):
        name = (node.tag or "").lower()
        if name[:1] in ("-", "!", "#", ""):  # lexbor's own nodes (text, comments), not elements
            continue
        if name in ("html", "head", "body") and f"<{name}" not in lowered:
            continue
        if name in VALID or "-" in name:
            return None
    return "no HTML element in the output (only tags HTML does not have)"


def _show(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def is_html(output: str, value: Any, ctx: Any) -> Any:
    problem = html_problem(output)
    return (problem is None, problem or "the output is HTML")
