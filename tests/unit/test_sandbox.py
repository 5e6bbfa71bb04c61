"""The bounded sandbox (util/sandbox.py): every way a template from a file could make unbounded
work or memory is stopped before the work is done, in one line naming the limit; ordinary
templates render exactly as in Jinja2's own sandbox."""

from __future__ import annotations

import re
import signal
import threading
import time
import tracemalloc

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from pytest_promstack.util.sandbox import BUDGET, CPU_S, MAX_SIZE, TemplateLimitError, compile_template

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"


def render(text: str, **variables: object) -> str:
    return compile_template(text).render(**variables)


def refused(text: str, **variables: object) -> str:
    with pytest.raises(TemplateLimitError) as info:
        render(text, **variables)
    message = str(info.value)
    assert message.startswith("template stopped: ")
    assert "\n" not in message
    return message


@pytest.mark.parametrize("text", [
    "hello {{ input }}",
    "{% for m in history %}{{ loop.index }}. {{ m.role }}: {{ m.content|trim|upper }}\n{% endfor %}",
    "{{ '%05d|%-4s|' % (3, 'ab') }}{{ '{:>6}|{}'.format('a', 1) }}{{ 'a' ~ input ~ 'b' }}",
    "{{ [1, 2, 3]|join(', ') }} {{ 'x'|center(9) }} {{ 'a\nb'|indent(2, true) }} {{ 'a b c'|wordwrap(3) }}",
    "{{ {'b': 1, 'a': [1, 2]}|tojson(indent=2) }} {{ 'ab'|replace('a', 'xyz') }} {{ [[1], [2]]|sum(start=[]) }}",
    "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ 'x'.ljust(4) }}| {{ 'a,b'.split(',')|join('-') }}",
    "{% set ns = namespace(items=[]) %}{% for x in range(5) %}{{ ns.items.append(x) or '' }}{% endfor %}{{ ns.items }}",
    "{% macro row(x) %}<{{ x }}>{% endmacro %}{% for x in 'abc' %}{{ row(x) }}{% endfor %}{{ input[1:] }}",
])
def test_ordinary_templates_render_as_in_jinjas_sandbox(text):
    variables = {"input": "환불하고 싶어요", "history": [{"role": "user", "content": " 안녕 "}] * 2}
    plain = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(text)
    assert render(text, **variables) == plain.render(**variables)


def test_a_gigabyte_string_is_refused_before_it_is_made():
    before = time.monotonic()
    tracemalloc.start()
    try:
        message = refused("{{ ('x' * 1000000000)|length }}")
        _, peak = tracemalloc.get_traced_memory()  # what this render allocated, whatever ran before in the process
    finally:
        tracemalloc.stop()
    assert message == ("template stopped: str * 1000000000 would make 1,000,000,000 characters, more than the "
                       f"limit of {MAX_SIZE:,}; templates may not build values that large")
    assert time.monotonic() - before < 5  # the work itself would take minutes or gigabytes
    assert peak < 50 * 1024 * 1024  # it would have been a gigabyte


@pytest.mark.parametrize(("text", "names"), [
    ("{{ 2 ** 100000000 }}", "2 ** 100000000 would make 200,000,000 bits, more than the limit of 65,536"),
    ("{{ [0] * 100000000 }}", "list * 100000000 would make 100,000,000 items"),
    ("{{ '%1000000000s' % 'x' }}", "text % values would make"),
    ("{{ '%*s' % (1000000000, 'x') }}", "text % values would make"),
    ("{{ '%1000000000s'|format('x') }}", "filter format would make"),
    ("{{ '{:>1000000000}'.format('x') }}", "format() would make"),
    ("{{ '{0:>{1}}'.format('x', 1000000000) }}", "format() would make"),
    ("{{ '{x:>1000000000}'.format_map({'x': 1}) }}", "format_map() would make"),
    ("{{ 'x'|center(1000000000) }}", "filter center would make 1,000,000,000 characters"),
    ("{{ input|center(1000000000) }}", "filter center would make 1,000,000,000 characters"),
    ("{{ ('a\n' * 1000000)|indent(1000) }}", "filter indent would make"),
    ("{{ ('a ' * 100000)|wordwrap(1, wrapstring='z' * 1000) }}", "filter wordwrap would make"),
    ("{{ range(100000)|join('y' * 1000) }}", "filter join would make"),
    ("{{ range(100000)|map('string')|join('y' * 1000) }}", "filter join would make"),
    ("{{ ('x' * 1000000)|replace('x', 'xxxxxxxxxx') }}", "filter replace would make 10,000,000 characters"),
    ("{{ [1]|tojson(indent=100000) }}", "tojson(indent=100000) would make 100,000 columns of indent, more than the "
                                        "limit of 16"),
    ("{{ ('www.a.co ' * 100000)|urlize(target='t' * 1000) }}", "filter urlize would make"),
    ("{{ ([[1] * 100] * 10000)|sum(start=[]) }}", "sum(start=…) of these values would make"),
    ("{{ range(3)|batch(1000000000, 'x')|list }}", "filter batch would make"),
    ("{{ 'x'.ljust(1000000000) }}", "str.ljust() would make 1,000,000,000 characters"),
    ("{{ 'x'.zfill(1000000000) }}", "str.zfill() would make"),
    ("{{ ('\t' * 1000)|string }}{{ ('\t' * 1000).expandtabs(1000000) }}", "str.expandtabs() would make"),
    ("{{ ('x' * 1000000).translate({120: 'yyyyyyyyyy'}) }}", "str.translate() would make"),
    ("{{ ('y' * 1000).join(range(100000)|map('string')) }}", "str.join() would make"),
    ("{{ (1).to_bytes(1000000000, 'big')|length }}", "int.to_bytes() would make 1,000,000,000"),
    ("{{ lipsum(100000) }}", "lipsum() would make"),
])
def test_operators_filters_and_methods_that_multiply_are_refused_before_the_work(text, names):
    before = time.monotonic()
    assert names in refused(text, input="x")
    assert time.monotonic() - before < 5  # the work itself would take minutes or gigabytes


