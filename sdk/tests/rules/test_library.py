"""The shipped segment library parses, checks clean against its taxonomy and has no cycles;
definition files with mistakes are refused with the field named."""

import pytest

from mailwright.rules import check, check_cycles, parse, to_text
from mailwright.rules.library import (
    DefinitionError,
    builtin_segments,
    builtin_taxonomy,
    load_definitions,
)

CASE_STUDY = {
    "loyal-buyers",
    "casual-browsers",
    "inactive",
    "cart-abandoners",
    "browse-abandoners",
    "repeat-buyers",
    "content-engagers",
}


def test_the_library_has_the_case_study_segments() -> None:
    ids = {s.id for s in builtin_segments()}
    assert ids >= CASE_STUDY


def test_every_library_rule_checks_clean_against_the_library_taxonomy() -> None:
    segments = builtin_segments()
    taxonomy, traits = builtin_taxonomy()
    ids = {s.id for s in segments}
    for segment in segments:
        result = check(segment.rule, taxonomy=taxonomy, traits=traits, segments=ids)
        assert result.diagnostics == (), (segment.id, [str(d) for d in result.diagnostics])


def test_library_segments_refer_to_each_other_without_cycles() -> None:
    rules = {s.id: s.rule for s in builtin_segments()}
    for segment_id in rules:
        check_cycles(segment_id, rules.get)


def test_every_library_rule_round_trips_through_the_printer() -> None:
    for segment in builtin_segments():
        assert parse(to_text(segment.rule)) == segment.rule
        assert segment.name
        assert segment.description


def definitions(body: str) -> str:
    return "version: 1\nsegments:\n" + body


def test_a_syntax_error_names_the_segment_and_the_position_in_its_rule() -> None:
    text = definitions("  - id: a\n    name: A\n    rule: event Order\n")
    with pytest.raises(DefinitionError) as info:
        load_definitions(text)
    assert info.value.field == "segments[0].rule"
    assert "line 1, column 7" in info.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("  - id: Bad_Id\n    name: A\n    rule: trait x = 1\n", "segments[0].id"),
        ("  - id: a\n    rule: trait x = 1\n", "segments[0].name"),
        ("  - id: a\n    name: A\n", "segments[0].rule"),
        ("  - id: a\n    name: A\n    rule: trait x = 1\n    colour: red\n", "segments[0]"),
        (
            "  - {id: a, name: A, rule: trait x = 1}\n  - {id: a, name: B, rule: trait x = 2}\n",
            "segments[1].id",
        ),
    ],
)
def test_malformed_definitions_name_the_field(body: str, field: str) -> None:
    with pytest.raises(DefinitionError) as info:
        load_definitions(definitions(body))
    assert info.value.field == field


def test_a_file_that_is_not_yaml_or_not_a_segment_list_is_refused() -> None:
    with pytest.raises(DefinitionError, match="not valid YAML"):
        load_definitions("segments: [")
    with pytest.raises(DefinitionError) as info:
        load_definitions("- a\n- b\n")
    assert info.value.field == "segments"
    with pytest.raises(DefinitionError) as info:
        load_definitions("version: 2\nsegments: []\n")
    assert info.value.field == "version"
