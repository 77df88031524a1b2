"""A fake HubSpot on a local port, and the connector configured against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.fake import FakeHubSpot

MakeConfig = Callable[..., HubSpotConfig]


@pytest.fixture
def hubspot() -> FakeHubSpot:
    return FakeHubSpot()


@pytest.fixture
def hubspot_server(hubspot: FakeHubSpot, fake_server: Callable[..., FakeServer]) -> FakeServer:
    return fake_server(hubspot.app())


@pytest.fixture
def make_config(hubspot: FakeHubSpot, request: pytest.FixtureRequest) -> MakeConfig:
    """The connector's configuration for the fake account; keyword arguments override.

    The fake server is started only when the test talks to the API."""

    def make(**overrides: Any) -> HubSpotConfig:
        values: dict[str, Any] = {
            "access_token": hubspot.token,
            "client_secret": hubspot.client_secret,
            "portal_id": hubspot.portal_id,
            "email_id": sorted(hubspot.email_ids)[0],
            "page_size": 7,
            "search_page_size": 5,
        }
        if "base_url" not in overrides:
            server: FakeServer = request.getfixturevalue("hubspot_server")
            values["base_url"] = server.url
        values.update(overrides)
        return load_config("hubspot", HubSpotConfig, values, environ={})

    return make