@pytest.mark.parametrize(("text", "names"), [
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "joining with ~ would make 8,388,608 characters"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     "joining two values with + would make 8,388,608 characters"),
    ("{% set l = [1] %}{% for i in range(40) %}{{ l.extend(l) }}{% endfor %}", "list.extend() would make 8,388,608"),
    ("{% set a = ['x' * 4000000] %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ [b, b, b, b, b, b, b, b] }}",
     "printing a value would make"),
    ("{% set a = ['x' * 4000000] %}{% set b = [a, a, a, a] %}{{ b|string }}", "filter string on a value would make"),
    ("{% set a = ['x' * 4000000] %}{{ ([a] * 100)|join }}", "filter join on a value would make"),
    ("{% set a = ['x' * 4000000] %}{{ 'x' ~ [a, a] }}", "joining with ~ would make"),
    ("{% set a = ['x' * 4000000] %}{{ '%s' % ([a, a],) }}", "text % values would make"),
    ("{% for i in range(100000) %}{{ 'x' * 4000000 }}{% endfor %}", "the rendered text would be more than"),
])
def test_doubling_and_repeated_references_stop_at_the_size_limit(text, names):
    assert names in refused(text)


def test_a_loop_that_keeps_what_it_makes_stops_at_the_budget():
    message = refused("{% set l = [] %}{% for i in range(100000) %}{{ l.append(('x' * 4000000) ~ i) }}{% endfor %}")
    assert message == (f"template stopped: it made more than {BUDGET:,} characters of values in one render (the "
                       "limit per render; a list item counts as 8); simplify it")


def test_recursion_is_a_limit_not_a_crash():
    assert "recurses deeper than Python allows" in refused("{% macro f(s) %}{{ f(s ~ 'x') }}{% endmacro %}{{ f('a') }}")


def test_nested_loops_stop_after_the_cpu_limit_and_fail_at_once_afterwards():
    template = compile_template(NESTED)
    cpu = time.process_time()
    with pytest.raises(TemplateLimitError) as first:
        template.render()
    assert 0.8 * CPU_S <= time.process_time() - cpu < CPU_S + 1  # the timer ticks in jiffies
    assert str(first.value) == (f"template stopped: it ran for more than {CPU_S:g} s of CPU time, the limit per "
                                "render; simplify it (nested loops multiply their work)")
    cpu = time.process_time()
    with pytest.raises(TemplateLimitError, match=r"\(on an earlier render; it is not run again\)$"):
        template.render()
    assert time.process_time() - cpu < 0.2


def test_the_cpu_timer_leaves_the_previous_handler_and_timer_as_they_were():
    calls = []

    def theirs(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGPROF, theirs)
    try:
        signal.setitimer(signal.ITIMER_PROF, 30, 0)
        assert render("{{ input }}", input="x") == "x"
        with pytest.raises(TemplateLimitError):
            render(NESTED)
        assert signal.getsignal(signal.SIGPROF) is theirs
        remaining, interval = signal.getitimer(signal.ITIMER_PROF)
        assert 25 < remaining <= 30.1
        assert interval == 0
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    assert calls == []


def test_without_a_timer_of_ours_sigprof_keeps_its_default_and_nothing_fires_later():
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL
    with pytest.raises(TemplateLimitError):
        render(NESTED)
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_off_the_main_thread_the_size_limits_hold():
    out: list[BaseException | str] = []

    def run():
        try:
            out.append(render("{{ 'x' * 1000000000 }}"))
        except TemplateLimitError as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert isinstance(out[0], TemplateLimitError)
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_a_cpu_bound_constant_at_compile_time_is_stopped_too():
    # constant folding runs filters while compiling: compiling is bounded like rendering
    with pytest.raises(TemplateLimitError):
        compile_template("{{ 'x'|center(1000000000) }}").render()


