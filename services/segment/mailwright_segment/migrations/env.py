"""Alembic environment of the segment service (run through mailwright.runtime.db)."""

from mailwright.runtime.db import run_migrations
from mailwright_segment.store.tables import metadata

run_migrations(metadata)
