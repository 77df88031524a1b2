"""The plugin module named by the `mailwright` entry point: registers the SMTP connector."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.provider import SmtpEmailProvider


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name="smtp",
            config_model=SmtpConfig,
            description="Any SMTP relay: STARTTLS or TLS, AUTH, pooled connections, DKIM.",
            email_provider=SmtpEmailProvider,
        )
    )
