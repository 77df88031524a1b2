"""The `mailwright` command.

The SDK owns the root group and the platform commands (`serve`, `up`, `migrate`,
`plugins`, `bus`, `tokens`). Services and plugins add their own command groups through the
entry-point group `mailwright.cli` (name → a `click.Command`); they are imported only when
invoked, so `mailwright --help` stays fast and a broken plugin cannot break unrelated
commands.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

import click

BUILTIN_COMMANDS: dict[str, str] = {
    "serve": "mailwright.runtime.commands:serve",
    "up": "mailwright.runtime.commands:up",
    "migrate": "mailwright.runtime.migrate:migrate",
    "tokens": "mailwright.runtime.commands:tokens",
    "bus": "mailwright.runtime.bus.commands:bus",
    "plugins": "mailwright.plugins_cli:plugins",
    "connectors": "mailwright.connectors.cli:connectors",
    "demo": "mailwright.demo.commands:demo",
    "cluster": "mailwright.runtime.cluster_cli:cluster",
}


def _load(target: str) -> click.Command:
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise click.ClickException(f"{target} is not a click command")
    return command


class MailwrightGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def _targets(self) -> dict[str, str]:
        targets = dict(BUILTIN_COMMANDS)
        for entry in entry_points(group="mailwright.cli"):
            targets.setdefault(entry.name, entry.value)
        return targets

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._targets()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        target = self._targets().get(cmd_name)
        if target is None:
            return None
        try:
            return _load(target)
        except ImportError as error:
            return _unavailable(cmd_name, f"{target}: {error}")


def _unavailable(name: str, reason: str) -> click.Command:
    """A command that could not be imported: listed with the reason, fails when run."""

    def fail() -> None:
        raise click.ClickException(f"command {name!r} could not load ({reason})")

    return click.Command(name, callback=fail, short_help=f"(unavailable: {reason})")


@click.group(cls=MailwrightGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mailwright")
def cli() -> None:
    """Mailwright: data-driven email personalisation."""


def main() -> None:
    cli(prog_name="mailwright")


if __name__ == "__main__":
    main()
    sys.exit(0)
