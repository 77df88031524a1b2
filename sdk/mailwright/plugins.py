"""Plugin loading: one pluggy manager per process, plugins from the entry-point group.

Every plugin, the shipped ones included, is a distribution declaring an entry point in
group `mailwright` (`smtp = "mailwright_smtp.plugin"`); nothing is imported by name.
`MAILWRIGHT_PLUGINS` (or `Settings.plugins`) restricts loading to the named plugins —
entry-point names, or distribution names — and set empty, loads none. A plugin that
fails to import or to register is recorded with the reason, logged, and left out; the
process carries on without it.

    plugins = get_plugins()                      # loaded once, on first use
    provider = plugins.connectors.open_email_provider("smtp")
    veto = plugins.hook.mailwright_before_send(message=message)
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from mailwright import hookspecs
from mailwright.connectors import Capability, ConnectorRegistry
from mailwright.extensions import ScorerRegistry

if TYPE_CHECKING:
    from mailwright.runtime.settings import Settings

log = logging.getLogger(__name__)

PROJECT = "mailwright"
ENTRY_POINT_GROUP = "mailwright"
PLUGINS_VARIABLE = "MAILWRIGHT_PLUGINS"

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a function of a plugin as the implementation of the hook it is named after."""


@dataclass(frozen=True)
class ConnectorInfo:
    name: str
    capabilities: tuple[Capability, ...]
    description: str


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: where it came from, what it registered, which hooks it implements."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    connectors: tuple[ConnectorInfo, ...]
    scorers: tuple[str, ...]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why (one line; `details` has the traceback)."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    reason: str
    details: str = ""


class PluginLoadError(Exception):
    """Raised inside `Plugins.register` when a plugin cannot be registered."""


class Plugins:
    """The plugins of one process: the pluggy manager and the registries they fill.

    The registration hooks are called historically before any plugin is registered, so
    each plugin's registrations happen during its own `register` call and are attributed
    to it (and rolled back if it fails half-way).
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.connectors = ConnectorRegistry()
        self.scorers = ScorerRegistry()
        self._failures: list[PluginFailure] = []
        self._sources: dict[str, tuple[str | None, str | None]] = {}
        self.manager.hook.mailwright_register_connectors.call_historic(
            kwargs={"registry": self.connectors}
        )
        self.manager.hook.mailwright_register_scorers.call_historic(
            kwargs={"registry": self.scorers}
        )

    @property
    def hook(self) -> Any:
        """The hooks to call: `plugins.hook.mailwright_before_send(message=...)`."""
        return self.manager.hook

    @property
    def failures(self) -> tuple[PluginFailure, ...]:
        return tuple(self._failures)

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Register `plugin` under `name`; its registration hooks run now.

        Raises `PluginLoadError` (the plugin left unregistered, its registrations undone)
        when a hook implementation does not match its specification, names a hook that
        does not exist, or a registration hook raises.
        """
        if self.manager.has_plugin(name):
            raise PluginLoadError(f"a plugin named {name!r} is already registered")
        unmarked = _unmarked_hooks(self.manager, plugin)
        if unmarked:
            raise PluginLoadError(f"{unmarked[0]} looks like a hook but lacks @hookimpl")
        try:
            with self.connectors.registering_for(name), self.scorers.registering_for(name):
                self.manager.register(plugin, name=name)
        except Exception as error:
            self._undo(plugin, name)
            raise PluginLoadError(_one_line(error)) from error
        callers = self.manager.get_hookcallers(plugin) or []
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        if unknown:
            self._undo(plugin, name)
            raise PluginLoadError(f"implements unknown hook {sorted(unknown)[0]!r}")
        self._sources[name] = (distribution, version)

    def load_entry_points(
        self, only: Iterable[str] | None = None, *, group: str = ENTRY_POINT_GROUP
    ) -> None:
        """Import and register the plugins of entry-point `group`.

        `only` restricts loading to plugins whose entry-point name (or distribution name)
        is listed; a listed name that matches nothing is recorded as a failure.
        """
        wanted = None if only is None else {name.strip() for name in only if name.strip()}
        matched: set[str] = set()
        for entry in sorted(entry_points(group=group), key=lambda e: e.name):
            distribution, version = _distribution_of(entry)
            if wanted is not None:
                names = {entry.name, distribution or ""}
                if not names & wanted:
                    continue
                matched |= names & wanted
            self._load(entry, distribution, version)
        for missing in sorted((wanted or set()) - matched):
            reason = f"not installed (no entry point in group {group!r})"
            self._fail(PluginFailure(missing, "", None, None, reason))

    def info(self) -> list[PluginInfo]:
        """Each registered plugin with its hooks and registrations, by name."""
        found = []
        for name, plugin in sorted(self.manager.list_name_plugin(), key=lambda pair: pair[0]):
            if plugin is None:
                continue
            distribution, version = self._sources.get(name, (None, None))
            callers = self.manager.get_hookcallers(plugin) or []
            found.append(
                PluginInfo(
                    name=name,
                    module=getattr(plugin, "__name__", type(plugin).__qualname__),
                    distribution=distribution,
                    version=version,
                    hooks=tuple(sorted(caller.name for caller in callers)),
                    connectors=tuple(
                        ConnectorInfo(
                            c.name,
                            tuple(sorted(c.capabilities, key=list(Capability).index)),
                            c.description,
                        )
                        for c in self.connectors.owned_by(name)
                    ),
                    scorers=tuple(s.name for s in self.scorers.owned_by(name)),
                )
            )
        return found

    # -- internals --------------------------------------------------------------------

    def _load(self, entry: EntryPoint, distribution: str | None, version: str | None) -> None:
        try:
            plugin = entry.load()
        except Exception as error:
            self._fail(
                PluginFailure(
                    entry.name,
                    entry.value,
                    distribution,
                    version,
                    f"import failed: {_one_line(error)}",
                    traceback.format_exc(),
                )
            )
            return
        try:
            self.register(plugin, entry.name, distribution=distribution, version=version)
        except PluginLoadError as error:
            self._fail(
                PluginFailure(
                    entry.name,
                    entry.value,
                    distribution,
                    version,
                    f"registration failed: {error}",
                    "".join(traceback.format_exception(error.__cause__ or error)),
                )
            )

    def _undo(self, plugin: object, name: str) -> None:
        if self.manager.is_registered(plugin):
            self.manager.unregister(plugin, name=name)
        self.connectors.discard_owned_by(name)
        self.scorers.discard_owned_by(name)

    def _fail(self, failure: PluginFailure) -> None:
        self._failures.append(failure)
        log.error("plugin %s not loaded: %s", failure.name, failure.reason)


