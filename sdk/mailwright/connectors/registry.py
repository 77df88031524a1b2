"""Connectors and the registry plugins put them in.

A plugin registers `Connector`s from its `mailwright_register_connectors(registry)` hook.
A connector is a name, a configuration model and one factory per capability it has; the
factories take the validated configuration and return the capability object. Services
open what they need by name:

    provider = plugins.connectors.open_email_provider("smtp", settings.connectors.get("smtp"))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from mailwright.connectors.audience_sync import AudienceSync
from mailwright.connectors.capability import Capability
from mailwright.connectors.config import load_config
from mailwright.connectors.email_provider import EmailProvider
from mailwright.connectors.errors import CapabilityMissing, DuplicateConnector, UnknownConnector
from mailwright.connectors.source import Source
from mailwright.connectors.webhook import Webhook
from mailwright.registry import Registry, check_name

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class Connector(Generic[ConfigT]):
    """A named integration: its configuration model and a factory per capability.

    The capabilities are the factories given: `Connector("shopify", ShopifyConfig,
    source=ShopifySource, webhook=ShopifyWebhook)` is a source and a webhook. Each factory
    is called with the validated configuration (typically the capability class itself).
    """

    name: str
    config_model: type[ConfigT]
    description: str = ""
    source: Callable[[ConfigT], Source] | None = None
    webhook: Callable[[ConfigT], Webhook] | None = None
    audience_sync: Callable[[ConfigT], AudienceSync] | None = None
    email_provider: Callable[[ConfigT], EmailProvider] | None = None

    def __post_init__(self) -> None:
        check_name("connector", self.name)
        if not (isinstance(self.config_model, type) and issubclass(self.config_model, BaseModel)):
            raise TypeError(f"connector {self.name!r}: config_model must be a pydantic model")
        if not self.capabilities:
            raise ValueError(f"connector {self.name!r} has no capability (give a factory)")

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(
            capability for capability in Capability if getattr(self, capability.value) is not None
        )

    def configure(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> ConfigT:
        """This connector's validated configuration (see `mailwright.connectors.config`)."""
        return load_config(
            self.name, self.config_model, values, environ=environ, secrets_dir=secrets_dir
        )


class ConnectorRegistry(Registry[Connector[Any]]):
    """The connectors of this process, by name, each with the plugin that registered it."""

    kind = "connector"
    unknown_error = UnknownConnector
    duplicate_error = DuplicateConnector

    def name_of(self, entry: Connector[Any]) -> str:
        return entry.name

    def validate(self, entry: Connector[Any]) -> None:
        if not isinstance(entry, Connector):
            raise TypeError(f"register() takes a Connector, got {type(entry).__name__}")

    def with_capability(self, capability: Capability) -> list[Connector[Any]]:
        return [connector for connector in self if capability in connector.capabilities]

    def configure(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> BaseModel:
        """Validate `name`'s configuration without opening anything (start-up checks)."""
        config: BaseModel = self.get(name).configure(
            values, environ=environ, secrets_dir=secrets_dir
        )
        return config

    def open_source(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> Source:
        """Configure connector `name` and open its source."""
        opened = self._open(name, Capability.SOURCE, values, environ, secrets_dir)
        if not isinstance(opened, Source):
            raise _not_implemented(name, Capability.SOURCE, opened, "Source")
        return opened

    def open_webhook(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> Webhook:
        """Configure connector `name` and open its webhook verifier."""
        opened = self._open(name, Capability.WEBHOOK, values, environ, secrets_dir)
        if not isinstance(opened, Webhook):
            raise _not_implemented(name, Capability.WEBHOOK, opened, "Webhook")
        return opened

    def open_audience_sync(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> AudienceSync:
        """Configure connector `name` and open its audience sync."""
        opened = self._open(name, Capability.AUDIENCE_SYNC, values, environ, secrets_dir)
        if not isinstance(opened, AudienceSync):
            raise _not_implemented(name, Capability.AUDIENCE_SYNC, opened, "AudienceSync")
        return opened

    def open_email_provider(
        self,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> EmailProvider:
        """Configure connector `name` and open its email provider."""
        opened = self._open(name, Capability.EMAIL_PROVIDER, values, environ, secrets_dir)
        if not isinstance(opened, EmailProvider):
            raise _not_implemented(name, Capability.EMAIL_PROVIDER, opened, "EmailProvider")
        return opened

    def _open(
        self,
        name: str,
        capability: Capability,
        values: Mapping[str, Any] | None,
        environ: Mapping[str, str] | None,
        secrets_dir: Path | None,
    ) -> object:
        connector = self.get(name)
        factory: Callable[[Any], object] | None = getattr(connector, capability.value)
        if factory is None:
            has = ", ".join(sorted(c.label for c in connector.capabilities))
            raise CapabilityMissing(
                f"connector {name!r} is not a {capability.label} (it is: {has})"
            )
        config = connector.configure(values, environ=environ, secrets_dir=secrets_dir)
        return factory(config)


def _not_implemented(name: str, capability: Capability, opened: object, protocol: str) -> TypeError:
    return TypeError(
        f"connector {name!r}: its {capability.label} factory returned "
        f"{type(opened).__name__}, which does not implement {protocol}"
    )
