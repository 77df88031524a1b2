"""The SMTP connector's configuration, through the plugin as services open it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailwright.connectors import ConnectorConfigError, EmailProvider
from mailwright.plugins import load_plugins
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.provider import SmtpEmailProvider


def open_smtp(values: dict[str, Any], environ: dict[str, str] | None = None) -> EmailProvider:
    connectors = load_plugins(["smtp"]).connectors
    return connectors.open_email_provider("smtp", values, environ=environ or {})


def config_error(values: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    with pytest.raises(ConnectorConfigError) as caught:
        open_smtp(values, environ)
    return caught.value


def test_the_plugin_opens_an_smtp_provider_from_the_environment() -> None:
    environ = {
        "MAILWRIGHT_CONNECTOR_SMTP_HOST": "smtp.relay.example",
        "MAILWRIGHT_CONNECTOR_SMTP_SECURITY": "tls",
        "MAILWRIGHT_CONNECTOR_SMTP_POOL_SIZE": "3",
        "MAILWRIGHT_CONNECTOR_SMTP_IDLE_TIMEOUT": "45s",
    }

    provider = open_smtp({}, environ)

    assert isinstance(provider, SmtpEmailProvider)
    assert provider.config.effective_port == 465
    assert provider.config.idle_timeout.total_seconds() == 45
    assert provider.rate_limit.concurrency == 3


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_the_default_port_follows_the_security(security: str, port: int) -> None:
    assert SmtpConfig(host="relay", security=security).effective_port == port  # type: ignore[arg-type]


def test_an_unknown_security_names_the_field() -> None:
    error = config_error({"host": "relay", "security": "ssl"})

    assert error.field == "security"
    assert "'starttls', 'tls' or 'none'" in str(error)


def test_a_username_without_password_names_the_password() -> None:
    error = config_error({"host": "relay", "username": "shop"})

    assert error.field == "password"
    assert "required when username is set" in str(error)


def test_dkim_without_a_selector_names_the_selector(dkim_keys: Any) -> None:
    error = config_error(
        {"host": "relay", "dkim_domain": "shop.example", "dkim_private_key": dkim_keys.private_pem}
    )

    assert error.field == "dkim_selector"


def test_an_unusable_dkim_key_is_refused_without_being_quoted() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    error = config_error(
        {"host": "relay", "dkim_domain": "d.example", "dkim_selector": "s", "dkim_private_key": key}
    )

    assert error.field == "dkim_private_key"
    assert "not an unencrypted PEM private key" in str(error)
    assert "bm90IGEga2V5" not in str(error)


def test_the_dkim_key_can_come_from_a_mounted_secret(tmp_path: Path, dkim_keys: Any) -> None:
    (tmp_path / "smtp").mkdir()
    (tmp_path / "smtp" / "dkim_private_key").write_text(dkim_keys.private_pem)
    connectors = load_plugins(["smtp"]).connectors

    provider = connectors.open_email_provider(
        "smtp",
        {"host": "relay", "dkim_domain": "shop.example", "dkim_selector": "s1"},
        environ={},
        secrets_dir=tmp_path,
    )

    assert isinstance(provider, SmtpEmailProvider)
    assert provider.config.dkim_enabled
    assert dkim_keys.private_pem not in repr(provider.config)


def test_a_missing_key_file_names_the_field(tmp_path: Path) -> None:
    error = config_error(
        {
            "host": "relay",
            "dkim_domain": "d.example",
            "dkim_selector": "s",
            "dkim_private_key_file": str(tmp_path / "absent.pem"),
        }
    )

    assert error.field == "dkim_private_key_file"
    assert "no such file" in str(error)


def test_signed_headers_must_include_from() -> None:
    error = config_error({"host": "relay", "dkim_headers": ["to", "subject"]})

    assert error.field == "dkim_headers"


def test_the_password_does_not_show_in_the_configuration() -> None:
    config = SmtpConfig(host="relay", username="shop", password="hunter2-relay")  # type: ignore[arg-type]

    assert "hunter2-relay" not in repr(config)
    assert "hunter2-relay" not in str(config)