def _unmarked_hooks(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    """Functions named like hooks that pluggy would silently ignore for want of a marker."""
    return sorted(
        name
        for name in dir(plugin)
        if name.startswith(f"{PROJECT}_")
        and callable(getattr(plugin, name, None))
        and manager.parse_hookimpl_opts(plugin, name) is None
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _distribution_of(entry: EntryPoint) -> tuple[str | None, str | None]:
    dist = entry.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def names_from_environment() -> list[str] | None:
    """The plugin names in `MAILWRIGHT_PLUGINS`, or None when it is not set."""
    value = os.environ.get(PLUGINS_VARIABLE)
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def load_plugins(only: Sequence[str] | None = None) -> Plugins:
    """A new `Plugins` with the entry-point plugins loaded (all, or those in `only`)."""
    plugins = Plugins()
    plugins.load_entry_points(only)
    return plugins


_lock = threading.Lock()
_process_plugins: dict[frozenset[str] | None, Plugins] = {}


def get_plugins(settings: Settings | None = None) -> Plugins:
    """The plugins of this process for a selection, loaded on the first call for it.

    The selection is `settings.plugins` when settings are given, else
    `MAILWRIGHT_PLUGINS` (unset: every installed plugin). Later calls with the same
    selection return the same object; a platform with another selection in the same
    process (tests, benchmarks, `mailwright up` beside a CLI) gets its own.
    """
    only = settings.plugins if settings is not None else names_from_environment()
    key = None if only is None else frozenset(only)
    with _lock:
        found = _process_plugins.get(key)
        if found is None:
            found = _process_plugins[key] = load_plugins(only)
            loaded = [info.name for info in found.info()]
            log.info("plugins loaded: %s", ", ".join(loaded) or "none")
        return found
