"""`mailwright plugins new NAME`: the skeleton of a connector plugin that passes its tests.

`create_plugin("acme-shop", Path("."))` writes `./acme-shop/`: a `pyproject.toml` with the
entry point, the package `mailwright_acme_shop` (plugin, configuration, a contacts source,
a signed webhook, a fake provider) and tests that run the kit's conformance suites against
the fake. The templates are the files under `scaffold/plugin/` (`*.tmpl`), with
`__NAME__`, `__PACKAGE__`, `__CLASS__`, `__TITLE__`, `__HEADER__` and `__ENV__` replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from mailwright.registry import check_name


class ScaffoldError(ValueError):
    """The plugin cannot be created here (bad name, directory in the way)."""


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin called `name` goes by."""

    name: str

    @property
    def package(self) -> str:
        return "mailwright_" + self.name.replace("-", "_")

    @property
    def cls(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def title(self) -> str:
        return " ".join(part.capitalize() for part in self.name.split("-"))

    @property
    def header(self) -> str:
        return "-".join(part.capitalize() for part in self.name.split("-"))

    @property
    def env(self) -> str:
        return self.name.upper().replace("-", "_")

    def render(self, text: str) -> str:
        for token, value in (
            ("__PACKAGE__", self.package),
            ("__CLASS__", self.cls),
            ("__TITLE__", self.title),
            ("__HEADER__", self.header),
            ("__ENV__", self.env),
            ("__NAME__", self.name),
        ):
            text = text.replace(token, value)
        return text


def _templates(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found.extend(_templates(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".tmpl"):
            found.append((prefix + entry.name.removesuffix(".tmpl"), entry))
    return found


def create_plugin(name: str, directory: Path, *, force: bool = False) -> list[Path]:
    """Write the skeleton of plugin `name` into `directory/name`; return the files written."""
    try:
        check_name("plugin", name)
    except ValueError as error:
        raise ScaffoldError(str(error)) from None
    names = PluginNames(name)
    target = directory / name
    if target.exists() and any(target.iterdir()) and not force:
        raise ScaffoldError(f"{target} exists and is not empty (use --force to write into it)")
    written = []
    for relative, template in _templates(resources.files("mailwright.scaffold") / "plugin"):
        path = target / relative.replace("package/", f"{names.package}/", 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(names.render(template.read_text(encoding="utf-8")), encoding="utf-8")
        written.append(path)
    return written
