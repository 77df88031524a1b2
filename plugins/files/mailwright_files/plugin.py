"""The plugin module named by the `mailwright` entry point: registers the files connector.

The export to Parquet is a command (`mailwright files export`, entry point group
`mailwright.cli`), not a capability: it reads Mailwright, not a provider."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_files.config import NAME, FilesConfig
from mailwright_files.source import FilesSource


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name=NAME,
            config_model=FilesConfig,
            description="Files: customers, orders and events from CSV, JSONL and Parquet "
            "exports by a declared column mapping, bad rows skipped and reported.",
            source=FilesSource,
        )
    )
