"""Mailchimp merge tags: translated at publish, with Mailchimp's documented semantics."""

from __future__ import annotations

import re
from types import SimpleNamespace

import jinja2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailwright_render import CompileOptions, MergeField, TemplateInvalid
from mailwright_render.mergetags import MergeTagTranslator

CONDITIONAL = (
    "*|IF:MERGE=x|*x-content*|ELSEIF:MERGE=y|*y-content*|ELSEIF:MERGE=z|*z-content"
    "*|ELSE:|*other*|END:IF|*"
)


def text(
    kit: SimpleNamespace, template: str, traits: dict[str, object] | None = None, **kw: object
) -> str:
    compiled = kit.build(f"<p>{template}</p>", **kw)
    return str(kit.render(compiled, traits or {}).text).strip()


def test_a_field_tag_shows_the_mapped_trait(kit: SimpleNamespace) -> None:
    assert (
        text(kit, "Dear *|FNAME|* *|LNAME|*", {"first_name": "Ann", "last_name": "Lee"})
        == "Dear Ann Lee"
    )


def test_a_missing_tag_renders_empty(kit: SimpleNamespace) -> None:
    assert text(kit, "Dear *|FNAME|*!") == "Dear !"


def test_the_workspace_table_maps_tags_and_defaults(kit: SimpleNamespace) -> None:
    options = CompileOptions(merge_fields={"FNAME": MergeField("given_name", default="friend")})
    assert text(kit, "Hi *|FNAME|*", {"given_name": "Bo"}, options=options) == "Hi Bo"
    assert text(kit, "Hi *|FNAME|*", {}, options=options) == "Hi friend"


def test_unmapped_tags_read_the_lowercase_trait(kit: SimpleNamespace) -> None:
    assert text(kit, "*|ORDER_ID|*", {"order_id": "A-1"}) == "A-1"


def test_email_is_the_recipient_address(kit: SimpleNamespace) -> None:
    assert text(kit, "*|EMAIL|*") == "ann@example.com"


@pytest.mark.parametrize(
    ("merge", "expected"),
    [("x", "x-content"), ("y", "y-content"), ("z", "z-content"), ("w", "other"), (None, "other")],
)
def test_elseif_chain_from_the_documentation(
    kit: SimpleNamespace, merge: str | None, expected: str
) -> None:
    traits = {} if merge is None else {"merge": merge}
    assert text(kit, CONDITIONAL, traits) == expected


@pytest.mark.parametrize(
    ("template", "traits", "expected"),
    [
        ("*|IF:MERGE|*yes*|END:IF|*", {"merge": "v"}, "yes"),
        ("*|IF:MERGE|*yes*|END:IF|*", {"merge": ""}, ""),
        ("*|IF:MERGE|*yes*|END:IF|*", {}, ""),
        ("*|IF:MERGE|*yes*|ELSE:|*no*|END:IF|*", {}, "no"),
        ("*|IFNOT:MERGE|*absent*|ELSE:|*present*|END:IF|*", {}, "absent"),
        ("*|IFNOT:MERGE|*absent*|ELSE:|*present*|END:IF|*", {"merge": 1}, "present"),
        ("*|IF:MERGE!=x|*not x*|ELSE:|*x*|END:IF|*", {"merge": "y"}, "not x"),
        ("*|IF:MERGE!=x|*not x*|ELSE:|*x*|END:IF|*", {"merge": "x"}, "x"),
        ("*|IF:MERGE!=x|*not x*|ELSE:|*missing is false*|END:IF|*", {}, "missing is false"),
        ("*|IF:PURCHASE_FREQUENCY>3|*loyal*|END:IF|*", {"purchase_frequency": 4}, "loyal"),
        ("*|IF:PURCHASE_FREQUENCY>3|*loyal*|END:IF|*", {"purchase_frequency": "10"}, "loyal"),
        ("*|IF:PURCHASE_FREQUENCY>3|*loyal*|END:IF|*", {"purchase_frequency": 3}, ""),
        ("*|IF:SCORE>=3.5|*a*|END:IF|*", {"score": "3.5"}, "a"),
        ("*|IF:SCORE<=3|*a*|END:IF|*", {"score": 2}, "a"),
        ("*|IF:SCORE<3|*a*|END:IF|*", {"score": 3}, ""),
        ("*|IF:SCORE>3|*a*|END:IF|*", {"score": "lots"}, ""),
        ("*|IF:JOINED<2024-01-01|*early*|END:IF|*", {"joined": "2023-06-30"}, "early"),
        ("*|IF:JOINED<2024-01-01|*early*|END:IF|*", {"joined": "2024-06-30"}, ""),
        ("*|IF:CITY=New York|*ny*|END:IF|*", {"city": "New York"}, "ny"),
        ('*|IF:CITY="New York"|*ny*|END:IF|*', {"city": "New York"}, "ny"),
        ("*|IF:PLAN=pro|*pro*|END:IF|*", {"plan": "Pro"}, ""),
    ],
)
def test_conditions(
    kit: SimpleNamespace, template: str, traits: dict[str, object], expected: str
) -> None:
    assert text(kit, template, traits) == expected


def test_conditions_nest(kit: SimpleNamespace) -> None:
    template = "*|IF:MERGE1=x|**|IF:MERGE2=y|*both*|ELSE:|*first*|END:IF|**|END:IF|*"
    assert text(kit, template, {"merge1": "x", "merge2": "y"}) == "both"
    assert text(kit, template, {"merge1": "x"}) == "first"
    assert text(kit, template, {"merge2": "y"}) == ""


def test_dialects_mix(kit: SimpleNamespace) -> None:
    template = "*|IF:VIP|*{% for item in items %}{{ item }}*|FNAME|* {% endfor %}*|END:IF|*"
    assert text(kit, template, {"vip": True, "first_name": "!", "items": ["a", "b"]}) == "a! b!"


