"""The connector contract: what a plugin registers, and what crosses each capability.

- `Connector`, `ConnectorRegistry` — registration and opening by name (`registry`);
- `ConnectorConfig`, `load_config`, `ConnectorConfigError` — configuration and secrets
  (`config`);
- the four capability protocols and their frozen dataclasses: `Source` / `SourceBatch`
  (`source`), `Webhook` / `WebhookRequest` / `WebhookDelivery` / `Headers` (`webhook`),
  `AudienceSync` / `AudienceChange` / `AudienceMember` / `SyncResult` (`audience_sync`),
  `EmailProvider` / `OutboundMessage` / `SendOutcome` (`email_provider`), `RateLimit`;
- the errors: `ProviderError` with its `ErrorKind`, `WebhookRejected` with its
  `RejectReason` (`errors`).

`docs/plugins.md` walks through them.
"""

from mailwright.connectors.audience_sync import (
    AudienceChange,
    AudienceMember,
    AudienceSync,
    MemberFailure,
    SyncResult,
)
from mailwright.connectors.capability import Capability, RateLimit
from mailwright.connectors.config import (
    ConfigProblem,
    ConnectorConfig,
    ConnectorConfigError,
    env_variable,
    field_error,
    load_config,
)
from mailwright.connectors.email_provider import EmailProvider, OutboundMessage, SendOutcome
from mailwright.connectors.errors import (
    CapabilityMissing,
    ConnectorError,
    DuplicateConnector,
    ErrorKind,
    ProviderError,
    RejectReason,
    UnknownConnector,
    WebhookRejected,
    redact,
)
from mailwright.connectors.registry import Connector, ConnectorRegistry
from mailwright.connectors.source import Source, SourceBatch
from mailwright.connectors.webhook import Headers, Webhook, WebhookDelivery, WebhookRequest

__all__ = [
    "AudienceChange",
    "AudienceMember",
    "AudienceSync",
    "Capability",
    "CapabilityMissing",
    "ConfigProblem",
    "Connector",
    "ConnectorConfig",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorRegistry",
    "DuplicateConnector",
    "EmailProvider",
    "ErrorKind",
    "Headers",
    "MemberFailure",
    "OutboundMessage",
    "ProviderError",
    "RateLimit",
    "RejectReason",
    "SendOutcome",
    "Source",
    "SourceBatch",
    "SyncResult",
    "UnknownConnector",
    "Webhook",
    "WebhookDelivery",
    "WebhookRejected",
    "WebhookRequest",
    "env_variable",
    "field_error",
    "load_config",
    "redact",
]
