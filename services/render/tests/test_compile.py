"""Publishing: MJML, CSS inlined once, content blocks, Jinja kept intact through HTML tools."""

from __future__ import annotations

from types import SimpleNamespace

import css_inline
import pytest

from mailwright_render import (
    BlockVariant,
    CompiledTemplate,
    ContentBlock,
    RuleCondition,
    SegmentCondition,
    TemplateInvalid,
)

STYLED = """<html><head><style>
.cta { color: #c00; font-weight: bold; }
@media (max-width: 600px) { .cta { font-size: 18px; } }
</style></head><body>
<p class="cta">Hi {{ first_name|default("there") }}</p>
<table>{% for item in items %}<tr><td class="cta">{{ item }}</td></tr>{% endfor %}</table>
</body></html>"""

MJML = """<mjml>
  <mj-head><mj-style>.brand { color: #0a0; }</mj-style></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text css-class="brand">Hello {{ first_name|default("there") }} *|LNAME|*</mj-text>
      {% if items %}<mj-raw><p>{{ items|length }} items</p></mj-raw>{% endif %}
      <mj-button href="https://shop.example/?u={{ first_name|urlencode }}">Shop</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""


def test_css_is_inlined_at_publish(kit: SimpleNamespace) -> None:
    compiled = kit.build(STYLED)
    assert 'class="cta" style="color: #c00;font-weight: bold;"' in compiled.html
    assert "@media (max-width: 600px)" in compiled.html


def test_rendering_never_inlines_css(kit: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = kit.build(STYLED)

    def refuse(*_: object) -> str:
        raise AssertionError("CSS inlining ran at render time")

    monkeypatch.setattr(css_inline.CSSInliner, "inline", refuse)
    renderer = kit.renderer()
    for name in ("Ann", "Bo", "Cy"):
        rendered = renderer.render(
            compiled,
            kit.recipient({"first_name": name, "items": [1, 2]}),
            kit.delivery(),
            kit.SENDER,
        )
        assert f'style="color: #c00;font-weight: bold;">Hi {name}</p>' in rendered.html


def test_loops_survive_inlining_inside_tables(kit: SimpleNamespace) -> None:
    rendered = kit.render(kit.build(STYLED), {"items": ["a", "b", "c"]})
    assert rendered.html.count('<td class="cta" style="color: #c00;font-weight: bold;">') == 3


def test_mjml_compiles_to_responsive_html(kit: SimpleNamespace) -> None:
    compiled = kit.build(None, mjml=MJML)
    rendered = kit.render(compiled, {"first_name": "Ann", "last_name": "Lee", "items": [1, 2]})
    assert "<!doctype html>" in rendered.html.lower()
    assert "@media only screen" in rendered.html
    assert "Hello Ann Lee" in rendered.html
    assert "2 items</p>" in rendered.html
    assert "https://shop.example/?u=Ann" in rendered.html
    assert "color: #0a0" in rendered.html


def test_mjml_includes_are_refused(kit: SimpleNamespace) -> None:
    with pytest.raises(TemplateInvalid, match="MJML"):
        kit.build(None, mjml='<mjml><mj-body><mj-include path="/etc/passwd" /></mj-body></mjml>')


def test_invalid_mjml_is_an_error(kit: SimpleNamespace) -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build(None, mjml="<mjml><mj-body><mj-section>")
    assert invalid.value.errors[0].code == "mjml"


@pytest.mark.parametrize(
    ("html", "code", "column"),
    [
        ('<a {% if x %}class="y"{% endif %} href="#">x</a>', "jinja-placement", 4),
        ("<style>{% if x %}p{}{% endif %}</style>", "jinja-placement", 8),
        ("<script>var a = {{ x }};</script>", "jinja-placement", 17),
    ],
)
def test_jinja_where_html_tools_cannot_keep_it_is_refused(
    kit: SimpleNamespace, html: str, code: str, column: int
) -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build(html)
    issue = invalid.value.errors[0]
    assert (issue.code, issue.line, issue.column) == (code, 1, column)


def test_jinja_in_attribute_values_titles_and_conditional_comments_is_kept(
    kit: SimpleNamespace,
) -> None:
    html = (
        "<html><head><title>{{ subject }}</title><style>p{color:red}</style></head><body>"
        '<!--[if mso]><table width="{{ width }}"><![endif]-->'
        '<p class="{% if vip %}gold{% else %}plain{% endif %}">x</p></body></html>'
    )
    rendered = kit.render(kit.build(html, subject="S"), {"vip": True, "width": 600})
    assert "<title>S</title>" in rendered.html
    assert '<table width="600">' in rendered.html
    assert 'class="gold"' in rendered.html


BLOCKS = (
    ContentBlock(
        "hero",
        (
            BlockVariant("vip", "<p>VIP {{ first_name }}</p>", SegmentCondition(("seg_vip",))),
            BlockVariant("lapsed", "<p>We miss you</p>", RuleCondition("days_since_order > 90")),
            BlockVariant("new", "<p>Welcome</p>", SegmentCondition(("seg_new", "seg_trial"))),
        ),
        default="<p>Hello</p>",
    ),
)


def _evaluate(rule: str, traits: object, segments: frozenset[str]) -> bool:
    assert rule == "days_since_order > 90"
    return bool(getattr(traits, "get", lambda _: 0)("days_since_order", 0) > 90)


@pytest.mark.parametrize(
    ("segments", "traits", "expected"),
    [
        ({"seg_vip", "seg_new"}, {"first_name": "Ann"}, "VIP Ann"),
        ({"seg_new"}, {"days_since_order": 120}, "We miss you"),
        ({"seg_trial"}, {}, "Welcome"),
        (set(), {}, "Hello"),
    ],
)
def test_blocks_show_the_first_matching_variant(
    kit: SimpleNamespace, segments: set[str], traits: dict[str, object], expected: str
) -> None:
    compiled = kit.build('<div>{% content_block "hero" %}</div>', blocks=BLOCKS)
    rendered = kit.render(
        compiled,
        traits,
        recipient_fields={"segments": frozenset(segments)},
        rule_evaluator=_evaluate,
    )
    assert f"<p>{expected}</p>" in rendered.html
    assert rendered.text.strip() == expected


@pytest.mark.parametrize(
    ("segments", "traits", "chosen"),
    [({"seg_vip"}, {}, "vip"), ({"seg_trial"}, {}, "new"), (set(), {}, "")],
)
def test_the_rendered_email_names_the_variant_each_block_showed(
    kit: SimpleNamespace, segments: set[str], traits: dict[str, object], chosen: str
) -> None:
    compiled = kit.build('<div>{% content_block "hero" %}</div>', blocks=BLOCKS)
    rendered = kit.render(
        compiled,
        traits,
        recipient_fields={"segments": frozenset(segments)},
        rule_evaluator=_evaluate,
    )
    assert rendered.block_variants == (("hero", chosen),)


def test_a_rule_block_without_an_evaluator_fails_the_render(kit: SimpleNamespace) -> None:
    from mailwright_render import RenderError

    compiled = kit.build('{% content_block "hero" %}', blocks=BLOCKS)
    with pytest.raises(RenderError, match="rule evaluator"):
        kit.render(compiled, {})


def test_an_unknown_block_is_reported_where_it_is_placed(kit: SimpleNamespace) -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build('<p>a</p>\n  {% content_block "nope" %}', blocks=BLOCKS)
    issue = invalid.value.errors[0]
    assert (issue.code, issue.line, issue.column) == ("unknown-block", 2, 3)


def test_block_syntax_errors_name_the_block_and_variant(kit: SimpleNamespace) -> None:
    broken = (ContentBlock("promo", (), default="<p>{{ oops( }}</p>"),)
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build('{% content_block "promo" %}', blocks=broken)
    assert invalid.value.errors[0].part == "block promo/default"


def test_rule_text_is_checked_at_publish_when_a_checker_is_given(kit: SimpleNamespace) -> None:
    from mailwright_render import CompileOptions

    def check(rule: str) -> None:
        raise ValueError(f"cannot parse {rule!r}")

    with pytest.raises(TemplateInvalid, match="cannot parse"):
        kit.build(
            '{% content_block "hero" %}', blocks=BLOCKS, options=CompileOptions(rule_check=check)
        )


def test_the_compiled_template_round_trips_through_json(kit: SimpleNamespace) -> None:
    compiled = kit.build(
        '<div>{% content_block "hero" %} *|FNAME|* <a href="https://x.example">x</a></div>',
        blocks=BLOCKS,
    )
    loaded = CompiledTemplate.from_json(compiled.to_json())
    assert loaded == compiled
    assert loaded.digest == compiled.digest


def test_a_tampered_artefact_is_refused(kit: SimpleNamespace) -> None:
    document = kit.build("<p>x</p>").to_json().replace("<p>x</p>", "<p>y</p>")
    with pytest.raises(ValueError, match="digest"):
        CompiledTemplate.from_json(document)


def test_compilation_is_deterministic(kit: SimpleNamespace) -> None:
    assert kit.build(STYLED).digest == kit.build(STYLED).digest


def test_the_render_cache_compiles_jinja_once_per_version(kit: SimpleNamespace) -> None:
    renderer = kit.renderer()
    first, second = kit.build("<p>{{ a }}</p>"), kit.build("<p>{{ b }}</p>")
    for compiled in (first, second, first, first, second):
        renderer.render(compiled, kit.recipient(), kit.delivery(), kit.SENDER)
    assert (renderer.cache.misses, renderer.cache.hits) == (2, 3)
