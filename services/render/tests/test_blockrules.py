"""Content-block rules: the segment rule language over traits and segment membership."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from mailwright_render import (
    BlockVariant,
    CompileOptions,
    ContentBlock,
    RuleCondition,
    SegmentCondition,
    TemplateInvalid,
)
from mailwright_render.blockrules import BlockRules, check_block_rule, condition_text

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
rules = BlockRules(clock=lambda: NOW)


@pytest.mark.parametrize(
    ("rule", "traits", "segments", "expected"),
    [
        ('trait plan = "gold"', {"plan": "gold"}, set(), True),
        ('trait plan = "gold"', {"plan": "silver"}, set(), False),
        ("trait orders_count >= 3", {"orders_count": 3}, set(), True),
        ('in segment "vip"', {}, {"vip"}, True),
        ('not in segment "vip"', {}, {"vip"}, False),
        ("trait last_purchase_date within last 30 days", {"last_purchase_date": "2024-04-20"},
         set(), True),
        ('trait plan = "gold" and in segment "vip"', {"plan": "gold"}, set(), False),
    ],
)  # fmt: skip
def test_a_rule_holds_for_the_recipients_traits_and_segments(
    rule: str, traits: dict[str, object], segments: set[str], expected: bool
) -> None:
    assert rules(rule, traits, frozenset(segments)) is expected


@pytest.mark.parametrize(
    "rule",
    [
        'event "Order Completed" count >= 3 in last 30 days',
        'trait plan = "gold" and did not perform event "Order Completed" in last 7 days',
        "opened at least 1 of last 3 emails",
    ],
)
def test_a_rule_about_history_is_refused_with_advice_to_use_a_segment(rule: str) -> None:
    with pytest.raises(ValueError, match="put it in a segment"):
        check_block_rule(rule)


def test_a_rule_that_does_not_parse_is_refused_with_its_position() -> None:
    with pytest.raises(ValueError, match="line 1, column"):
        check_block_rule("trait plan = ")


def test_publishing_a_block_with_a_history_rule_fails_naming_the_block(
    kit: SimpleNamespace,
) -> None:
    blocks = (
        ContentBlock(
            "hero",
            (BlockVariant("buyers", "<p>Thanks</p>", RuleCondition('event "Order" count >= 1')),),
        ),
    )
    with pytest.raises(TemplateInvalid) as raised:
        kit.build(
            '{% content_block "hero" %}',
            blocks=blocks,
            options=CompileOptions(rule_check=check_block_rule),
        )
    (issue,) = raised.value.errors
    assert issue.code == "invalid-rule"
    assert issue.part == "block hero/buyers"


def test_a_rendered_rule_block_picks_its_variant(kit: SimpleNamespace) -> None:
    blocks = (
        ContentBlock(
            "hero",
            (BlockVariant("gold", "<p>Gold</p>", RuleCondition('trait plan = "gold"')),),
            default="<p>Everyone</p>",
        ),
    )
    compiled = kit.build(
        '{% content_block "hero" %}',
        blocks=blocks,
        options=CompileOptions(rule_check=check_block_rule),
    )
    assert "<p>Gold</p>" in kit.render(compiled, {"plan": "gold"}, rule_evaluator=rules).html
    assert "<p>Everyone</p>" in kit.render(compiled, {}, rule_evaluator=rules).html


@pytest.mark.parametrize(
    ("condition", "members", "expected"),
    [
        (SegmentCondition(("a", "b"), "any"), {"b"}, True),
        (SegmentCondition(("a", "b"), "all"), {"b"}, False),
        (SegmentCondition(("a", "b"), "all"), {"a", "b"}, True),
        (SegmentCondition(("a", "b"), "none"), {"c"}, True),
        (SegmentCondition(("a",), "none"), {"a"}, False),
    ],
)
def test_a_segment_condition_as_rule_text_means_the_same(
    condition: SegmentCondition, members: set[str], expected: bool
) -> None:
    text = condition_text(condition)
    assert condition.holds(frozenset(members)) is expected
    assert rules(text, {}, frozenset(members)) is expected
