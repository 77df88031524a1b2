"""The sandbox: known Jinja2 escapes fail, budgets hold, data never becomes markup or code."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from mailwright_render import (
    MissingPolicy,
    RenderError,
    RenderLimitExceeded,
    RenderLimits,
    SandboxViolation,
    TemplateInvalid,
)
from mailwright_render.engine import environment
from mailwright_render.render import _run
from mailwright_render.scope import RenderScope, render_scope

LIMITS = RenderLimits(max_seconds=2.0)


def run(
    template: str, limits: RenderLimits = LIMITS, *, html: bool = True, **context: object
) -> str:
    """Render straight through the sandbox, bypassing the publish-time checks."""
    env = environment(html, MissingPolicy.EMPTY)
    compiled = env.from_string(template)
    scope = RenderScope(limits, locale="en", timezone=ZoneInfo("UTC"), now=datetime.now(UTC))
    namespace = {**env.globals, **context}
    with render_scope(scope):
        return _run(compiled, namespace, scope, "html")


SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ range.__globals__ }}",
    "{{ x|attr('__class__') }}",
    "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ x['__class__'] }}",
    "{{ (x ~ '')['__len__'] }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ 'a'.format_map({}) }}",
    "{% set f = 'a'.format %}{{ f }}",
    "{{ ''.__class__.mro() }}",
    "{{ request.application.__globals__ }}",
    "{{ dict.mro() }}",
    "{{ [].append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ x.real.__class__ }}",
]


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_known_escapes_fail_at_render(payload: str) -> None:
    request = SimpleNamespace(application=lambda: None)
    with pytest.raises((SandboxViolation, RenderError)):
        run(payload, x=1, request=request)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ x['__globals__'] }}",
        "{{ 'x'.format(1) }}",
        "{{ x.mro }}",
        "{{ '%s' % x }}",
        "{% include 'secrets.html' %}",
        "{% import 'macros.html' as m %}",
        "{% extends 'base.html' %}",
        "{{ x|format(1) }}",
        "{{ lipsum(5) }}",
    ],
)
def test_escapes_are_refused_at_publish(kit: SimpleNamespace, payload: str) -> None:
    with pytest.raises(TemplateInvalid) as refused:
        kit.build(f"<p>{payload}</p>")
    assert refused.value.errors[0].line == 1


def test_lipsum_is_not_available() -> None:
    with pytest.raises(RenderError, match="lipsum"):
        run("{{ lipsum() }}")


def test_str_format_is_refused_even_on_markup() -> None:
    with pytest.raises(SandboxViolation, match="format"):
        run("{{ ('<b>{}</b>'|safe).format(x) }}", x=1)


def test_printf_formatting_is_refused() -> None:
    with pytest.raises(SandboxViolation, match="printf"):
        run("{{ fmt % 1 }}", fmt="%999999999d")


def test_numeric_modulo_still_works() -> None:
    assert run("{{ 7 % 3 }}") == "1"


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        ("{{ 'x' * 10**9 }}", "output"),
        ("{{ [1] * 10**9 }}", "output"),
        ("{{ 10 ** 100000 }}", "output"),
        ("{{ 'x'|center(1000000000) }}", "output"),
        ("{{ 'x'|indent(1000000000, true) }}", "output"),
        ("{{ 'abc'|replace('', 'y' * 1000000) }}", "output"),
        ("{{ 'a'|wordwrap(1, wrapstring='y' * 1000000) }}", "output"),
        ("{{ range(10000)|map('string')|join('y' * 1000000) }}", "output"),
        ("{{ ''.join(['ab' * 1000] * 2000) }}", "output"),
        ("{{ [1]|batch(100000, 'x') }}", "range"),
        ("{% for i in range(100000) %}{% endfor %}", "range"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
         "operations|time"),
        ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
         "operations|time"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
        ("{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}", "output"),
        ("{% set x = [1] %}" + "{% set x = [x, x] %}" * 60 + "{{ x|length }}", "output"),
        ("{% set x = 'ab' %}" + "{% set x %}{{ x }}{{ x }}{% endset %}" * 40 + "{{ x }}", "output"),
        ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}", "output"),
        ("{% set x = 'ab' * 500000 %}{% set y %}{% for i in range(9000) %}{{ x }}{% endfor %}"
         "{% endset %}", "output"),
        ("{% for i in range(5000) %}" + "y" * 1000 + "{% endfor %}", "output"),
    ],
)  # fmt: skip
def test_bombs_stop_at_a_limit(template: str, limit: str) -> None:
    with pytest.raises(RenderLimitExceeded) as stopped:
        run(template)
    # Which of two budgets runs out first can depend on the machine's speed.
    assert stopped.value.limit in limit.split("|")


def test_wall_clock_limit_stops_a_slow_render() -> None:
    slow = "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}"
    limits = RenderLimits(max_seconds=0.05, max_operations=10**9, max_output_chars=10**9)
    with pytest.raises(RenderLimitExceeded) as stopped:
        run(slow, limits)
    assert stopped.value.limit == "time"


def test_ordinary_templates_stay_well_inside_the_budget() -> None:
    template = (
        "{% for p in products %}{{ loop.index }}. {{ p.name|title }} {{ p.price|money('EUR') }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    products = [{"name": f"shoe {i}", "price": "9.5"} for i in range(3)]
    assert run(template, products=products) == "1. Shoe 0 €9.50, 2. Shoe 1 €9.50, 3. Shoe 2 €9.50"


def test_a_trait_named_like_a_method_is_the_trait() -> None:
    assert run("{{ t.items }}-{{ t.keys }}", t={"items": "I", "keys": "K"}) == "I-K"


def test_allowed_methods_work() -> None:
    assert run("{{ 'A b'.lower().split()|join(',') }} {{ d.get('a') }}", d={"a": 1}) == "a,b 1"


def test_missing_values_render_empty_and_false() -> None:
    assert run("[{{ nope }}][{{ nope.deeper.still }}][{% if nope %}x{% endif %}]") == "[][][]"


def test_none_renders_empty() -> None:
    assert run("[{{ value }}]", value=None) == "[]"


def test_strict_policy_names_the_missing_variable() -> None:
    env = environment(True, MissingPolicy.ERROR)
    compiled = env.from_string("{{ first_name }}")
    scope = RenderScope(LIMITS, locale="en", timezone=ZoneInfo("UTC"), now=datetime.now(UTC))
    with render_scope(scope), pytest.raises(RenderError, match="first_name"):
        _run(compiled, dict(env.globals), scope, "html")


def test_rendering_outside_a_scope_is_refused() -> None:
    compiled = environment(True, MissingPolicy.EMPTY).from_string("{% for i in [1] %}{% endfor %}")
    with pytest.raises(RuntimeError, match="render_scope"):
        compiled.render()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_trait_string_renders_literally_and_escaped(value: str) -> None:
    assert run("{{ value }}", value=value) == str(escape(value))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="{}%#*|'\" ()x7", max_size=60))
def test_template_syntax_in_data_never_runs(value: str) -> None:
    assert run("{{ value }}", html=False, value=value) == value


NESTED = "{% for a in xs %}{% for b in xs %}.{% endfor %}{% endfor %}"


@pytest.mark.parametrize("kind", [list, tuple])
def test_every_iteration_over_short_sequences_counts(kind: type) -> None:
    items = kind(range(40))
    # 40 outer and 1,600 inner iterations.
    assert run(NESTED, RenderLimits(max_operations=2000), xs=items) == "." * 1600
    with pytest.raises(RenderLimitExceeded) as raised:
        run(NESTED, RenderLimits(max_operations=1639), xs=items)
    assert raised.value.limit == "operations"


def test_long_sequences_and_other_iterables_count_as_they_go() -> None:
    template = "{% for x in xs %}{% if loop.index > 3 %}{% break %}{% endif %}{{ x }}{% endfor %}"
    for items in (list(range(10_000)), iter(range(10_000)), dict.fromkeys(range(100))):
        assert run(template, RenderLimits(max_operations=10), xs=items) == "012"