def test_merge_tags_inside_jinja_are_left_alone(kit: SimpleNamespace) -> None:
    assert text(kit, "{{ '*|FNAME|*' }}", {"first_name": "Ann"}) == "*|FNAME|*"


def test_encoding_tags(kit: SimpleNamespace) -> None:
    traits = {"first_name": "ann marie", "city": "a b&c"}
    assert (
        text(kit, "*|UPPER:FNAME|* *|TITLE:FNAME|* *|URL:CITY|*", traits)
        == "ANN MARIE Ann Marie a%20b%26c"
    )


def test_date_tags_use_php_letters_in_the_recipients_zone(kit: SimpleNamespace) -> None:
    compiled = kit.build("<p>*|DATE:d/m/Y|* *|DATE:F j, Y|* *|CURRENT_YEAR|*</p>")
    rendered = kit.render(compiled, recipient_fields={"timezone": "Pacific/Kiritimati"})
    assert rendered.text.strip() == "02/05/2024 May 2, 2024 2024"


def test_system_tags(kit: SimpleNamespace) -> None:
    compiled = kit.build(
        "<p>*|MC:SUBJECT|*|*|MC_PREVIEW_TEXT|*|*|LIST:ADDRESSLINE|*|*|LIST:COMPANY|*</p>",
        preheader=(kit.source().subject[0].__class__("p", "Pre"),),
        subject="Sub",
    )
    rendered = kit.render(compiled)
    assert rendered.text.strip() == "Sub|Pre|1 Main Street, Springfield 12345|Shop Inc"


def test_list_address_keeps_its_lines_in_html(kit: SimpleNamespace) -> None:
    rendered = kit.render(kit.build("<p>*|LIST:ADDRESS|*</p>"))
    assert "1 Main Street<br>Springfield 12345" in rendered.html


@pytest.mark.parametrize(
    ("template", "line", "column", "message"),
    [
        ("ok\n  *|END:IF|*", 2, 3, "without an open"),
        ("*|IF:A|*\n*|ELSE:|**|ELSE:|**|END:IF|*", 2, 10, "second *|ELSE:|*"),
        ("*|IF:A|**|ELSE:|**|ELSEIF:B|**|END:IF|*", 1, 18, "after *|ELSE:|*"),
        ("x *|IF:A|* never closed", 1, 3, "never closed"),
        ("*|ELSEIF:A=1|*", 1, 1, "without an open"),
        ("*|IF:|*", 1, 1, "malformed condition"),
        ("*|IF|*", 1, 1, "needs a condition"),
        ("*|IF:A=|**|END:IF|*", 1, 1, "compares with nothing"),
        ("a\nb *|FOO:BAR|*", 2, 3, "unknown or malformed"),
        ("*|FIRST NAME|*", 1, 1, "unknown or malformed"),
        ("*|INTERESTED:Group:Interest|*", 1, 1, "not supported"),
    ],
)
def test_malformed_blocks_are_reported_where_they_are(
    template: str, line: int, column: int, message: str
) -> None:
    issues = MergeTagTranslator().translate(template, "html").issues
    assert issues, template
    assert (issues[0].line, issues[0].column) == (line, column)
    assert message in issues[0].message


def test_publishing_refuses_unbalanced_blocks(kit: SimpleNamespace) -> None:
    with pytest.raises(TemplateInvalid, match="never closed"):
        kit.build("<p>*|IF:VIP|*vip</p>")


def test_jinja_errors_are_reported_at_the_authors_column_despite_translation(
    kit: SimpleNamespace,
) -> None:
    with pytest.raises(TemplateInvalid) as invalid:
        kit.build("*|FNAME|* *|LNAME|* {{ a|nosuchfilter }}")
    issue = invalid.value.errors[0]
    assert (issue.code, issue.line, issue.column) == ("unknown-filter", 1, 25)


def test_trait_values_never_become_template_code(kit: SimpleNamespace) -> None:
    traits = {"first_name": "{{ 7*7 }} {% if true %}x{% endif %} *|LNAME|*", "last_name": "L"}
    assert text(kit, "*|FNAME|*", traits) == "{{ 7*7 }} {% if true %}x{% endif %} *|LNAME|*"


_GENERATED = re.compile(
    r"\{\{ __mw_tag\(\d+\) \}\}"
    r"|\{% (?:if (?:not )?|elif )__mw_if\(\d+\) %\}"
    r"|\{% else %\}|\{% endif %\}"
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=80))
def test_translation_only_emits_fixed_code(body: str) -> None:
    """Whatever sits between *| and |*, the output is the input or fixed, index-only code."""
    template = f"*|{body}|*"
    translation = MergeTagTranslator().translate(template, "html")
    if translation.issues or translation.source == template:
        return
    assert _GENERATED.sub("", translation.source) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40).filter(lambda v: "|*" not in v and "\n" not in v and "\r" not in v))
@example("{%")
@example("{{")
@example("{#")
@example("}}")
def test_comparison_values_are_data_not_code(value: str) -> None:
    translator = MergeTagTranslator()
    source = f"*|IF:PLAN={value}|*a*|END:IF|*"
    translation = translator.translate(source, "html")
    if translation.issues:
        return
    if translation.source == source:
        # The value opens a Jinja construct that never closes (`{%`): the merge tags are
        # inside it, so left alone, and Jinja refuses the whole source; nothing runs.
        with pytest.raises(jinja2.TemplateSyntaxError):
            jinja2.Environment().parse(source)
        return
    assert translation.source == "{% if __mw_if(0) %}a{% endif %}"
    assert translator.tables.conditions[0].value is not None
