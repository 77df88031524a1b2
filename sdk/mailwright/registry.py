"""Named registries that plugins fill through the registration hooks.

A registry maps a name to an object a plugin registered (a connector, a scorer) and
remembers which plugin registered it, so that `mailwright plugins list` can say who
provides what and a plugin that fails half-way through registration can be rolled back.
The plugin host (`mailwright.plugins`) tells the registry whose turn it is; plugins only
call `register`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME_LENGTH = 40


class RegistryError(Exception):
    """Base of the errors a registry raises."""


class InvalidName(RegistryError, ValueError):
    """A name that is not lowercase letters, digits and single hyphens."""


class DuplicateName(RegistryError, ValueError):
    """A second object registered under a name already taken."""


class UnknownName(RegistryError, LookupError):
    """No object is registered under this name."""


def check_name(kind: str, name: object) -> str:
    """Return `name` if it is a valid registry name, else raise `InvalidName` saying why.

    Names become parts of environment variables and URLs
    (`MAILWRIGHT_CONNECTOR_<NAME>_<FIELD>`, `/webhooks/<name>/…`), hence the narrow alphabet.
    """
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{kind} name {name[:MAX_NAME_LENGTH]!r}… is longer than 40 characters")
    if not NAME_PATTERN.match(name):
        raise InvalidName(
            f"{kind} name {name!r} must be lowercase letters and digits, "
            "optionally separated by single hyphens (e.g. 'mailchimp-transactional')"
        )
    return name


class Registry(ABC, Generic[T]):
    """Objects by name, each remembered with the plugin that registered it."""

    kind: str = "object"
    unknown_error: type[UnknownName] = UnknownName
    duplicate_error: type[DuplicateName] = DuplicateName

    def __init__(self) -> None:
        self._entries: dict[str, T] = {}
        self._owners: dict[str, str | None] = {}
        self._current_owner: str | None = None

    @abstractmethod
    def name_of(self, entry: T) -> str:
        """The name `entry` is registered under."""

    def validate(self, entry: T) -> None:
        """Raise when `entry` cannot be registered; the default accepts anything."""

    def register(self, entry: T) -> T:
        """Add `entry` under its name and return it.

        Raises `InvalidName` for a malformed name and `DuplicateName` when the name is
        already taken (the message names the plugin that took it).
        """
        self.validate(entry)
        name = check_name(self.kind, self.name_of(entry))
        if name in self._entries:
            owner = self._owners.get(name)
            by = f" by plugin {owner!r}" if owner else ""
            raise self.duplicate_error(f"{self.kind} {name!r} is already registered{by}")
        self._entries[name] = entry
        self._owners[name] = self._current_owner
        return entry

    def get(self, name: str) -> T:
        """The entry registered as `name`; `UnknownName` lists the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise self.unknown_error(f"no {self.kind} named {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def owner_of(self, name: str) -> str | None:
        """The plugin that registered `name`, or None when registered outside a plugin."""
        self.get(name)
        return self._owners[name]

    def owned_by(self, plugin: str) -> list[T]:
        entries = sorted(self._entries.items())
        return [entry for name, entry in entries if self._owners[name] == plugin]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter([self._entries[name] for name in sorted(self._entries)])

    def __len__(self) -> int:
        return len(self._entries)

    # -- for the plugin host ----------------------------------------------------------

    @contextmanager
    def registering_for(self, plugin: str) -> Iterator[None]:
        """Attribute everything registered inside the block to `plugin`."""
        previous, self._current_owner = self._current_owner, plugin
        try:
            yield
        finally:
            self._current_owner = previous

    def discard_owned_by(self, plugin: str) -> None:
        """Forget what `plugin` registered (used when its registration failed half-way)."""
        for name in [name for name, owner in self._owners.items() if owner == plugin]:
            del self._entries[name]
            del self._owners[name]
