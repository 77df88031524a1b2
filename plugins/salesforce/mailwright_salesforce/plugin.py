"""The plugin module named by the `mailwright` entry point: registers the Salesforce connector."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_salesforce.audience import SalesforceAudienceSync
from mailwright_salesforce.config import NAME, SalesforceConfig
from mailwright_salesforce.source import SalesforceSource


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name=NAME,
            config_model=SalesforceConfig,
            description="Salesforce: contacts and leads by SOQL (SystemModstamp), segments as "
            "campaigns with contacts upserted by external id (single, Composite, Bulk API 2.0).",
            source=SalesforceSource,
            audience_sync=SalesforceAudienceSync,
        )
    )
