"""The one Jinja2 environment for templates from files (prompts, judges, the arena): sandboxed,
so a template cannot reach code, and bounded, so it cannot take unbounded work either.

Jinja2's ``SandboxedEnvironment`` refuses attributes that lead to code, but not work:
``{% for i in range(100000) %}{% for j in range(100000) %}…`` never ends, and
``{{ ('x' * 1000000000)|length }}`` takes a gigabyte, both at collection. Here:

- no value a template makes may be larger than ``MAX_SIZE`` characters (or list items), checked
  *before* it is made: the operators that multiply (``*``, ``**``, ``%``, ``+``, ``~``), the
  filters and ``str`` methods that grow text from a number or a second text (``center``,
  ``indent``, ``format``, ``wordwrap``, ``join``, ``replace``, ``tojson``, ``urlize``, ``sum``,
  ``ljust``, ``zfill``, ``expandtabs``, ``translate``, ``str.format``), what is printed
  (``{{ x }}`` of a list that holds one long text many times) and the rendered text itself;
  numbers stay under ``MAX_BITS`` bits;
- all the values one render makes add up to at most ``BUDGET`` (a list item counts as 8
  characters), so a loop that keeps what it makes (``append``, recursion) stops too;
- one render (or compile) may take ``CPU_S`` seconds of CPU time: a profiling timer
  (``ITIMER_PROF``, SIGPROF) stops it. ``ITIMER_PROF`` rather than ``ITIMER_VIRTUAL``: it
  also counts system time, where a template that allocates spends it (page faults); SIGALRM
  stays free for pytest-timeout. Signals reach only the main thread, so off it (a user's
  own thread calling the SDK) and where there is no ``setitimer`` (Windows) the CPU limit
  is off; the size limits hold everywhere.

Over a limit, a render raises ``TemplateLimitError`` (a Jinja2 ``SecurityError``, so every
caller's ``except jinja2.TemplateError`` takes it) whose message starts with "template
stopped:" and names the limit. A template once stopped for CPU time fails at once on its
next renders, so a thousand cases cost one second, not a thousand.
"""

from __future__ import annotations

import contextvars
import functools
import re
import signal
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from .limits import MAX_SIZE

BUDGET = 8 * MAX_SIZE  # characters of all the values one render makes (a list item counts as 8)
MAX_BITS = 65_536  # of a whole number
CPU_S = 1.0  # of CPU time per render or compile
MAX_INDENT = 16  # tojson(indent=…)
ITEM = 8  # what a list item counts for in the budget


class TemplateLimitError(SecurityError):
    """A template went over one of the bounds above; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"template stopped: {message}")


class _Overtime(BaseException):
    """Raised by the CPU timer's handler inside a render: a BaseException, so no
    ``except Exception`` on the way swallows it."""


def compile_template(text: str) -> jinja2.Template:
    """``text`` compiled in the bounded sandbox (compiling folds constants, which runs filters)."""
    return _limited(_compiled, text)


def _compiled(text: str) -> jinja2.Template:
    tree = environment().parse(text)  # parsed once: compiled, and read by _plain
    template = environment().from_string(tree)
    template.plain = _plain(tree)
    return template


def _plain(tree: jinja2.nodes.Template) -> bool:
    """Whether the template is only text and ``{{ name }}`` (no filter, test, call, attribute,
    item, operator, loop or block): rendering it writes its variables out, which the size
    checks of the compiled template bound (``_check_shown``, ``_joined_output``), so it runs
    without the CPU timer and the budget, each of which costs more than such a render (most
    prompts: ``{{ input }}``, a system text and a question)."""
    from jinja2 import nodes

    body = tree.body
    return all(isinstance(node, nodes.Output) and all(
        isinstance(part, nodes.TemplateData) or (isinstance(part, nodes.Name) and part.ctx == "load")
        for part in node.nodes) for node in body)


@functools.cache
def environment() -> BoundedSandbox:
    return BoundedSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


# ---- sizes ------------------------------------------------------------------------------


def weight(value: Any, cap: int = MAX_SIZE) -> int:
    """About how many characters ``str(value)`` has, counted only until past ``cap`` (so a list
    that holds a long text a million times costs ``cap`` steps at most, not its length)."""
    total, stack = 0, [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= cap:
                stack.extend(item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
    return total


def _weights(items: Any) -> int:
    """The weights of a list's items added up, each distinct object weighed once:
    ``[[1] * 100] * 10000`` holds one list 10,000 times (the list holds every item, so no id
    is reused while this runs; any other sequence, e.g. a range, makes its items as it goes and
    is weighed item by item)."""
    if not isinstance(items, list | tuple):
        return sum(weight(i) for i in items)
    sizes: dict[int, int] = {}
    total = 0
    for item in items:
        key = id(item)
        if key not in sizes:
            sizes[key] = weight(item)
        total += sizes[key]
    return total


def _size(value: Any) -> int:
    """What a value made counts for in the budget."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | dict | set | frozenset):
        return ITEM * len(value)
    return 0


