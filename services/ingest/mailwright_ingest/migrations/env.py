"""Alembic environment of the ingest service (run through mailwright.runtime.db)."""

from mailwright.runtime.db import run_migrations
from mailwright_ingest.store import metadata

run_migrations(metadata)
