"""Conformance suites: the tests every connector capability must pass.

Subclass the suite of each capability your connector has, name the class `Test…`, and
provide the harness fixture it asks for (a small adapter: open the capability against
your fake server, seed records, make the fake throttle or refuse):

| suite | fixture | harness protocol |
|---|---|---|
| `SourceConformance` | `source_harness` | `SourceHarness` |
| `WebhookConformance` | `webhook_harness` | `WebhookHarness` |
| `AudienceSyncConformance` | `audience_harness` | `AudienceHarness` |
| `EmailProviderConformance` | `email_harness` | `EmailHarness` (with `ErrorCase`s) |

The suites use the `recorded_waits` fixture, so retries and Retry-After waits take no
time; they work with pytest-asyncio in strict or auto mode.
"""

from mailwright.testing.conformance.audience import (
    AudienceHarness,
    AudienceSyncConformance,
)
from mailwright.testing.conformance.email import EmailHarness, EmailProviderConformance, ErrorCase
from mailwright.testing.conformance.source import SourceConformance, SourceHarness, pull_all
from mailwright.testing.conformance.webhook import WebhookConformance, WebhookHarness

__all__ = [
    "AudienceHarness",
    "AudienceSyncConformance",
    "EmailHarness",
    "EmailProviderConformance",
    "ErrorCase",
    "SourceConformance",
    "SourceHarness",
    "WebhookConformance",
    "WebhookHarness",
    "pull_all",
]
