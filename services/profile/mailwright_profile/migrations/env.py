"""Alembic environment of the profile service (run through mailwright.runtime.db)."""

from mailwright.runtime.db import run_migrations
from mailwright_profile.store import metadata

run_migrations(metadata)
