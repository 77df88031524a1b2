"""The one typed settings object of a Mailwright process.

Settings come from `MAILWRIGHT_*` environment variables and, optionally, a YAML file named
by `MAILWRIGHT_CONFIG` (or `--config` on the command line). Environment variables win over
the file. Nested sections use a double underscore: `MAILWRIGHT_INGEST__DEDUP_WINDOW=12h`.
Everything is validated once, at start; a bad value stops start-up with a message that
names the variable (see `load_settings`).
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError

SERVICE_NAMES: tuple[str, ...] = ("ingest", "profile", "segment", "render", "delivery")

SectionT = TypeVar("SectionT", bound=BaseModel)

# The YAML file named on the command line (`--config`), for the settings being built.
_config_file: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mailwright_config_file", default=None
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> object:
    """Accept `90s`, `15m`, `24h`, `7d`, `1w`, `250ms` or a number of seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        if value.strip().replace(".", "", 1).isdigit():
            return timedelta(seconds=float(value))
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 24h or 7d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


class TelemetrySettings(BaseModel):
    """Where traces and metrics go."""

    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = "http://127.0.0.1:4317"
    service_namespace: str = "mailwright"
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class TlsSettings(BaseModel):
    """TLS for the gRPC server (and mTLS when a client CA is given) and for clients."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    ca_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None


class Settings(BaseSettings):
    """Settings shared by every Mailwright process; one instance per process."""

    model_config = SettingsConfigDict(
        env_prefix="MAILWRIGHT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path(".mailwright")
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = ""
    """Base URL of the HTTP edge as recipients see it (tracking, unsubscribe links)."""
    trusted_proxies: CommaList = ["127.0.0.1", "::1"]
    """Addresses and networks (`10.0.0.0/8`) of the reverse proxies in front of the HTTP
    edge. Only a request from one of them is believed about the client's address
    (`X-Forwarded-For`) and scheme (`X-Forwarded-Proto`); anyone else could name any
    address. Empty trusts no one."""

    database_url: str = ""
    """SQLAlchemy URL. `{service}` is replaced by the service name; empty means one SQLite
    file per service under `data_dir`."""
    bus_url: str = "memory://"
    """`memory://` (one process only) or `redis://host:port/db`."""
    kv_url: str = ""
    """Key-value store URL; empty means the same server as the bus."""
    namespace: str = Field(default="mailwright", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """Prefix of every Redis key and stream, so deployments can share a server."""
    bus_partitions: int = Field(default=8, ge=1, le=1024)

    auth_secret: str = ""
    auth_previous_secrets: CommaList = []
    """Earlier auth secrets, still accepted for verification during a rotation."""
    """Key that signs bearer tokens (HS256). Empty: a random key kept in `data_dir`."""
    signing_keys: CommaList = []
    """Keys for tracking and unsubscribe tokens; the first signs, all verify (rotation)."""
    addresses: dict[str, str] = {}
    """gRPC address per service for clients (`MAILWRIGHT_ADDRESSES__PROFILE=host:port`);
    a service not listed is reached at this process's own gRPC port."""

    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    shutdown_grace: Duration = timedelta(seconds=20)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    plugins: CommaList | None = None
    """Names of the plugins to load (`MAILWRIGHT_PLUGINS=smtp,files`); unset loads all."""

    telemetry: TelemetrySettings = TelemetrySettings()
    tls: TlsSettings = TlsSettings()
    services: dict[str, dict[str, Any]] = {}
    """Per-service sections (`MAILWRIGHT_SERVICES__INGEST__DEDUP_WINDOW=12h`), validated by
    each service's own section model."""
    connectors: dict[str, dict[str, Any]] = {}
    """Per-connector configuration from the YAML file (`connectors: {smtp: {host: …}}`),
    validated by each connector's own model when it is opened; secrets are better set as
    `MAILWRIGHT_CONNECTOR_<NAME>_<FIELD>` or in `MAILWRIGHT_SECRETS_DIR`."""

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must start with memory://, redis://, rediss:// or unix://")
        return value

    @field_validator("kv_url")
    @classmethod
    def _known_kv(cls, value: str) -> str:
        if value and not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError("must start with memory://, redis://, rediss:// or unix://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network such as 10.0.0.0/8"
                ) from None
        return value

    @field_validator("addresses")
    @classmethod
    def _known_services(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service {unknown[0]!r}; known: {', '.join(SERVICE_NAMES)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get() or os.environ.get("MAILWRIGHT_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # -- derived values -------------------------------------------------------------

    def database_url_for(self, service: str) -> str:
        if self.database_url:
            return self.database_url.replace("{service}", service)
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    @property
    def effective_kv_url(self) -> str:
        return self.kv_url or self.bus_url

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    def address_of(self, service: str) -> str:
        return self.addresses.get(service, f"{self.grpc_host}:{self.grpc_port}")

    def section(self, service: str, model: type[SectionT]) -> SectionT:
        """This service's own section, validated by its model (errors name the variable)."""
        raw = self.services.get(service, {})
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            raise SettingsError(_describe(error, prefix=f"services.{service}.")) from error


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


def _describe(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    path = prefix + ".".join(str(part) for part in first["loc"])
    variable = "MAILWRIGHT_" + path.upper().replace(".", "__")
    return f"{variable} ({path}): {first['msg']}"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise SettingsError naming the first bad variable."""
    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError(
            f"{unknown[0]}: not a Mailwright setting (misspelt?); see docs/operations.md"
        )
    if config_file is not None and not Path(config_file).is_file():
        raise SettingsError(f"MAILWRIGHT_CONFIG: no such file {config_file}")
    token = _config_file.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from error
    except PydanticSettingsError as error:
        # Raised while decoding a variable (e.g. malformed JSON for a dict setting).
        raise SettingsError(str(error).splitlines()[0]) from error
    finally:
        _config_file.reset(token)


# MAILWRIGHT_* variables that are read elsewhere than the settings object.
NON_SETTING_VARIABLES = ("MAILWRIGHT_CONFIG", "MAILWRIGHT_TOKEN", "MAILWRIGHT_SECRETS_DIR")
NON_SETTING_PREFIXES = ("MAILWRIGHT_TEST_", "MAILWRIGHT_CONNECTOR_")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`MAILWRIGHT_*` variables that name no setting: a misspelling would silently keep
    the default, so start-up refuses them."""
    fields = {name.upper() for name in Settings.model_fields}
    unknown = []
    for variable in sorted(environ):
        if not variable.startswith("MAILWRIGHT_") or variable in NON_SETTING_VARIABLES:
            continue
        if variable.startswith(NON_SETTING_PREFIXES):
            continue
        head = variable.removeprefix("MAILWRIGHT_").split("__", 1)[0]
        if head not in fields:
            unknown.append(variable)
    return unknown
