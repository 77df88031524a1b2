"""Alembic environment of the render service (run through mailwright.runtime.db)."""

from mailwright.runtime.db import run_migrations
from mailwright_render.store import metadata

run_migrations(metadata)
