"""What each `{{ … }}` writes: the sandbox's one-call output is Jinja's own escape of
the finalized value, and counts long output against the limits the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup, escape

from mailwright_render.engine import environment
from mailwright_render.errors import RenderLimitExceeded
from mailwright_render.guards import finalize, html_output, text_output
from mailwright_render.sandbox import MissingPolicy
from mailwright_render.scope import RenderLimits, RenderScope, render_scope

_values = st.one_of(
    st.text(max_size=400),
    st.text(max_size=400).map(Markup),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=20), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _scope(limits: RenderLimits | None = None) -> RenderScope:
    return RenderScope(
        limits or RenderLimits(), locale="en", timezone=ZoneInfo("UTC"), now=datetime.now(UTC)
    )


@given(_values)
def test_html_output_is_the_escape_of_the_finalized_value(value: object) -> None:
    with render_scope(_scope()):
        written = html_output(value)
        expected = escape(finalize(value))
    # Written into the stream as the escaped characters (a Markup or a plain string).
    assert written == expected
    assert str(written) == str(expected)


@pytest.mark.parametrize(
    "source",
    [
        "{% set block %}<b>{{ value }}</b>{% endset %}{{ block }}",
        "{% macro m() %}<b>{{ value }}</b>{% endmacro %}{{ m() }}",
        "{% filter upper %}<b>{{ value }}</b>{% endfilter %}",
    ],
)
def test_captured_output_is_escaped_once(source: str) -> None:
    env = environment(True, MissingPolicy.EMPTY)
    with render_scope(_scope()):
        written = env.from_string(source).render(value="<i>&")
    once = written.replace("&LT;I&GT;&AMP;", "&lt;i&gt;&amp;")  # the upper-cased block
    assert "&lt;i&gt;&amp;" in once
    assert "<i>" not in once
    assert "&amp;lt;" not in once


@given(_values)
def test_text_output_is_the_text_of_the_finalized_value(value: object) -> None:
    with render_scope(_scope()):
        assert text_output(value) == str(finalize(value))


@pytest.mark.parametrize("output", [html_output, text_output])
@pytest.mark.parametrize("kind", [str, Markup])
def test_long_output_counts_against_the_expression_output_budget(
    output: object, kind: type
) -> None:
    scope = _scope(RenderLimits(max_output_chars=1000))

    def write_a_lot() -> None:
        for _ in range(20):
            output(kind("x" * 300))  # type: ignore[operator]

    with render_scope(scope), pytest.raises(RenderLimitExceeded) as raised:
        write_a_lot()
    assert raised.value.limit == "output"
    assert scope.emitted > 4 * 1000
