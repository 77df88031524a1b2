"""Alembic environment of the profile service (run through mailwright.runtime.db).

As `mailwright.runtime.db.run_migrations`, and one thing more: the monthly partitions of
`profile_events` that the service creates on PostgreSQL are not part of the declared
schema, so autogenerate must not offer to drop them.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from mailwright_profile.store import metadata
from mailwright_profile.store.tables import is_event_partition


def include_object(
    item: Any, name: str | None, kind: str, reflected: bool, compare_to: Any
) -> bool:
    table = getattr(item, "table", item) if kind == "index" else item
    table_name = getattr(table, "name", name) or ""
    return not (reflected and is_event_partition(str(table_name)))


config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through mailwright.runtime.db.Database.migrate")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
