"""The segment rule language: its tree, text and protobuf forms, checker and reference
evaluator. Shared by the segment service (membership) and the render service (dynamic
blocks); ``docs/segments.md`` is its manual.

    rule = parse('trait country = "FR" and event "Order Completed" count >= 3 in last 30 days')
    check(rule, taxonomy=taxonomy, traits=traits).raise_for_errors()
    evaluate(rule, person, now)         # the meaning, for one person at one instant
    explain(rule, person, now)          # the tree with each node's value and facts
    next_change(rule, person, now)      # when time alone changes the result
"""

from mailwright.rules.ast import (
    Aggregate,
    And,
    Between,
    Condition,
    DateOperator,
    DidNotPerform,
    EmailAction,
    EventAggregate,
    EventCount,
    EventSpec,
    Ever,
    LastEmailsEngagement,
    LastPeriod,
    Not,
    Operator,
    Or,
    PropertyFilter,
    Rule,
    Scalar,
    SegmentMembership,
    Sequence,
    TraitCondition,
    TraitDateCondition,
    TraitWithinLast,
    Window,
    WindowEngagement,
)
from mailwright.rules.check import (
    CheckResult,
    Diagnostic,
    Severity,
    check,
    check_cycles,
    check_text,
)
from mailwright.rules.errors import (
    InvalidRuleError,
    RuleCheckError,
    RuleError,
    RuleSyntaxError,
    SegmentCycleError,
    Span,
)
from mailwright.rules.explain import Explanation, explain, format_explanation
from mailwright.rules.grammar import ParsedRule, parse, parse_filters, parse_located
from mailwright.rules.person import EmailSend, Event, Person
from mailwright.rules.printer import filters_text, to_text
from mailwright.rules.proto import from_proto, to_proto
from mailwright.rules.reference import evaluate, filters_match
from mailwright.rules.schema import Limits, Taxonomy, TraitSchema, ValueType
from mailwright.rules.timing import change_times, next_change
from mailwright.rules.tree import Path, conditions, depth, segment_references, walk

__all__ = [
    "Aggregate",
    "And",
    "Between",
    "CheckResult",
    "Condition",
    "DateOperator",
    "Diagnostic",
    "DidNotPerform",
    "EmailAction",
    "EmailSend",
    "Event",
    "EventAggregate",
    "EventCount",
    "EventSpec",
    "Ever",
    "Explanation",
    "InvalidRuleError",
    "LastEmailsEngagement",
    "LastPeriod",
    "Limits",
    "Not",
    "Operator",
    "Or",
    "ParsedRule",
    "Path",
    "Person",
    "PropertyFilter",
    "Rule",
    "RuleCheckError",
    "RuleError",
    "RuleSyntaxError",
    "Scalar",
    "SegmentCycleError",
    "SegmentMembership",
    "Sequence",
    "Severity",
    "Span",
    "Taxonomy",
    "TraitCondition",
    "TraitDateCondition",
    "TraitSchema",
    "TraitWithinLast",
    "ValueType",
    "Window",
    "WindowEngagement",
    "change_times",
    "check",
    "check_cycles",
    "check_text",
    "conditions",
    "depth",
    "evaluate",
    "explain",
    "filters_match",
    "filters_text",
    "format_explanation",
    "from_proto",
    "next_change",
    "parse",
    "parse_filters",
    "parse_located",
    "segment_references",
    "to_proto",
    "to_text",
    "walk",
]