def _refuse(what: str, size: int, unit: str = "characters", limit: int = MAX_SIZE) -> None:
    if size > limit:
        raise TemplateLimitError(f"{what} would make {_count(size)} {unit}, more than the limit of {limit:,}; "
                                 "templates may not build values that large")


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


class _Budget:
    def __init__(self) -> None:
        self.used = 0

    def spend(self, value: Any) -> None:
        self.used += _size(value)
        if self.used > BUDGET:
            raise TemplateLimitError(f"it made more than {BUDGET:,} characters of values in one render (the limit "
                                     "per render; a list item counts as 8); simplify it")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("promstack_template_budget", default=None)


def _spend(value: Any) -> Any:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(value)
    return value


def _check_shown(value: Any, what: str = "printing a value") -> Any:
    if not isinstance(value, str):  # a text is checked where it was made; a list may repeat one
        _refuse(what, weight(value))
    return value


# ---- operators ------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if _sequence(seq) and _is_int(n):
                _refuse(f"{type(seq).__name__} * {n}", len(seq) * max(n, 0),
                        "characters" if isinstance(seq, str | bytes) else "items")
        if _is_int(left) and _is_int(right):
            _refuse("a product", left.bit_length() + right.bit_length(), "bits", MAX_BITS)
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _refuse(f"{left} ** {right}", right * abs(left).bit_length(), "bits", MAX_BITS)
    elif operator == "%" and isinstance(left, str | bytes):
        _refuse("text % values", _percent_size(left, right))
    elif operator == "+" and _sequence(left) and _sequence(right):
        _refuse("joining two values with +", len(left) + len(right),
                "characters" if isinstance(left, str | bytes) else "items")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_BRACE_FIELD = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")


def _number(digits: str | None) -> int:
    return 0 if not digits or digits == "*" else (int(digits) if len(digits) < 10 else 10**10)


def _values(args: Any) -> list[Any]:
    if isinstance(args, dict):
        return list(args.values())
    return list(args) if isinstance(args, tuple | list) else [args]


def _format_size(fmt: str | bytes, fields: int, widths: Iterable[int], takes_width: bool, args: list[Any]) -> int:
    """An upper bound for the length of ``fmt`` filled: each field at most its widest width
    plus the widest value (a field may be repeated, a width may come from a value)."""
    numbers = list(widths) + ([abs(a) for a in args if _is_int(a)] if takes_width else [])
    widest = max([weight(a) for a in args] or [0])
    return len(fmt) + fields * (widest + max(numbers or [0]))


def _percent_size(fmt: str | bytes, args: Any) -> int:
    if isinstance(fmt, bytes):
        fmt = fmt.decode("latin-1")
    specs = _PERCENT_SPEC.findall(fmt)
    widths = [_number(w) for spec in specs for w in spec]
    return _format_size(fmt, len(specs), widths, any("*" in spec for spec in specs), _values(args))


