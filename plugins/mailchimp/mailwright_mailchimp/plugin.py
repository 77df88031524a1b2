"""The plugin module named by the `mailwright` entry point: registers the two Mailchimp
connectors, `mailchimp` (Marketing API) and `mailchimp-transactional` (Mandrill)."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_mailchimp.audience import MailchimpAudienceSync
from mailwright_mailchimp.config import (
    MARKETING,
    TRANSACTIONAL,
    MailchimpConfig,
    TransactionalConfig,
)
from mailwright_mailchimp.transactional import TransactionalEmailProvider
from mailwright_mailchimp.transactional_webhook import TransactionalWebhook
from mailwright_mailchimp.webhook import MailchimpWebhook


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name=MARKETING,
            config_model=MailchimpConfig,
            description="Mailchimp Marketing: segments as tags on an audience, merge fields, "
            "batch operations; audience webhooks (secret URL).",
            audience_sync=MailchimpAudienceSync,
            webhook=MailchimpWebhook,
        )
    )
    registry.register(
        Connector(
            name=TRANSACTIONAL,
            config_model=TransactionalConfig,
            description="Mailchimp Transactional (Mandrill): sends, reject reasons, "
            "delivery webhooks signed with X-Mandrill-Signature.",
            email_provider=TransactionalEmailProvider,
            webhook=TransactionalWebhook,
        )
    )
