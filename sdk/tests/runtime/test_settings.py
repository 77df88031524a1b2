"""Settings are typed, read from the environment and YAML, and name what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mailwright.runtime.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILWRIGHT_CONFIG", raising=False)
    settings = load_settings()
    assert settings.grpc_port == 50051
    assert settings.http_port == 8080
    assert settings.bus_url == "memory://"
    assert settings.database_url_for("profile").endswith(".mailwright/profile.db")


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_GRPC_PORT", "6000")
    monkeypatch.setenv("MAILWRIGHT_SHUTDOWN_GRACE", "45s")
    monkeypatch.setenv("MAILWRIGHT_ADDRESSES__PROFILE", "profile:50051")
    monkeypatch.setenv("MAILWRIGHT_PLUGINS", "smtp, files")
    settings = load_settings()
    assert settings.grpc_port == 6000
    assert settings.shutdown_grace == timedelta(seconds=45)
    assert settings.address_of("profile") == "profile:50051"
    assert settings.plugins == ["smtp", "files"]


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_GRPC_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="MAILWRIGHT_GRPC_PORT"):
        load_settings()


def test_an_unknown_bus_scheme_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_BUS_URL", "kafka://broker:9092")
    with pytest.raises(SettingsError, match="MAILWRIGHT_BUS_URL"):
        load_settings()


def test_yaml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mailwright.yaml"
    config.write_text("grpc_port: 7000\nhttp_port: 7001\ntelemetry:\n  exporter: console\n")
    monkeypatch.setenv("MAILWRIGHT_HTTP_PORT", "9000")
    settings = load_settings(config)
    assert settings.grpc_port == 7000
    assert settings.http_port == 9000
    assert settings.telemetry.exporter == "console"


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings(tmp_path / "absent.yaml")


def test_database_url_template_takes_the_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_DATABASE_URL", "postgresql+psycopg://db/mw_{service}")
    assert load_settings().database_url_for("segment") == "postgresql+psycopg://db/mw_segment"


def test_a_service_section_is_validated_by_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import BaseModel

    class IngestSection(BaseModel):
        batch_limit: int = 1000

    monkeypatch.setenv("MAILWRIGHT_SERVICES__INGEST__BATCH_LIMIT", "many")
    with pytest.raises(SettingsError, match="MAILWRIGHT_SERVICES__INGEST__BATCH_LIMIT"):
        load_settings().section("ingest", IngestSection)


def test_a_misspelt_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_GRCP_PORT", "6000")
    with pytest.raises(SettingsError, match="MAILWRIGHT_GRCP_PORT"):
        load_settings()


def test_variables_read_elsewhere_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_TOKEN", "t")
    monkeypatch.setenv("MAILWRIGHT_CONNECTOR_SHOPIFY_API_SECRET", "s")
    assert load_settings().grpc_port == 50051


def test_malformed_json_in_a_dict_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_ADDRESSES", "{not json")
    with pytest.raises(SettingsError, match="addresses"):
        load_settings()


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "::1"]
    monkeypatch.setenv("MAILWRIGHT_TRUSTED_PROXIES", "10.0.0.0/8,ingress")
    with pytest.raises(SettingsError, match="MAILWRIGHT_TRUSTED_PROXIES"):
        load_settings()
