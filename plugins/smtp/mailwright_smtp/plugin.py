"""The plugin module named by the `mailwright` entry point: registers the SMTP connector."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.provider import SmtpEmailProvider
from mailwright_smtp.webhook import SmtpReportWebhook


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name="smtp",
            config_model=SmtpConfig,
            description="Any SMTP relay: STARTTLS or TLS, AUTH, pooled connections, DKIM; "
            "bounce (RFC 3464) and complaint (RFC 5965) reports POSTed as raw email.",
            email_provider=SmtpEmailProvider,
            webhook=SmtpReportWebhook,
        )
    )
