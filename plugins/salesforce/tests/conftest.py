"""A fake Salesforce org on a local port, and the connector configured against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright_salesforce.config import SalesforceConfig
from mailwright_salesforce.fake import FakeSalesforce


@pytest.fixture
def salesforce() -> FakeSalesforce:
    return FakeSalesforce()


@pytest.fixture
def salesforce_server(
    salesforce: FakeSalesforce, fake_server: Callable[..., FakeServer]
) -> FakeServer:
    return fake_server(salesforce.app())


@pytest.fixture
def salesforce_config(
    salesforce: FakeSalesforce, salesforce_server: FakeServer
) -> Callable[..., SalesforceConfig]:
    def make(**overrides: Any) -> SalesforceConfig:
        values: dict[str, Any] = {
            "login_url": salesforce_server.url,
            "client_id": salesforce.client_id,
            "client_secret": salesforce.client_secret,
            "page_size": 200,
            "bulk_poll_interval": "2s",
        }
        values.update(overrides)
        return load_config("salesforce", SalesforceConfig, values, environ={})

    return make
