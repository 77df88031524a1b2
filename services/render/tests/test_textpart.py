"""The text part: generated from the HTML at publish, links kept, or authored."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mailwright_render import TemplateInvalid
from mailwright_render.textpart import TextWriter, tidy

NEWSLETTER = """<html><head><title>Ignored</title><style>p { margin: 0 }</style></head><body>
<div style="display:none">hidden preview text</div>
<h1>Hello   {{ first_name|default("there") }}</h1>
<p>Line one<br>line two</p>
<ul>{% for item in items %}<li>{{ item.name }} &amp; more</li>{% endfor %}</ul>
<table><tr><td>left</td><td>right</td></tr></table>
<p><a href="https://shop.example/sale">Shop the sale</a>
<a href="https://shop.example/">https://shop.example/</a>
<a href="https://shop.example/x"><img src="x.png" alt="Pictured offer"></a></p>
<hr>
<p>{% if vip %}VIP{% else %}Regular{% endif %} member</p>
</body></html>"""


def test_the_text_part_follows_the_html(kit: SimpleNamespace) -> None:
    traits = {"first_name": "Ann", "items": [{"name": "Shoe"}, {"name": "Hat"}], "vip": True}
    text = kit.render(kit.build(NEWSLETTER), traits).text
    assert text == (
        "Hello Ann\n\n"
        "Line one\nline two\n\n"
        "- Shoe & more\n- Hat & more\n"
        "left right\n\n"
        "Shop the sale (https://shop.example/sale) https://shop.example/ "
        "Pictured offer (https://shop.example/x)\n\n"
        "----------\n\n"
        "VIP member\n"
    )


def test_loops_and_conditions_keep_their_logic_in_text(kit: SimpleNamespace) -> None:
    text = kit.render(kit.build(NEWSLETTER), {"items": [], "vip": False}).text
    assert "- " not in text
    assert "Regular member" in text


def test_text_is_not_html_escaped(kit: SimpleNamespace) -> None:
    rendered = kit.render(kit.build("<p>{{ name }}</p>"), {"name": "Tom & <Jerry>"})
    assert rendered.text == "Tom & <Jerry>\n"
    assert "Tom &amp; &lt;Jerry&gt;" in rendered.html


def test_an_authored_text_part_is_used_and_its_links_tracked(kit: SimpleNamespace) -> None:
    compiled = kit.build(
        "<p>HTML</p>", text="Hi {{ first_name }}, see https://shop.example/a?x=1 now.\n"
    )
    rendered = kit.render(compiled, {"first_name": "Ann"}, tracking=True)
    assert rendered.text.startswith("Hi Ann, see https://t.example/t/c/")
    assert rendered.text.endswith(" now.\n")


def test_a_block_opened_in_an_href_must_close_in_it(kit: SimpleNamespace) -> None:
    html = (
        '<p>\n<a href="{% if x %}https://a.example">A</a>'
        '{% else %}https://b.example">B</a>{% endif %}'
    )
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build(html)
    issue = invalid.value.errors[0]
    assert (issue.code, issue.line, issue.column) == ("jinja-placement", 2, 10)


def test_conditional_hrefs_that_close_inside_are_tracked(kit: SimpleNamespace) -> None:
    compiled = kit.build(
        '<a href="{% if x %}https://a.example{% else %}https://b.example{% endif %}">L</a>'
    )
    rendered = kit.render(compiled, {"x": False}, tracking=True)
    assert "https://t.example/t/c/" in rendered.html


def test_writer_collapses_whitespace_and_breaks_blocks() -> None:
    writer = TextWriter()
    writer.words("  a \n b ")
    writer.block(2)
    writer.zero_width("{% if x %}")
    writer.words(" c")
    assert writer.result() == "a b\n\n{% if x %}c"
    writer.block(1)
    writer.zero_width("{% endif %}", closes=True)
    writer.words("d")
    assert writer.result().endswith("c{% endif %}\nd")


def test_tidy_keeps_at_most_one_blank_line() -> None:
    assert tidy("\n\na\n\n\n\nb\n\n") == "a\n\nb\n"
