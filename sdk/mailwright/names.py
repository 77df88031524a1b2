"""Resource names: `workspaces/{workspace}/{collection}/{id}/...`, parsed and built.

Every request names its workspace through a resource name; these helpers are the one
place that reads them, so a malformed name gets the same clear error everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwright.errors import InvalidArgument

WORKSPACE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESOURCE_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._~-]{0,126}[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class ResourceName:
    workspace: str
    # (collection, id) pairs after the workspace, e.g. (("templates", "welcome"),).
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return self.parts[-1][1] if self.parts else self.workspace

    def __str__(self) -> str:
        tail = "".join(f"/{collection}/{ident}" for collection, ident in self.parts)
        return f"workspaces/{self.workspace}{tail}"


def workspace_name(workspace: str) -> str:
    return f"workspaces/{workspace}"


def resource_name(workspace: str, *parts: str) -> str:
    """`resource_name("acme", "profiles", "p1")` → `workspaces/acme/profiles/p1`."""
    if len(parts) % 2:
        raise ValueError("parts must come in (collection, id) pairs")
    return "/".join(["workspaces", workspace, *parts])


def parse(name: str, field: str, *collections: str) -> ResourceName:
    """Parse `name` as `workspaces/{ws}` followed by `collections`, each with an id.

    `parse(request.name, "name", "templates", "versions")` accepts
    `workspaces/acme/templates/welcome/versions/3`. Raises InvalidArgument naming `field`.
    """
    pieces = name.split("/") if name else []
    expected = "workspaces/{workspace}" + "".join(f"/{c}/{{id}}" for c in collections)
    if len(pieces) != 2 + 2 * len(collections) or pieces[0] != "workspaces":
        raise InvalidArgument.field(field, f"must look like {expected}, got {name!r}")
    workspace = pieces[1]
    if not WORKSPACE_ID.match(workspace):
        raise InvalidArgument.field(
            field, f"workspace id {workspace!r} must be lower-case letters, digits and dashes"
        )
    parts: list[tuple[str, str]] = []
    for index, collection in enumerate(collections):
        got_collection, ident = pieces[2 + 2 * index], pieces[3 + 2 * index]
        if got_collection != collection:
            raise InvalidArgument.field(field, f"must look like {expected}, got {name!r}")
        if not RESOURCE_ID.match(ident):
            raise InvalidArgument.field(field, f"{collection} id {ident!r} is not a valid id")
        parts.append((collection, ident))
    return ResourceName(workspace, tuple(parts))


def parse_workspace(parent: str, field: str = "parent") -> str:
    """The workspace id of `workspaces/{workspace}`."""
    return parse(parent, field).workspace


def workspace_prefix(name: str) -> str | None:
    """The workspace id a string names, if it starts with `workspaces/{id}`; else None."""
    if not name.startswith("workspaces/"):
        return None
    workspace = name.split("/", 2)[1]
    return workspace or None