def _brace_size(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    fields = _BRACE_FIELD.findall(fmt)
    widths = [_number(d) for f in fields for d in re.findall(r"\d+", f)]
    nested = any(f.count("{") > 1 for f in fields)
    return _format_size(fmt, len(fields), widths, nested, [*args, *kwargs.values()])


# ---- filters ----------------------------------------------------------------------------


def _lines(s: Any) -> int:
    return s.count("\n") + 1 if isinstance(s, str) else weight(s)


def _center(value: Any, width: Any = 80) -> int:
    return max(weight(value), width if _is_int(width) else 0)


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> int:
    step = width if _is_int(width) else weight(width)
    return weight(s) + _lines(s) * step


def _format(value: Any, *args: Any, **kwargs: Any) -> int:
    return _percent_size(value, kwargs or args) if isinstance(value, str) else weight(value)


def _wordwrap(s: Any, width: Any = 79, break_long_words: bool = True, wrapstring: Any = None,
              break_on_hyphens: bool = True) -> int:
    n = weight(s)
    # a line ends where the next word would not fit: two lines in a row hold more than width
    lines = 2 * n // max(width if _is_int(width) else 1, 1) + 2 * _lines(s) + 2
    return n + lines * (weight(wrapstring) if wrapstring is not None else 1)


def _join(value: Any, d: Any = "", attribute: Any = None) -> int:
    items = value if isinstance(value, list | tuple | str) else []
    return _weights(items) + max(len(items) - 1, 0) * weight(d)


def _replace(s: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    if not (isinstance(s, str) and isinstance(old, str)):
        return weight(s)
    hits = s.count(old) if old else len(s) + 1
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max((len(new) if isinstance(new, str) else weight(new)) - len(old), 0)


def _tojson(value: Any, indent: Any = None) -> int:
    step = indent if _is_int(indent) else weight(indent) if indent is not None else 0
    _refuse(f"tojson(indent={step})", step, "columns of indent", MAX_INDENT)
    return weight(value)


_URLISH = re.compile(r"[.@:]")


def _urlize(value: Any, trim_url_limit: Any = None, nofollow: bool = False, target: Any = None, rel: Any = None,
            extra_schemes: Any = None) -> int:
    if not isinstance(value, str):
        return weight(value)
    links = sum(1 for word in value.split() if _URLISH.search(word))
    extra = (weight(target) if target else 0) + (weight(rel) if rel else 0) + 60
    return 2 * len(value) + links * extra


def _sum(iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    if isinstance(start, int | float) or not isinstance(iterable, list | tuple):
        return 0
    total = weight(start) + _weights(iterable)
    # each + copies what was summed so far: n additions copy up to n times the total
    _refuse("sum(start=…) of these values", len(iterable) * total, "characters copied", BUDGET)
    return total


def _batch(value: Any, linecount: Any = 1, fill_with: Any = None) -> int:
    return linecount if _is_int(linecount) else 0


def _slice(value: Any, slices: Any = 1, fill_with: Any = None) -> int:
    return slices if _is_int(slices) else 0


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": _center, "indent": _indent, "format": _format, "wordwrap": _wordwrap, "join": _join,
    "replace": _replace, "tojson": _tojson, "dump": _tojson, "urlize": _urlize, "sum": _sum, "batch": _batch,
    "slice": _slice,
}
_MATERIALISE = {"join", "sum"}  # filters whose input may be a one-shot iterator the estimate must read first


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(fn, "jinja_pass_arg", None) is not None
    estimate = _FILTER_SIZES.get(name)

    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        head, rest = (args[:1], list(args[1:])) if passes else ((), list(args))
        if rest:
            if name in _MATERIALISE and not isinstance(rest[0], list | tuple | str | jinja2.Undefined):
                rest[0] = list(rest[0])
            _check_shown(rest[0], f"filter {name} on a value")
            if estimate is not None:
                _refuse(f"filter {name}", estimate(*rest, **kwargs))
        return _spend(fn(*head, *rest, **kwargs))

    return bounded


# ---- calls ----------------------------------------------------------------------------


def _method_size(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """What a call of a built-in method of a text, a list or a number would make, before it is made."""
    owner, name = method.__self__, method.__name__
    numbers = [a for a in (*args, *kwargs.values()) if _is_int(a)]
    if isinstance(owner, int):
        return max(numbers or [0]) if name == "to_bytes" else 0
    if isinstance(owner, list | set | dict):
        grows = name in ("extend", "update") and args and hasattr(args[0], "__len__")
        return len(owner) + len(args[0]) if grows else 0
    if name == "join":
        items = args[0] if args else []
        return _weights(items) + max(len(items) - 1, 0) * len(owner)
    if name == "replace" and len(args) >= 2:
        return _replace(owner, *args) if isinstance(owner, str) else len(owner) * max(len(args[1]), 1)
    if name == "expandtabs":
        return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * max(numbers or [8])
    if name == "translate" and args and isinstance(args[0], dict):
        return len(owner) * max([weight(v) for v in args[0].values()] or [1])
    return max([len(owner), *numbers]) if name in ("center", "ljust", "rjust", "zfill") else len(owner)


_GROWING = {"join", "extend", "update"}  # their argument may be a one-shot iterator the estimate must read


def _joined_output(parts: Iterable[str]) -> str:
    """What a template (or a macro, or a ``set`` block) writes, joined within ``MAX_SIZE``."""
    out, total = [], 0
    for part in parts:
        total += len(part)
        if total > MAX_SIZE:
            raise TemplateLimitError(f"the rendered text would be more than {MAX_SIZE:,} characters (the limit); "
                                     "templates may not build values that large")
        out.append(part)
    return "".join(out)


def _dump(value: Any, indent: Any = None) -> str:
    """``{{ x | dump }}``: JSON text as nunjucks writes it (Korean as it is, no HTML escapes)."""
    import json

    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def _load(value: Any) -> Any:
    """``{{ (style | load).tone }}``: JSON text as data (the text is a variable's value, already
    bounded; JSON nested past what the parser can follow is an error, as a bad value is)."""
    import json

    try:
        return json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise ValueError(f"load: the value is not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise ValueError("load: the JSON value is nested too deep") from None


class BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox with the bounds of this module."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(finalize=_check_shown, **kwargs)
        self.code_generator_class = _CodeGenerator
        self.template_class = BoundedTemplate
        self.filters = {name: _bounded_filter(name, fn) for name, fn in self.filters.items()}
        self.filters["load"] = _load  # promptfoo's: a variable holding JSON text, read as data
        self.filters["dump"] = _bounded_filter("dump", _dump)  # nunjucks' JSON.stringify
        self.globals["lipsum"] = _lipsum(self.globals["lipsum"])

    concat = staticmethod(_joined_output)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _spend(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = __obj.__self__ if isinstance(__obj, types.BuiltinMethodType) else None
        if isinstance(owner, str | bytes | int | list | set | dict):
            if __obj.__name__ in _GROWING and args and not hasattr(args[0], "__len__"):
                args = (list(args[0]), *args[1:])
            _refuse(f"{type(owner).__name__}.{__obj.__name__}()", _method_size(__obj, args, kwargs),
                    "items" if isinstance(owner, list | set | dict) else "characters")
        return _spend(super().call(__context, __obj, *args, **kwargs))

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        return _spend(value) if isinstance(argument, slice) else value

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if is_map and args and isinstance(args[0], dict) else kwargs
            _refuse(f"{value.__name__}()", _brace_size(fmt, () if is_map else args, mapping))
            return _spend(wrapper(*args, **kwargs))

        return bounded

    def joined(self, markup: bool, parts: tuple[Any, ...]) -> str:
        """``a ~ b``: every part and the whole within ``MAX_SIZE`` before anything is joined."""
        _refuse("joining with ~", sum(weight(p) if not isinstance(p, str) else len(p) for p in parts))
        return _spend(markup_join(parts) if markup else str_join(parts))


def _lipsum(generate: Callable[..., str]) -> Callable[..., str]:
    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        _refuse("lipsum()", (n if _is_int(n) else 0) * (max if _is_int(max) else 0) * 8)
        return generate(n, html, min, max)

    return lipsum


class _CodeGenerator(CodeGenerator):
    """``~`` compiles to ``environment.joined(…)`` (Jinja2 intercepts arithmetic operators, not ``~``)."""

    def visit_Concat(self, node: Any, frame: Any) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.volatile"
        else:
            markup = "True" if frame.eval_ctx.autoescape else "False"
        self.write(f"environment.joined({markup}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedTemplate(jinja2.Template):
    """A template whose every render runs under the CPU limit and the budget."""

    _stopped: str | None = None
    plain = False  # only text and {{ name }} (compile_template): its render needs no timer

    def render(self, *args: Any, **kwargs: Any) -> str:
        if self.plain:
            return super().render(*args, **kwargs)
        if self._stopped is not None:
            raise TemplateLimitError(f"{self._stopped} (on an earlier render; it is not run again)")
        try:
            return _limited(super().render, *args, **kwargs)
        except TemplateLimitError as exc:
            if _OVERTIME in str(exc):
                self._stopped = str(exc).removeprefix("template stopped: ")
            raise


# ---- the CPU limit ----------------------------------------------------------------------------

_OVERTIME = f"it ran for more than {CPU_S:g} s of CPU time"


def _limited(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` within this render's budget and, in the main thread, ``CPU_S``."""
    token = _BUDGET.set(_Budget())
    try:
        return _timed(fn, args, kwargs)
    except RecursionError:
        raise TemplateLimitError("it nests or recurses deeper than Python allows; simplify it") from None
    except MemoryError:
        raise TemplateLimitError("it ran out of memory; simplify it") from None
    finally:
        _BUDGET.reset(token)


def _timed(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGPROF) if usable else None
    if previous is None:  # off the main thread, no setitimer, or a handler set outside Python: no timer
        return fn(*args, **kwargs)
    state = {"armed": True}

    def expire(signum: int, frame: types.FrameType | None) -> None:
        # never inside this function's own clean-up (its frame is the one interrupted there)
        if state["armed"] and (frame is None or frame.f_code is not _timed.__code__):
            raise _Overtime

    signal.signal(signal.SIGPROF, expire)
    before = signal.setitimer(signal.ITIMER_PROF, CPU_S, 0.05)  # then every 50 ms until disarmed
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            state["armed"] = False
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
            if before[0] > 0:  # someone else's timer was running: it goes on
                signal.setitimer(signal.ITIMER_PROF, *before)
    except _Overtime:
        raise TemplateLimitError(f"{_OVERTIME}, the limit per render; simplify it (nested loops "
                                 "multiply their work)") from None
