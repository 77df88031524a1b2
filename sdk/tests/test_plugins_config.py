"""Connector configuration: sources and precedence, errors naming the field, secrets kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from mailwright.connectors import (
    CapabilityMissing,
    Connector,
    ConnectorConfig,
    ConnectorConfigError,
    ConnectorRegistry,
    EmailProvider,
    UnknownConnector,
    env_variable,
    load_config,
)

SECRET = "s3cr3t-Value-that-must-not-leak"


class ShopConfig(ConnectorConfig):
    shop: str
    api_secret: SecretStr = Field(min_length=8)
    page_size: int = Field(default=50, ge=1, le=250)
    topics: list[str] = ["orders/create"]


def test_the_variable_of_a_field_is_prefixed_and_upper_cased() -> None:
    assert (
        env_variable("mailchimp-transactional", "api_key")
        == "MAILWRIGHT_CONNECTOR_MAILCHIMP_TRANSACTIONAL_API_KEY"
    )


def test_fields_come_from_the_environment() -> None:
    environ = {
        "MAILWRIGHT_CONNECTOR_SHOP_SHOP": "acme",
        "MAILWRIGHT_CONNECTOR_SHOP_API_SECRET": SECRET,
        "MAILWRIGHT_CONNECTOR_SHOP_PAGE_SIZE": "100",
        "MAILWRIGHT_CONNECTOR_SHOP_TOPICS": '["orders/paid", "customers/create"]',
    }

    config = load_config("shop", ShopConfig, environ=environ)

    assert config.shop == "acme"
    assert config.api_secret.get_secret_value() == SECRET
    assert config.page_size == 100
    assert config.topics == ["orders/paid", "customers/create"]


def test_the_environment_wins_over_the_file_section() -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_PAGE_SIZE": "10"}

    values = {"shop": "acme", "api_secret": SECRET, "page_size": 200}

    config = load_config("shop", ShopConfig, values, environ=environ)

    assert config.page_size == 10


def test_secrets_come_from_a_mounted_secret_directory(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "api_secret").write_text(SECRET + "\n")

    config = load_config("shop", ShopConfig, {"shop": "acme"}, environ={}, secrets_dir=tmp_path)

    assert config.api_secret.get_secret_value() == SECRET


def test_the_secret_directory_is_found_through_its_variable(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "api_secret").write_text(SECRET)
    environ = {"MAILWRIGHT_SECRETS_DIR": str(tmp_path)}

    config = load_config("shop", ShopConfig, {"shop": "acme"}, environ=environ)

    assert config.api_secret.get_secret_value() == SECRET


def test_the_environment_wins_over_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "api_secret").write_text("from-the-file")
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_API_SECRET": SECRET}

    config = load_config(
        "shop", ShopConfig, {"shop": "acme"}, environ=environ, secrets_dir=tmp_path
    )

    assert config.api_secret.get_secret_value() == SECRET


def test_an_oversized_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "api_secret").write_bytes(b"x" * 70_000)

    with pytest.raises(ConnectorConfigError, match="more than 64 KiB"):
        load_config("shop", ShopConfig, {"shop": "acme"}, environ={}, secrets_dir=tmp_path)


def test_a_bad_value_names_the_field_and_its_variable() -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_PAGE_SIZE": "lots"}

    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shop", ShopConfig, {"shop": "acme", "api_secret": SECRET}, environ=environ)

    assert caught.value.field == "page_size"
    assert "page_size (MAILWRIGHT_CONNECTOR_SHOP_PAGE_SIZE)" in str(caught.value)
    assert "connector 'shop'" in str(caught.value)


def test_a_missing_field_says_how_to_set_it() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shop", ShopConfig, {"api_secret": SECRET}, environ={})

    assert caught.value.field == "shop"
    assert "set MAILWRIGHT_CONNECTOR_SHOP_SHOP or 'shop' in the configuration" in str(caught.value)


def test_every_bad_field_is_listed() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shop", ShopConfig, {"page_size": 0}, environ={})

    assert {problem.field for problem in caught.value.problems} == {
        "shop",
        "api_secret",
        "page_size",
    }


def test_an_unknown_field_in_the_file_is_named() -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config(
            "shop", ShopConfig, {"shop": "a", "api_secret": SECRET, "pagesize": 5}, environ={}
        )

    assert caught.value.field == "pagesize"
    assert "unknown field" in str(caught.value)


def test_bad_json_in_a_list_variable_names_the_field() -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_TOPICS": '["orders/paid"'}

    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shop", ShopConfig, {"shop": "a", "api_secret": SECRET}, environ=environ)

    assert caught.value.field == "topics"


def test_a_json_looking_string_stays_a_string() -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_SHOP": '{"not": "json for a str field"}'}

    config = load_config("shop", ShopConfig, {"api_secret": SECRET}, environ=environ)

    assert config.shop == '{"not": "json for a str field"}'


def test_a_secret_never_shows_in_repr_or_str() -> None:
    config = load_config("shop", ShopConfig, {"shop": "a", "api_secret": SECRET}, environ={})

    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in config.model_dump_json()


def test_a_bad_secret_is_not_echoed_in_the_error() -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_API_SECRET": "short!"}

    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shop", ShopConfig, {"shop": "a"}, environ=environ)

    assert caught.value.field == "api_secret"
    assert "short!" not in str(caught.value)
    assert "short!" not in repr(caught.value.problems)


def test_loading_a_configuration_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"MAILWRIGHT_CONNECTOR_SHOP_API_SECRET": SECRET}

    with caplog.at_level(logging.DEBUG):
        load_config("shop", ShopConfig, {"shop": "a"}, environ=environ)

    assert caplog.records  # it does log which fields came from where
    assert SECRET not in caplog.text


class Provider:
    """The smallest thing that is an EmailProvider."""

    max_batch_size = 1

    def __init__(self, config: ShopConfig) -> None:
        self.config = config

    @property
    def rate_limit(self):  # type: ignore[no-untyped-def]
        from mailwright.connectors import RateLimit

        return RateLimit(per_second=1)

    async def send(self, message):  # type: ignore[no-untyped-def]
        return "id"

    async def send_batch(self, messages):  # type: ignore[no-untyped-def]
        return []

    async def aclose(self) -> None:
        pass


def registry_with(connector: Connector[ShopConfig]) -> ConnectorRegistry:
    registry = ConnectorRegistry()
    registry.register(connector)
    return registry


def test_opening_a_connector_validates_its_configuration() -> None:
    registry = registry_with(Connector("shop", ShopConfig, email_provider=Provider))

    with pytest.raises(ConnectorConfigError, match="shop"):
        registry.open_email_provider("shop", {}, environ={})

    provider = registry.open_email_provider("shop", {"shop": "a", "api_secret": SECRET}, environ={})
    assert isinstance(provider, EmailProvider)


def test_opening_a_capability_the_connector_lacks_says_what_it_has() -> None:
    registry = registry_with(Connector("shop", ShopConfig, email_provider=Provider))

    with pytest.raises(CapabilityMissing, match=r"not a source \(it is: email provider\)"):
        registry.open_source("shop", {"shop": "a", "api_secret": SECRET}, environ={})


def test_opening_an_unknown_connector_lists_the_known_ones() -> None:
    registry = registry_with(Connector("shop", ShopConfig, email_provider=Provider))

    with pytest.raises(UnknownConnector, match=r"no connector named 'shopp' \(known: shop\)"):
        registry.open_email_provider("shopp")


def test_a_factory_returning_something_else_is_caught() -> None:
    registry = registry_with(Connector("shop", ShopConfig, email_provider=lambda c: object()))  # type: ignore[arg-type,return-value]

    with pytest.raises(TypeError, match="does not implement EmailProvider"):
        registry.open_email_provider("shop", {"shop": "a", "api_secret": SECRET}, environ={})
