"""Validation at publish: positions, schema, fallbacks, size, links, compliance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mailwright_render import (
    CompileOptions,
    Issue,
    Severity,
    TemplateInvalid,
    TemplateKind,
    TemplateSource,
    Variant,
    validate_template,
)


def issues(
    kit: SimpleNamespace, html: str, options: CompileOptions | None = None, **fields: object
) -> list[Issue]:
    return list(validate_template(kit.source(html, **fields), options))


def codes(found: list[Issue]) -> list[str]:
    return [issue.code for issue in found]


@pytest.mark.parametrize(
    ("html", "code", "line", "column"),
    [
        ("<p>\n  {{ name }</p>", "syntax", 2, 11),
        ("<p>{% for x in y %}\n{{ x }}</p>", "syntax", 1, 4),
        ("<p>ok</p>\n<p>{% endif %}</p>", "syntax", 2, 4),
        ("<p>{% frobnicate %}</p>", "syntax", 1, 4),
        ("<p>\n\n   {{ price|nosuch }}</p>", "unknown-filter", 3, 12),
        ("<p>{{ x is nosuchtest }}</p>", "syntax", 1, 9),
        ("<p>{{ a ! b }}</p>", "syntax", 1, 9),
        ("<p>{{ user.__class__ }}</p>", "unsafe-attribute", 1, 12),
        ("<p>{{ __mw_tag(0) }}</p>", "reserved-name", 1, 7),
        ("<p>{{ shout('x') }}</p>", "unknown-function", 1, 7),
    ],
)
def test_syntax_errors_point_at_line_and_column(
    kit: SimpleNamespace, html: str, code: str, line: int, column: int
) -> None:
    found = issues(kit, html)
    assert (found[0].code, found[0].line, found[0].column) == (code, line, column), found[0]
    assert found[0].severity is Severity.ERROR


def test_every_part_is_checked_and_named(kit: SimpleNamespace) -> None:
    source = TemplateSource(
        name="t",
        subject=(Variant("a", "ok"), Variant("b", "{{ broken")),
        preheader=(Variant("p", "{% if %}"),),
        html="<p>x</p>",
        text="{{ also broken",
        kind=TemplateKind.TRANSACTIONAL,
    )
    assert {issue.part for issue in validate_template(source)} == {
        "subject[b]",
        "preheader[p]",
        "text",
    }


def test_structural_mistakes_name_the_field() -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        TemplateSource(name="t", subject=(), html="<p/>", mjml="<mjml/>")
    assert {issue.part for issue in invalid.value.issues} == {"html", "subject"}


def test_unknown_traits_follow_the_workspace_policy(kit: SimpleNamespace) -> None:
    html = "<p>{{ first_name|default('x') }} {{ shoe_size|default(1) }} *|PLAN|*</p>"
    known = frozenset({"first_name"})
    warned = issues(kit, html, CompileOptions(known_traits=known))
    assert [(i.code, i.severity) for i in warned] == [
        ("unknown-variable", Severity.WARNING),
        ("unknown-variable", Severity.WARNING),
    ]
    with pytest.raises(TemplateInvalid, match="shoe_size"):
        kit.build(html, CompileOptions(known_traits=known, unknown_trait=Severity.ERROR))


def test_platform_names_and_locals_are_not_traits(kit: SimpleNamespace) -> None:
    html = (
        "{% set greeting = 'hi' %}{% for p in content.items %}{{ p }}{% endfor %}"
        "{{ greeting }} {{ profile.id }} {{ send.id }} {{ now() }} {{ unsubscribe_url }}"
        "{% macro m(arg) %}{{ arg }}{% endmacro %}{{ m(1) }} {{ contact.email }}"
    )
    assert issues(kit, html, CompileOptions(known_traits=frozenset())) == []


def test_hubspot_tokens_are_checked_against_mapped_traits(kit: SimpleNamespace) -> None:
    found = issues(kit, "<p>{{ contact.firstname }} {{ contact.shoe }}</p>", CompileOptions(
        known_traits=frozenset({"first_name"}), unknown_trait=Severity.ERROR
    ))  # fmt: skip
    assert [(i.code, i.message.split("'")[1]) for i in found] == [
        ("missing-fallback", "contact.firstname"),
        ("unknown-variable", "contact.shoe"),
    ]


@pytest.mark.parametrize(
    ("html", "warned"),
    [
        ("<p>{{ first_name }}</p>", True),
        ("<p>{{ first_name|default('there') }}</p>", False),
        ("<p>{{ first_name|d('there') }}</p>", False),
        ("<p>{% if first_name %}{{ first_name }}{% endif %}</p>", False),
        ("<p>{{ first_name if first_name is defined else 'x' }}</p>", False),
        ("<p>{% if vip %}{{ first_name }}{% endif %}</p>", True),
        ("<p>{{ email }}</p>", False),
    ],
)
def test_missing_fallbacks_are_warned(kit: SimpleNamespace, html: str, warned: bool) -> None:
    found = [
        i for i in issues(kit, html) if i.code == "missing-fallback" and "first_name" in i.message
    ]
    assert bool(found) is warned
    assert all(i.severity is Severity.WARNING for i in found)


def test_merge_tags_without_a_default_are_warned_where_they_are(kit: SimpleNamespace) -> None:
    found = issues(kit, "<p>\n  Hi *|FNAME|*</p>")
    assert [(i.code, i.line, i.column) for i in found] == [("missing-fallback", 2, 6)]


def test_html_beyond_gmail_clipping_is_warned(kit: SimpleNamespace) -> None:
    found = issues(kit, "<p>" + "x" * 110_000 + "</p>")
    assert codes(found) == ["gmail-clipping"]


@pytest.mark.parametrize(
    ("href", "problem"),
    [
        ("", "empty href"),
        ("javascript:alert(1)", "script"),
        ("/relative/path", "absolute"),
        ("https://", "not a valid URL"),
        ("https://exa mple.com/", "not a valid URL"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_broken_links_are_warned(kit: SimpleNamespace, href: str, problem: str) -> None:
    found = issues(kit, f'<p>\n<a href="{href}">x</a></p>')
    assert codes(found) == ["broken-link"]
    assert problem in found[0].message
    assert found[0].line == 2


def test_good_links_are_not_warned(kit: SimpleNamespace) -> None:
    html = (
        '<a href="https://a.example/x?y=1">a</a><a href="mailto:a@b.example">b</a>'
        '<a href="#x">c</a>'
    )
    assert issues(kit, html) == []


MARKETING = {"kind": TemplateKind.MARKETING}


def test_marketing_mail_needs_an_unsubscribe_link_and_an_address(kit: SimpleNamespace) -> None:
    found = issues(kit, "<p>Buy!</p>", **MARKETING)
    assert codes(found) == ["missing-unsubscribe", "missing-postal-address"]
    with pytest.raises(TemplateInvalid):
        kit.build("<p>Buy!</p>", **MARKETING)


@pytest.mark.parametrize(
    "footer",
    [
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}',
        '<a href="*|UNSUB|*">Unsubscribe</a> *|LIST:ADDRESS|*',
        '<a href="{{ unsubscribe_link }}">Stop</a> *|HTML:LIST_ADDRESS_HTML|*',
        '<a href="{{ unsubscribe_url }}"><img src="u.png" alt="Unsubscribe"></a>'
        " *|LIST:ADDRESSLINE|*",
    ],
)
def test_compliant_footers_publish(kit: SimpleNamespace, footer: str) -> None:
    assert issues(kit, f"<p>Buy!</p><p>{footer}</p>", **MARKETING) == []


@pytest.mark.parametrize(
    "footer",
    [
        '<div style="display:none"><a href="{{ unsubscribe_url }}">Unsubscribe</a></div>',
        '<a href="{{ unsubscribe_url }}" style="visibility: hidden">Unsubscribe</a>',
        '<a href="{{ unsubscribe_url }}"></a>',
        '<p hidden><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        '<style>.x{display:none}</style><p class="x"><a href="{{ unsubscribe_url }}">U</a></p>',
    ],
)
def test_a_hidden_or_empty_unsubscribe_link_does_not_count(
    kit: SimpleNamespace, footer: str
) -> None:
    found = issues(kit, f"<p>{{{{ sender.address }}}}</p>{footer}", **MARKETING)
    assert codes(found) == ["missing-unsubscribe"]


def test_the_literal_postal_address_counts(kit: SimpleNamespace) -> None:
    html = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> Shop Inc, 1 Main Street</p>'
    options = CompileOptions(postal_address="1 Main Street\nSpringfield")
    assert issues(kit, html, options, **MARKETING) == []


def test_an_authored_text_part_needs_the_unsubscribe_link_too(kit: SimpleNamespace) -> None:
    html = f"<p>Buy!</p>{kit.FOOTER}"
    found = issues(kit, html, text="Buy!", **MARKETING)
    assert [(i.code, i.part, i.severity) for i in found] == [
        ("missing-unsubscribe", "text", Severity.ERROR),
        ("missing-postal-address", "text", Severity.WARNING),
    ]
    assert (
        issues(kit, html, text="Buy! {{ unsubscribe_url }} {{ sender.address }}", **MARKETING) == []
    )


def test_transactional_mail_is_exempt(kit: SimpleNamespace) -> None:
    assert issues(kit, "<p>Your receipt</p>") == []


def test_validation_reports_everything_at_once(kit: SimpleNamespace) -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build("<p>{{ a }</p>", subject="{{ b", text="{% if %}")
    assert len(invalid.value.errors) == 3
