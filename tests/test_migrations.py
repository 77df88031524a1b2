"""Every service's migrations: one line of history, and a schema that is its tables.

Branches from parallel work meet here: two migrations written beside each other from the
same parent give two heads, and `mailwright migrate` would refuse to start.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mailwright.runtime.db import Database, alembic_config, version_table
from mailwright.runtime.settings import SERVICE_NAMES


def _service(name: str) -> tuple[Path, sa.MetaData]:
    package = importlib.import_module(f"mailwright_{name}")
    migrations = Path(package.__file__ or "").resolve().parent / "migrations"
    store = importlib.import_module(f"mailwright_{name}.store")
    metadata = getattr(store, "metadata", None)
    if metadata is None:
        metadata = importlib.import_module(f"mailwright_{name}.store.tables").metadata
    assert isinstance(metadata, sa.MetaData)
    return migrations, metadata


def _ignore_partitions(item: Any, name: str | None, kind: str, reflected: bool, _: Any) -> bool:
    # The profile service's event partitions (PostgreSQL) exist in the database only.
    from mailwright_profile.store.tables import is_event_partition

    table = getattr(item, "table", item) if kind == "index" else item
    return not (reflected and is_event_partition(str(getattr(table, "name", name))))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_has_one_head(service: str) -> None:
    migrations, _ = _service(service)
    script = ScriptDirectory.from_config(alembic_config(migrations, service))
    heads = script.get_heads()
    assert len(heads) == 1, f"{service} has migration heads {heads}: chain them"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_migrations_build_exactly_the_tables(service: str, database_url: str) -> None:
    migrations, metadata = _service(service)
    db = Database(database_url, service=service, migrations=migrations)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": version_table(service),
                    "compare_type": True,
                    "include_object": _ignore_partitions,
                },
            )
            differences = compare_metadata(context, metadata)
    finally:
        db.close()
    assert differences == []
