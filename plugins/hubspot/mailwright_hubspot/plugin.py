"""The plugin module named by the `mailwright` entry point: registers the HubSpot connector."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_hubspot.audience import HubSpotAudienceSync
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.email import HubSpotEmailProvider
from mailwright_hubspot.source import HubSpotSource
from mailwright_hubspot.webhook import HubSpotWebhook


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name="hubspot",
            config_model=HubSpotConfig,
            description="HubSpot: contacts source, segments as static lists, signed "
            "webhooks (v3, v1/v2), single-send marketing email.",
            source=HubSpotSource,
            webhook=HubSpotWebhook,
            audience_sync=HubSpotAudienceSync,
            email_provider=HubSpotEmailProvider,
        )
    )
