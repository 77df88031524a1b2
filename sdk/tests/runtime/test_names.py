"""Resource names parse strictly and name the field when they are wrong."""

from __future__ import annotations

import pytest

from mailwright.errors import InvalidArgument
from mailwright.names import parse, parse_workspace, resource_name, workspace_prefix


def test_a_nested_name_parses_into_its_parts() -> None:
    name = parse("workspaces/acme/templates/welcome/versions/3", "name", "templates", "versions")
    assert name.workspace == "acme"
    assert name.parts == (("templates", "welcome"), ("versions", "3"))
    assert name.id == "3"
    assert str(name) == "workspaces/acme/templates/welcome/versions/3"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "acme",
        "workspaces/",
        "workspaces/Acme",
        "workspaces/acme/segments/x",
        "workspaces/acme/profiles/../../etc",
        "workspaces/acme/profiles/a b",
    ],
)
def test_malformed_names_are_invalid_arguments_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(bad, "name", "profiles")
    assert caught.value.violations[0].field == "name"


def test_parse_workspace_reads_the_parent() -> None:
    assert parse_workspace("workspaces/acme") == "acme"


def test_resource_name_builds_names() -> None:
    assert resource_name("acme", "profiles", "p1") == "workspaces/acme/profiles/p1"


def test_workspace_prefix_finds_the_workspace_of_any_name() -> None:
    assert workspace_prefix("workspaces/acme/segments/vip") == "acme"
    assert workspace_prefix("segments/vip") is None
