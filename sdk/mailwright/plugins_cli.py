"""`mailwright plugins`: what plugins this process would load, and what they provide."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mailwright.plugins import PluginFailure, PluginInfo, Plugins, load_plugins
from mailwright.runtime.settings import SettingsError, load_settings


@click.group()
def plugins() -> None:
    """Inspect the installed Mailwright plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_plugins(as_json: bool) -> None:
    """Each plugin, its connectors and their capabilities, and the hooks it implements.

    Honours MAILWRIGHT_PLUGINS; plugins that failed to load are listed with the reason.
    """
    try:
        settings = load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    # Failures are this command's output; without logging configured they would also
    # reach stderr through logging's last-resort handler.
    logging.getLogger("mailwright.plugins").addHandler(logging.NullHandler())
    loaded = load_plugins(settings.plugins)
    if as_json:
        click.echo(json.dumps(_as_json(loaded), indent=2))
    else:
        _print_tables(loaded, Console())


@plugins.command("new")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the plugin's directory.",
)
@click.option("--force", is_flag=True, help="Write into an existing, non-empty directory.")
def new_plugin(name: str, directory: Path, force: bool) -> None:
    """Create the skeleton of a connector plugin NAME that passes its own tests.

    It has a pyproject with the entry point, a connector with configuration, a contacts
    source and a signed webhook, a fake provider, and tests running the conformance
    suites. docs/plugins.md walks through making it talk to a real provider.
    """
    from mailwright.scaffold import ScaffoldError, create_plugin

    try:
        written = create_plugin(name, directory, force=force)
    except ScaffoldError as error:
        raise click.ClickException(str(error)) from error
    root = directory / name
    click.echo(f"created {root} ({len(written)} files)")
    click.echo(f"  cd {root} && pip install -e '.[test]' && pytest")


def _as_json(loaded: Plugins) -> dict[str, Any]:
    return {
        "plugins": [
            {
                "name": info.name,
                "module": info.module,
                "distribution": info.distribution,
                "version": info.version,
                "hooks": list(info.hooks),
                "connectors": [
                    {
                        "name": connector.name,
                        "capabilities": [c.value for c in connector.capabilities],
                        "description": connector.description,
                    }
                    for connector in info.connectors
                ],
                "scorers": list(info.scorers),
            }
            for info in loaded.info()
        ],
        "failures": [
            {
                "name": failure.name,
                "target": failure.target,
                "distribution": failure.distribution,
                "version": failure.version,
                "reason": failure.reason,
            }
            for failure in loaded.failures
        ],
    }


def _print_tables(loaded: Plugins, console: Console) -> None:
    infos = loaded.info()
    if infos:
        console.print(_plugin_table(infos))
    else:
        console.print("No plugins loaded.")
    if loaded.failures:
        console.print(_failure_table(loaded.failures))


def _plugin_table(infos: list[PluginInfo]) -> Table:
    table = Table(title="Plugins", title_justify="left")
    table.add_column("Plugin", style="bold")
    table.add_column("Distribution")
    table.add_column("Version")
    table.add_column("Connectors (capabilities)")
    table.add_column("Hooks (mailwright_…)")
    for info in infos:
        hooks = [hook.removeprefix("mailwright_") for hook in info.hooks]
        provides = [
            f"{c.name} ({', '.join(cap.label for cap in c.capabilities)})" for c in info.connectors
        ] + [f"{name} (scorer)" for name in info.scorers]
        table.add_row(
            info.name,
            info.distribution or "-",
            info.version or "-",
            "\n".join(provides) or "-",
            "\n".join(hooks) or "-",
        )
    return table


def _failure_table(failures: tuple[PluginFailure, ...]) -> Table:
    table = Table(title="Plugins that failed to load", title_justify="left", style="red")
    table.add_column("Plugin", style="bold")
    table.add_column("Entry point")
    table.add_column("Reason")
    for failure in failures:
        table.add_row(failure.name, failure.target or "-", failure.reason)
    return table
