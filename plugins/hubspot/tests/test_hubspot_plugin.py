"""The plugin loads through its entry point and registers every capability."""

from mailwright.connectors import Capability
from mailwright.plugins import load_plugins


def test_the_entry_point_registers_hubspot_with_its_four_capabilities() -> None:
    plugins = load_plugins(["hubspot"])
    assert not plugins.failures
    assert plugins.connectors.get("hubspot").capabilities == frozenset(Capability)
