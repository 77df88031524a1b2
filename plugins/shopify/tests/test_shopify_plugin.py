"""The plugin loads through its entry point and registers its source and webhook."""

from mailwright.connectors import Capability
from mailwright.plugins import load_plugins


def test_the_entry_point_registers_shopify_as_a_source_and_a_webhook() -> None:
    plugins = load_plugins(["shopify"])
    assert not plugins.failures
    assert plugins.connectors.get("shopify").capabilities == {
        Capability.SOURCE,
        Capability.WEBHOOK,
    }