def test_the_load_filter_reads_json_text_as_data_and_names_text_that_is_not():
    from pytest_promstack.model.errors import TemplateError
    from pytest_promstack.plan.prompts import compile_text, render_text

    template = compile_text("{{ (style | load).tone }}", "p.txt")
    assert render_text(template, {"style": '{"tone": "정중함"}'}, "p.txt") == "정중함"
    with pytest.raises(TemplateError, match=r"p.txt: template error: ValueError: load: the value is not JSON"):
        render_text(template, {"style": "tone=formal"}, "p.txt")


def test_the_dump_filter_writes_json_as_nunjucks_does_and_is_bounded():
    from pytest_promstack.model.errors import TemplateError
    from pytest_promstack.plan.prompts import compile_text, render_text

    template = compile_text("{{ x | dump }}", "p.txt")
    assert render_text(template, {"x": {"답": "환불 <가능>"}}, "p.txt") == '{"답": "환불 <가능>"}'
    with pytest.raises(TemplateError, match=r"p\.txt: .*more than the limit"):
        render_text(template, {"x": ["가" * 100_000] * 100}, "p.txt")  # 10 million characters


@pytest.mark.parametrize(("text", "plain"), [
    ("{{ input }}", True), ("Q: {{ input }}\nA:", True), ("plain text", True), ("{# note #}{{ x }}", True),
    ("{{ input|upper }}", False), ("{{ a.b }}", False), ("{{ a['b'] }}", False), ("{{ a ~ b }}", False),
    ("{{ 'x' }}", False), ("{% for i in xs %}{{ i }}{% endfor %}", False), ("{% if a %}{{ a }}{% endif %}", False),
    ("{{ f() }}", False), ("{% set y = x %}{{ y }}", False),
])
def test_only_text_and_names_render_without_the_cpu_timer_and_keep_their_size_limits(monkeypatch, text, plain):
    # the timer and the budget cost more than writing a variable out (most prompts are such
    # templates, rendered once a case); the compiled template's size checks still apply
    import pytest_promstack.util.sandbox as sandbox

    timed = []
    real = sandbox._timed
    monkeypatch.setattr(sandbox, "_timed", lambda fn, args, kwargs: timed.append(1) or real(fn, args, kwargs))
    template = compile_template(text)
    timed.clear()  # compiling runs under the timer
    values = {"input": "x", "x": "y", "a": {"b": "c"}, "b": "d", "xs": [1], "f": lambda: "g"}
    assert template.render(**values) == SandboxedEnvironment(undefined=jinja2.StrictUndefined).from_string(
        text).render(**values)
    assert timed == ([] if plain else [1])
    if plain and "{{ input }}" in text:
        with pytest.raises(TemplateLimitError, match="rendered text would be more than"):
            template.render(input="a" * (MAX_SIZE + 1))
        with pytest.raises(TemplateLimitError, match="printing a value would make"):
            template.render(input=["a" * 1000] * 10_000)
        with pytest.raises(jinja2.UndefinedError):
            template.render()



@pytest.mark.parametrize("text", [
    "{{ input }}", "질문: {{ input }}\n답: ", "{{input}}{{ x }}", "  {{- input -}}  \n{{ x }}", "a\r\nb {{ input }}",
    "{% raw %}{{ no }}{% endraw %}{{ input }}", "{{{ input }}", "{{ input }}}", "{{ true }}", "{{ range }}",
    "{{ missing }}", "{# c #}{{ input }}", "text only\n", "", "{{\tinput\t}}", "{{ input|upper }}",
])
@pytest.mark.parametrize("value", ["환불하고 싶어요", "", 7, None, ["a"], {"k": "v"}, "a" * (MAX_SIZE + 1)])
def test_templates_render_exactly_as_the_sandbox_does(text, value):
    # text and {{ name }} render without Jinja2 when each value is a text; the output, and the
    # error (a missing name, a size limit), must be the sandbox's own
    from pytest_promstack.model.errors import TemplateError
    from pytest_promstack.plan.templates import Plain, compile_text

    try:
        jinja = compile_template(text)
    except jinja2.TemplateSyntaxError:  # {{{ input }}
        with pytest.raises(TemplateError, match="template syntax error"):
            compile_text(text, "p.txt")
        return
    template = compile_text(text, "p.txt")
    values = {"input": value, "x": "y"}
    try:
        expected = jinja.render(**values)
    except jinja2.TemplateError as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            template.render(**values)
    else:
        assert template.render(**values) == expected
    plain = text in ("{{ input }}", "질문: {{ input }}\n답: ", "{{input}}{{ x }}", "{{ input }}}", "{{ range }}",
                     "{{ missing }}", "text only\n", "", "{{\tinput\t}}")
    assert isinstance(template, Plain) == plain
