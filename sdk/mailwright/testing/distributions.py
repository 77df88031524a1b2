"""Install a throwaway plugin distribution in a directory, for tests of plugin loading.

`write_distribution` writes the modules and a `.dist-info` with entry points, as an
installer would; put the directory on `sys.path` (pytest: `monkeypatch.syspath_prepend`)
and `importlib.metadata` finds it like any installed distribution:

    write_distribution(
        tmp_path, "acme-mail", entry_points={"mailwright": {"acme": "acme_mail"}},
        modules={"acme_mail": "from mailwright.plugins import hookimpl\\n..."},
    )
    monkeypatch.syspath_prepend(tmp_path)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path


def write_distribution(
    root: Path,
    name: str,
    *,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str],
    version: str = "0.0.1",
) -> Path:
    """Write distribution `name` into `root`; return its `.dist-info` directory.

    `entry_points` maps a group to `{entry-point name: "module[:attribute]"}`; `modules`
    maps a module name to its source.
    """
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    normalised = re.sub(r"[-_.]+", "_", name)
    info = root / f"{normalised}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{entry} = {target}" for entry, target in entries.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return info
