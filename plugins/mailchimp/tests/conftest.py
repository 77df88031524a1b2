"""Fake Mailchimp (Marketing and Transactional) on local ports, and configurations for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright_mailchimp.config import MailchimpConfig, TransactionalConfig
from mailwright_mailchimp.fake import FakeMailchimp
from mailwright_mailchimp.fake_transactional import FakeTransactional

WEBHOOK_SECRET = "hook-secret-0123456789abcdef"
MANDRILL_URL = "https://mailwright.example/webhooks/mailchimp-transactional/acme"


@pytest.fixture
def mailchimp() -> FakeMailchimp:
    return FakeMailchimp()


@pytest.fixture
def mailchimp_server(
    mailchimp: FakeMailchimp, fake_server: Callable[..., FakeServer]
) -> FakeServer:
    return fake_server(mailchimp.app())


@pytest.fixture
def marketing_config(
    mailchimp: FakeMailchimp, request: pytest.FixtureRequest
) -> Callable[..., MailchimpConfig]:
    """The `mailchimp` connector's configuration for the fake; keywords override."""

    def make(**overrides: Any) -> MailchimpConfig:
        values: dict[str, Any] = {
            "api_key": mailchimp.api_key,
            "list_id": mailchimp.list_id,
            "webhook_secret": WEBHOOK_SECRET,
            "batch_poll_interval": "1s",
        }
        if "base_url" not in overrides:
            server: FakeServer = request.getfixturevalue("mailchimp_server")
            values["base_url"] = server.url + "/3.0"
        values.update(overrides)
        return load_config("mailchimp", MailchimpConfig, values, environ={})

    return make


@pytest.fixture
def transactional() -> FakeTransactional:
    return FakeTransactional()


@pytest.fixture
def transactional_server(
    transactional: FakeTransactional, fake_server: Callable[..., FakeServer]
) -> FakeServer:
    return fake_server(transactional.app())


@pytest.fixture
def transactional_config(
    transactional: FakeTransactional, request: pytest.FixtureRequest
) -> Callable[..., TransactionalConfig]:
    def make(**overrides: Any) -> TransactionalConfig:
        values: dict[str, Any] = {
            "api_key": transactional.api_key,
            "webhook_key": transactional.webhook_key,
            "webhook_url": MANDRILL_URL,
        }
        if "base_url" not in overrides:
            server: FakeServer = request.getfixturevalue("transactional_server")
            values["base_url"] = server.url + "/api/1.0"
        values.update(overrides)
        return load_config("mailchimp-transactional", TransactionalConfig, values, environ={})

    return make
